"""Functional data of the sample: co-registration and tuning tables (minnie65_public) and the
cells seen by the two-photon sessions (v1dd_public)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

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


#: The 19 "platinum" scans (session, scan_idx) of animal 17797 (datasets-facts §2.5).
PLATINUM_SCANS = ((4, 7), (4, 9), (4, 10), (5, 3), (5, 6), (5, 7), (6, 2), (6, 4), (6, 6), (6, 7),
                  (7, 3), (7, 4), (7, 5), (8, 5), (8, 7), (8, 9), (9, 3), (9, 4), (9, 6))
#: Residual of a manual match (um): lognormal, median 5 um; the real example rows of v3 lie at
#: 5.2-8.6 um (datasets-facts §2.5). Automatic matches are looser (median 6.5 um, *assumed*).
MANUAL_RESIDUAL_UM, AUTO_RESIDUAL_UM = (5.0, 0.35), (6.5, 0.45)
#: Share of manual cells matched to two units: 19,181 rows for 15,352 roots (§2.5) = 1.25.
MANUAL_SECOND_UNIT = 0.25
#: Units per cell of the automatic table: 83,046 rows for 35,466 roots (§2.5) = 2.34 ->
#: 1 + Poisson(1.34). Share of the remaining imageable cells it adds (the real table has 2.3x
#: the manual cells; the sample cannot exceed its imageable cells, *assumed*).
AUTO_EXTRA_UNITS, AUTO_EXTRA_CELLS = 1.34, 0.7
#: Share of automatic units matched to a second nucleus as well (*assumed*).
AUTO_TWO_NUCLEI = 0.02
#: An automatic match goes to the nearest *other* nucleus with this probability when the true
#: separation score is below ``AUTO_CONFUSABLE_UM`` (and 2 % otherwise); *assumed*.
AUTO_WRONG_LOW, AUTO_WRONG_HIGH, AUTO_CONFUSABLE_UM = 0.5, 0.02, 1.0
#: Retinotopy of the readout locations: the sample's slab spans this part of the stimulus
#: ([-1, 1] per axis, datasets-facts §2.6), with this scatter of single receptive fields
#: (*assumed*; nearby neurons have nearby receptive fields in mouse V1).
READOUT_SPAN, READOUT_SCATTER = 0.8, 0.12


def _separation(points: np.ndarray, assigned: np.ndarray, xyz: np.ndarray,
                tree: cKDTree) -> tuple[np.ndarray, np.ndarray]:
    """Residual (um) from each functional point to its assigned nucleus, and the separation
    score: distance to the nearest non-assigned nucleus minus the residual (um, may be < 0).
    """
    residual = np.linalg.norm(points - xyz[assigned], axis=1)
    dist, idx = tree.query(points, k=2)
    other = np.where(idx[:, 0] == assigned, dist[:, 1], dist[:, 0])
    return residual, other - residual


def _functional_points(rows: np.ndarray, xyz: np.ndarray, median_sd: tuple[float, float],
                       rng: np.random.Generator) -> np.ndarray:
    """Where the two-photon ROI of each unit lands in EM space: the soma plus a residual
    offset in a random direction (um)."""
    offset = rng.normal(size=(rows.size, 3))
    offset /= np.linalg.norm(offset, axis=1, keepdims=True)
    length = np.exp(rng.normal(np.log(median_sd[0]), median_sd[1], size=rows.size))
    return xyz[rows] + offset * length[:, None]


def _scans(n: int, rng: np.random.Generator, avoid: np.ndarray | None = None) -> np.ndarray:
    """Platinum scan indices (0..18), different from ``avoid`` where it is given."""
    k = len(PLATINUM_SCANS)
    if avoid is None:
        return rng.integers(0, k, size=n)
    return (avoid + rng.integers(1, k, size=n)) % k


def _unit_frame(unit_rows: np.ndarray, scan: np.ndarray, unit_id: np.ndarray,
                assigned: np.ndarray, residual: np.ndarray, score: np.ndarray,
                depth: np.ndarray) -> pd.DataFrame:
    keys = np.asarray(PLATINUM_SCANS)[scan]
    field = np.clip((depth[unit_rows] / 620 * 8).astype(int) + 1, 1, 8)
    return pd.DataFrame({"unit_row": unit_rows, "assigned": assigned,
                         "session": keys[:, 0].astype(np.int64),
                         "scan_idx": keys[:, 1].astype(np.int64),
                         "unit_id": unit_id.astype(np.int64), "field": field.astype(np.int64),
                         "residual": residual, "score": score})


def coregistration_units(cells: pd.DataFrame, rng: np.random.Generator
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The units of the manual and the automatic co-registration (one row per unit match).

    ``unit_row`` is the cells row the unit truly images, ``assigned`` the row it is matched
    to. Manual matches are always right; an automatic match of a unit whose true separation
    score is small goes to the nearest other nucleus now and then. Unit keys (session,
    scan_idx, unit_id) are unique among the manual units; the automatic table reuses the key
    of a manual unit it also matched and gives new keys to the others.
    """
    xyz = cells[["x_um", "y_um", "z_um"]].to_numpy(np.float64)
    depth = cells["depth_um"].to_numpy()
    tree = cKDTree(xyz)
    manual_cells = np.flatnonzero(cells["coregistered"].to_numpy())
    second = rng.random(manual_cells.size) < MANUAL_SECOND_UNIT
    first_scan = _scans(manual_cells.size, rng)
    rows = np.concatenate([manual_cells, manual_cells[second]])
    scan = np.concatenate([first_scan, _scans(int(second.sum()), rng, first_scan[second])])
    n_ids = max(9600, 4 * rows.size)  # real unit ids run up to ~9,600 per scan (§2.5)
    unit_id = rng.choice(n_ids, size=rows.size, replace=False) + 1
    points = _functional_points(rows, xyz, MANUAL_RESIDUAL_UM, rng)
    residual, score = _separation(points, rows, xyz, tree)
    manual = _unit_frame(rows, scan, unit_id, rows, residual, score, depth)

    # automatic: most manual units again (its own, looser points), plus the other imageable
    # excitatory cells with 1 + Poisson units each
    again = rng.random(rows.size) < 0.85
    can = ((cells["cell_class"] == "excitatory_neuron").to_numpy() & (depth < 620.0)
           & ~cells["coregistered"].to_numpy())
    extra_cells = np.flatnonzero(can & (rng.random(len(cells)) < AUTO_EXTRA_CELLS))
    extra_rows = np.repeat(extra_cells, 1 + rng.poisson(AUTO_EXTRA_UNITS, extra_cells.size))
    a_rows = np.concatenate([rows[again], extra_rows])
    a_scan = np.concatenate([scan[again], _scans(extra_rows.size, rng)])
    used = set(unit_id.tolist())
    fresh = rng.choice(n_ids + extra_rows.size + len(used), size=extra_rows.size + len(used),
                       replace=False) + 1
    fresh = np.array([u for u in fresh if u not in used][:extra_rows.size], dtype=np.int64)
    a_unit = np.concatenate([unit_id[again], fresh])
    a_points = _functional_points(a_rows, xyz, AUTO_RESIDUAL_UM, rng)
    _, true_score = _separation(a_points, a_rows, xyz, tree)
    p_wrong = np.where(true_score < AUTO_CONFUSABLE_UM, AUTO_WRONG_LOW, AUTO_WRONG_HIGH)
    wrong = rng.random(a_rows.size) < p_wrong
    nearest = tree.query(a_points, k=2)[1]
    other = np.where(nearest[:, 0] == a_rows, nearest[:, 1], nearest[:, 0])
    assigned = np.where(wrong, other, a_rows)
    # a few units are matched to two nuclei (the true one and its nearest neighbour)
    twice = ~wrong & (rng.random(a_rows.size) < AUTO_TWO_NUCLEI)
    a_rows, a_scan, a_unit = (np.concatenate([a, a[twice]]) for a in (a_rows, a_scan, a_unit))
    a_points = np.concatenate([a_points, a_points[twice]])
    assigned = np.concatenate([assigned, other[twice]])
    a_residual, a_score = _separation(a_points, assigned, xyz, tree)
    auto = _unit_frame(a_rows, a_scan, a_unit, assigned, a_residual, a_score, depth)
    return manual, auto


