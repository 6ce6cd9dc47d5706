"""Functional data of the sample: co-registration and tuning tables (minnie65_public) and the
cells seen by the two-photon sessions (v1dd_public)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from offline_cave.contract.hashing import unit_hash
from offline_cave.contract.params import V1DD_PLANE_DEPTHS_UM, V1DD_SESSIONS
from offline_cave.generator.annotations import days, reference, timestamps


def imaged_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """Excitatory cells seen by the V1DD two-photon sessions of the sample (ground truth).

    Five imaging columns tile the slab (a 2 x 2 grid and a centre column overlapping all
    four); each volume is 6 planes 16 um apart (datasets-facts §4.1). Only excitatory cells express
    GCaMP (Slc17a7-Cre). One cell can be seen in two sessions (the centre column overlaps).
    A quarter of the imaged cells are left unmatched to EM (nucleus_id 0 in the match).
    """
    x, z = cells["x_um"].to_numpy(), cells["z_um"].to_numpy()
    x0, x1, z0, z1 = x.min(), x.max(), z.min(), z.max()
    xm, zm = (x0 + x1) / 2, (z0 + z1) / 2
    half_x, half_z = (x1 - x0) / 4, (z1 - z0) / 4
    columns = {1: (x0, xm, z0, zm), 2: (xm, x1, z0, zm), 3: (x0, xm, zm, z1), 4: (xm, x1, zm, z1),
               5: (xm - half_x, xm + half_x, zm - half_z, zm + half_z)}
    exc = (cells["cell_class"] == "excitatory_neuron").to_numpy()
    depth = cells["depth_um"].to_numpy()
    rows = []
    for column, volume in V1DD_SESSIONS:
        ax0, ax1, az0, az1 = columns[column]
        for plane, plane_depth in enumerate(V1DD_PLANE_DEPTHS_UM[volume]):
            inside = (exc & (x >= ax0) & (x < ax1) & (z >= az0) & (z < az1)
                      & (np.abs(depth - plane_depth) <= 8.0))
            idx = np.flatnonzero(inside)
            idx = idx[np.argsort(x[idx], kind="stable")]
            rows.append(pd.DataFrame({"column": column, "volume": volume, "plane": plane,
                                      "roi": np.arange(idx.size), "cell_row": idx}))
    frame = pd.concat(rows, ignore_index=True)
    c = cells.iloc[frame["cell_row"].to_numpy()].reset_index(drop=True)
    nid = c["nucleus_id"].to_numpy()
    u, v, w, r, m, d = (unit_hash(nid, salt) for salt in range(6))
    frame["depth_um"] = c["depth_um"].to_numpy()
    frame["x_um"], frame["z_um"] = c["x_um"].to_numpy(), c["z_um"].to_numpy()
    frame["layer"] = c["layer"].to_numpy()
    # the direction bit is the one the MICrONS-style functional tables use (same hash)
    frame["pref_dir_rad"] = (c["pref_ori_rad"].to_numpy() + np.pi * (d < 0.5)) % (2 * np.pi)
    frame["osi"] = c["osi"].to_numpy()
    frame["dsi"] = 0.05 + 0.45 * u**2
    # surround suppression is stronger in L2/3 than in L5 (the windowed-vs-full contrast)
    base = np.select([frame["layer"] == "L2/3", frame["layer"] == "L4"], [0.6, 0.45], 0.25)
    frame["surround_suppression"] = np.clip(base + 0.3 * (v - 0.5), 0.0, 0.95)
    frame["running_gain"] = 0.9 + 0.7 * w
    frame["reliability"] = 0.25 + 0.7 * r
    frame["nucleus_id"] = np.where(m < 0.25, 0, nid)
    return frame.drop(columns=["cell_row"])


# long but linear: three tables drawn in a fixed order from one generator
def function_tables(cells: pd.DataFrame, nucleus_ids: np.ndarray, rng: np.random.Generator
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Co-registration and functional property tables for the co-registered cells."""
    rows = np.flatnonzero(cells["coregistered"].to_numpy())
    # 25 % of cells are matched to two units (19,181 rows for 15,352 roots, datasets-facts §2.5)
    reps = np.where(rng.random(rows.size) < 0.25, 2, 1)
    unit_rows = np.repeat(rows, reps)
    m = unit_rows.size
    platinum = [(4, 7), (4, 9), (4, 10), (5, 3), (5, 6), (5, 7), (6, 2), (6, 4), (6, 6), (6, 7),
                (7, 3), (7, 4), (7, 5), (8, 5), (8, 7), (8, 9), (9, 3), (9, 4), (9, 6)]
    scan = np.asarray(platinum)[rng.integers(0, len(platinum), size=m)]
    unit_id = rng.integers(1, 9600, size=m)
    depth = cells["depth_um"].to_numpy()[unit_rows]
    field = np.clip((depth / 620 * 8).astype(int) + 1, 1, 8)
    coreg = reference(np.arange(1, m + 1), timestamps(rng, m, "2024-01-10T00:00:00", days(2)),
                      nucleus_ids[unit_rows],
                      {"session": scan[:, 0].astype(np.int64), "scan_idx": scan[:, 1].astype(np.int64),
                       "unit_id": unit_id.astype(np.int64), "field": field.astype(np.int64),
                       "residual": rng.uniform(2.0, 9.0, size=m),
                       "score": rng.normal(3.0, 2.5, size=m)})
    # functional properties for ~63 % of the matched units (12,094 of 19,181)
    has_func = rng.random(m) < 0.63
    f = np.flatnonzero(has_func)
    theta = cells["pref_ori_rad"].to_numpy()[unit_rows[f]]
    osi = cells["osi"].to_numpy()[unit_rows[f]]
    cc_abs = np.clip(rng.beta(3, 4, size=f.size), 0.05, 0.95)
    noise = rng.normal(0, 1, size=f.size) * (0.08 + 0.25 * (1 - osi)) / np.sqrt(cc_abs + 0.2)
    measured = (theta + noise) % np.pi  # latent in the digital-twin convention
    dir_bit = unit_hash(cells["nucleus_id"].to_numpy()[unit_rows[f]], 5) < 0.5
    g_osi = np.clip(osi * rng.uniform(0.7, 1.2, size=f.size), 0.0, 1.0)
    g_dsi = np.clip(rng.beta(1.5, 8, size=f.size), 0.0, 1.0)
    # v3 convention: 0 = horizontal bar moving up, clockwise => (pi/2 - theta)
    ori_v3 = (np.pi / 2 - measured) % np.pi
    func_v3 = reference(
        np.arange(1, f.size + 1), timestamps(rng, f.size, "2024-01-12T00:00:00", days(1)),
        coreg["target_id"].to_numpy()[f],
        {"session": coreg["session"].to_numpy()[f], "scan_idx": coreg["scan_idx"].to_numpy()[f],
         "unit_id": coreg["unit_id"].to_numpy()[f], "pref_ori": ori_v3,
         "pref_dir": (ori_v3 + np.pi * dir_bit) % (2 * np.pi), "gOSI": g_osi, "gDSI": g_dsi,
         "cc_abs": cc_abs})
    # digital twin (degrees, 0 = vertical bar moving right, counter-clockwise), ~80 % of units
    t = np.flatnonzero(rng.random(m) < 0.8)
    theta_t = cells["pref_ori_rad"].to_numpy()[unit_rows[t]]
    osi_t = cells["osi"].to_numpy()[unit_rows[t]]
    cc_abs_t = np.clip(rng.beta(3, 3.5, size=t.size), 0.05, 0.95)
    cc_max_t = np.clip(cc_abs_t + rng.uniform(0.05, 0.3, size=t.size), 0.1, 1.0)
    noise_t = rng.normal(0, 1, size=t.size) * (0.06 + 0.2 * (1 - osi_t)) / np.sqrt(cc_abs_t + 0.2)
    ori_t = np.degrees((theta_t + noise_t) % np.pi)
    dir_bit_t = unit_hash(cells["nucleus_id"].to_numpy()[unit_rows[t]], 5) < 0.5
    g_osi_t = np.clip(osi_t * rng.uniform(0.75, 1.15, size=t.size), 0.0, 1.0)
    twin = reference(
        np.arange(1, t.size + 1), timestamps(rng, t.size, "2025-07-20T00:00:00", days(2)),
        coreg["target_id"].to_numpy()[t],
        {"session": coreg["session"].to_numpy()[t], "scan_idx": coreg["scan_idx"].to_numpy()[t],
         "unit_id": coreg["unit_id"].to_numpy()[t], "cc_abs": cc_abs_t, "cc_max": cc_max_t,
         "cc_norm": cc_abs_t / cc_max_t,
         "OSI": np.clip(g_osi_t * rng.uniform(1.1, 1.6, size=t.size), 0, 1),
         "DSI": np.clip(rng.beta(1.5, 6, size=t.size), 0, 1), "gOSI": g_osi_t,
         "gDSI": np.clip(rng.beta(1.5, 8, size=t.size), 0, 1), "pref_ori": ori_t,
         "pref_dir": (ori_t + 180.0 * dir_bit_t) % 360.0,
         "readout_loc_x": rng.uniform(-1, 1, size=t.size),
         "readout_loc_y": rng.uniform(-1, 1, size=t.size)})
    return coreg, func_v3, twin