#: Visual areas of the sample (``nucleus_functional_area_assignment``, datasets-facts §2.7:
#: tags V1, AL, RL, LM; the volume sits at the V1 border and reaches into AL and RL,
#: MICrONS Consortium 2025). The slab puts V1 at low x and the higher visual areas beyond a
#: slightly oblique border at this fraction of the slab's x extent, RL above the slab's z
#: midline and AL below it. Where the real border runs through the sample's part of the
#: volume is *assumed*; LM (a sliver at the edge of the real volume) is left out.
AREA_BORDER_U, AREA_BORDER_TILT = 0.65, 0.1
#: The ``value`` column: mean distance (um) to the 10 nearest nuclei of another area.
AREA_NEIGHBOURS = 10


def _slab_fractions(x_um: np.ndarray, z_um: np.ndarray, cells: pd.DataFrame
                    ) -> tuple[np.ndarray, np.ndarray]:
    x0, x1 = cells["x_um"].min(), cells["x_um"].max()
    z0, z1 = cells["z_um"].min(), cells["z_um"].max()
    return (x_um - x0) / (x1 - x0), (z_um - z0) / (z1 - z0)


def _border_u(w: np.ndarray) -> np.ndarray:
    return AREA_BORDER_U + AREA_BORDER_TILT * (w - 0.5)


def visual_area(x_um: np.ndarray, z_um: np.ndarray, cells: pd.DataFrame) -> np.ndarray:
    """Area tag (V1, AL, RL) of points in the cortical frame (ground truth of the sample)."""
    u, w = _slab_fractions(np.asarray(x_um), np.asarray(z_um), cells)
    hva = np.where(w >= 0.5, "RL", "AL")
    return np.where(u < _border_u(w), "V1", hva).astype(object)


def area_table(cells: pd.DataFrame, nucleus_ids: np.ndarray, created: pd.Series
               ) -> pd.DataFrame:
    """``nucleus_functional_area_assignment``: every nucleus, its area and its distance to
    the area border (the mean distance to the 10 nearest nuclei of another area)."""
    xyz = cells[["x_um", "y_um", "z_um"]].to_numpy(np.float64)
    tag = visual_area(xyz[:, 0], xyz[:, 2], cells)
    value = np.zeros(len(cells))
    for area in np.unique(tag):
        inside, outside = tag == area, tag != area
        k = min(AREA_NEIGHBOURS, int(outside.sum()))
        if k == 0:
            value[inside] = np.nan
            continue
        dist, _ = cKDTree(xyz[outside]).query(xyz[inside], k=k)
        value[inside] = np.asarray(dist).reshape(int(inside.sum()), k).mean(axis=1)
    return reference(np.arange(1, len(cells) + 1), created, nucleus_ids,
                     {"tag": tag, "value": value})


def readout_locations(x_um: np.ndarray, z_um: np.ndarray, cells: pd.DataFrame,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Digital-twin readout locations (stimulus units, [-1, 1]): a retinotopic map (x ->
    azimuth, z -> elevation) across the slab plus single-cell scatter. The azimuth map is
    mirrored at the V1 / higher-area border (the field sign reverses there: Garrett et al.
    2014, Zhuang et al. 2017), so azimuth grows with x in V1 and falls again beyond it."""
    u, w = _slab_fractions(x_um, z_um, cells)
    border = _border_u(w)
    mirrored = np.where(u < border, u, 2 * border - u)
    loc_x = -0.2 + READOUT_SPAN * (mirrored - 0.5)
    loc_y = 0.1 + READOUT_SPAN * (w - 0.5)
    loc_x = loc_x + rng.normal(0, READOUT_SCATTER, size=x_um.size)
    loc_y = loc_y + rng.normal(0, READOUT_SCATTER, size=z_um.size)
    return np.clip(loc_x, -1, 1), np.clip(loc_y, -1, 1)


def _coreg_table(units: pd.DataFrame, nucleus_ids: np.ndarray, created: pd.Series
                 ) -> pd.DataFrame:
    return reference(np.arange(1, len(units) + 1), created,
                     nucleus_ids[units["assigned"].to_numpy()],
                     {c: units[c].to_numpy() for c in ("session", "scan_idx", "unit_id", "field",
                                                       "residual", "score")})


def twin_properties(unit_rows: np.ndarray, cells: pd.DataFrame, rng: np.random.Generator
                    ) -> dict[str, np.ndarray]:
    """Digital-twin property columns of units imaging the cells ``unit_rows`` (degrees; 0 =
    vertical bar moving right, counter-clockwise; datasets-facts §2.6): the cell's latent
    tuning measured with noise that shrinks with cc_abs and OSI."""
    n = unit_rows.size
    theta = cells["pref_ori_rad"].to_numpy()[unit_rows]
    osi = cells["osi"].to_numpy()[unit_rows]
    cc_abs = np.clip(rng.beta(3, 3.5, size=n), 0.05, 0.95)
    cc_max = np.clip(cc_abs + rng.uniform(0.05, 0.3, size=n), 0.1, 1.0)
    noise = rng.normal(0, 1, size=n) * (0.06 + 0.2 * (1 - osi)) / np.sqrt(cc_abs + 0.2)
    ori = np.degrees((theta + noise) % np.pi)
    dir_bit = unit_hash(cells["nucleus_id"].to_numpy()[unit_rows], 5) < 0.5
    g_osi = np.clip(osi * rng.uniform(0.75, 1.15, size=n), 0.0, 1.0)
    loc_x, loc_y = readout_locations(cells["x_um"].to_numpy()[unit_rows],
                                     cells["z_um"].to_numpy()[unit_rows], cells, rng)
    return {"cc_abs": cc_abs, "cc_max": cc_max, "cc_norm": cc_abs / cc_max,
            "OSI": np.clip(g_osi * rng.uniform(1.1, 1.6, size=n), 0, 1),
            "DSI": np.clip(rng.beta(1.5, 6, size=n), 0, 1), "gOSI": g_osi,
            "gDSI": np.clip(rng.beta(1.5, 8, size=n), 0, 1), "pref_ori": ori,
            "pref_dir": (ori + 180.0 * dir_bit) % 360.0,
            "readout_loc_x": loc_x, "readout_loc_y": loc_y}


#: The combined automatic table is the union of two automatic methods (datasets-facts §2.5):
#: share of its units found by each (at least one of the two), *assumed*. The digital-twin
#: tables of the two methods (``..._coreg_auto_phase3_fwd_v2``, ``..._coreg_apl_vess_fwd``,
#: §2.6, from v1507) hold the units of that method.
AUTO_METHODS = (("digital_twin_properties_bcm_coreg_auto_phase3_fwd_v2", 0.8),
                ("digital_twin_properties_bcm_coreg_apl_vess_fwd", 0.6))
#: Share of automatic unit keys with digital-twin properties (as the manual ~80 %, *assumed*).
AUTO_TWIN_SHARE = 0.8
#: The co-registration tables of the two automatic methods (datasets-facts §2.5, §2.9:
#: ``coregistration_auto_phase3_fwd_v2`` from v1300, ``apl_functional_coreg_vess_fwd`` from
#: v943), in the order of :data:`AUTO_METHODS`: each holds the rows of the combined table its
#: method found, with the same residual and score (*assumed*: the real per-method residuals
#: and scores are not documented), and its own ``created`` times (first day; *assumed*, before
#: the version that introduced it).
AUTO_METHOD_COREG = (("coregistration_auto_phase3_fwd_v2", "2024-11-18T00:00:00"),
                     ("apl_functional_coreg_vess_fwd", "2023-12-11T00:00:00"))
#: Seed of the ``created`` times of the per-method tables: their own stream, so that the draws
#: of every other table stay what they were.
AUTO_METHOD_SALT = 0xC0E6


def auto_twin_tables(auto: pd.DataFrame, twin: pd.DataFrame,
                     cells: pd.DataFrame, nucleus_ids: np.ndarray,
                     rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """The digital-twin property tables and the co-registration tables of the two
    automatic methods.

    Properties belong to the unit (session, scan_idx, unit_id), so a unit that also has a
    row in the manual twin table has the same properties here; ``target_id`` is the nucleus
    the automatic method matched it to (wrong now and then), and the properties are those of
    the cell the unit truly images. A method's co-registration table holds the rows of the
    combined automatic table that method found (:data:`AUTO_METHOD_COREG`); the twin table of
    a method holds the same matches, for the units with properties.
    """
    keys = ["session", "scan_idx", "unit_id"]
    unit_key = auto[keys].drop_duplicates().reset_index(drop=True)
    unit_key["unit_row"] = auto.drop_duplicates(keys)["unit_row"].to_numpy()
    unit_key["has_twin"] = rng.random(len(unit_key)) < AUTO_TWIN_SHARE
    props = unit_key.merge(twin.drop(columns=["id", "created", "superceded_id", "valid",
                                              "target_id"]), on=keys, how="left")
    known = props["cc_abs"].notna().to_numpy()
    props.loc[known, "has_twin"] = True
    draw = np.flatnonzero(~known & props["has_twin"].to_numpy())
    new = twin_properties(props["unit_row"].to_numpy()[draw], cells, rng)
    for column, values in new.items():
        props.loc[props.index[draw], column] = values
    props = props[props["has_twin"]].drop(columns=["unit_row", "has_twin"])
    first = rng.random(len(auto)) < AUTO_METHODS[0][1]
    second = ~first | (rng.random(len(auto)) < AUTO_METHODS[1][1])
    tables = {}
    for (name, _), in_method in zip(AUTO_METHODS, (first, second), strict=True):
        rows = auto.loc[in_method, [*keys, "assigned"]].merge(props, on=keys)
        tables[name] = reference(
            np.arange(1, len(rows) + 1),
            timestamps(rng, len(rows), "2025-07-22T00:00:00", days(2)),
            nucleus_ids[rows["assigned"].to_numpy()],
            {c: rows[c].to_numpy() for c in [*keys, *new]})
    method_rng = np.random.default_rng(AUTO_METHOD_SALT)
    for (name, start), in_method in zip(AUTO_METHOD_COREG, (first, second), strict=True):
        units = auto.loc[in_method]
        tables[name] = _coreg_table(units, nucleus_ids,
                                    timestamps(method_rng, len(units), start, days(1)))
    return tables


# long but linear: four tables drawn in a fixed order from one generator
def function_tables(cells: pd.DataFrame, nucleus_ids: np.ndarray, rng: np.random.Generator
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """Manual co-registration, v3 functional properties, digital-twin properties (on the
    manual units), the combined automatic co-registration, and the co-registration and
    digital-twin tables of the two automatic methods (name -> table)."""
    manual, auto = coregistration_units(cells, rng)
    unit_rows = manual["unit_row"].to_numpy()
    m = unit_rows.size
    coreg = _coreg_table(manual, nucleus_ids,
                         timestamps(rng, m, "2024-01-10T00:00:00", days(2)))
    auto_table = _coreg_table(auto, nucleus_ids,
                              timestamps(rng, len(auto), "2024-11-20T00:00:00", days(5)))
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
    twin = reference(
        np.arange(1, t.size + 1), timestamps(rng, t.size, "2025-07-20T00:00:00", days(2)),
        coreg["target_id"].to_numpy()[t],
        {"session": coreg["session"].to_numpy()[t], "scan_idx": coreg["scan_idx"].to_numpy()[t],
         "unit_id": coreg["unit_id"].to_numpy()[t],
         **twin_properties(unit_rows[t], cells, rng)})
    auto_twins = auto_twin_tables(auto, twin, cells, nucleus_ids, rng)
    return coreg, func_v3, twin, auto_table, auto_twins
