"""Annotation tables that are not the pipeline's core: the reference tables of each datastack
(static between versions, or functions of the roots at a version) and the proofreading table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from offline_cave.contract.files import file_entry
from offline_cave.contract.geometry import Slab
from offline_cave.contract.hashing import multiplicative_bucket, unit_hash
from offline_cave.contract.params import INH_TYPES, V1DD_TYPE_OF
from offline_cave.generator.annotations import (
    days,
    noisy_labels,
    proofreading,
    reference,
    timestamps,
)
from offline_cave.generator.function import area_table, function_tables, imaged_cells
from offline_cave.generator.writer import Writer

#: stream of unit_hash for the "Unsure E" labels of the column table
UNSURE_E_SALT = 0x7E11
#: seed of the creation times of nucleus_functional_area_assignment
AREA_SALT = 0xA5EA


def minnie_static_tables(cells: pd.DataFrame, is_neuron: np.ndarray, slab: Slab,
                         tb_rng: np.random.Generator, fn_rng: np.random.Generator) -> dict:
    """Tables of minnie65_public that do not change between versions (reference tables)."""
    n = len(cells)
    nucleus_ids = cells["nucleus_id"].to_numpy()
    xyz = cells[["x_um", "y_um", "z_um"]].to_numpy()
    typed = is_neuron | (cells["cell_class"] == "nonneuron").to_numpy()
    reported_type = noisy_labels(cells["cell_type"].to_numpy(), tb_rng, 0.01)
    if "example" in cells:  # the tutorials' example cells show their true type
        planted = cells["example"].to_numpy() != ""
        reported_type[planted] = cells["cell_type"].to_numpy()[planted]
    celltype_rows = np.flatnonzero(typed)
    celltypes = reference(
        np.arange(1, celltype_rows.size + 1), timestamps(tb_rng, celltype_rows.size,
                                                         "2023-12-19T18:00:00", 3600),
        nucleus_ids[celltype_rows],
        {"classification_system": cells["cell_class"].to_numpy()[celltype_rows],
         "cell_type": reported_type[celltype_rows]})
    mtype_rows = np.flatnonzero(is_neuron)
    mtypes = reference(
        np.arange(1, mtype_rows.size + 1),
        timestamps(tb_rng, mtype_rows.size, "2023-12-19T19:00:00", 3600),
        nucleus_ids[mtype_rows],
        {"classification_system": cells["cell_class"].to_numpy()[mtype_rows],
         "cell_type": cells["mtype"].to_numpy()[mtype_rows]})
    # the 100 x 100 um column through the slab centre (Schneider-Mizell et al.)
    centre = (slab.box_min + slab.box_max) / 2
    in_column = (np.abs(xyz[:, 0] - centre[0]) < 50) & (np.abs(xyz[:, 2] - centre[2]) < 50)
    col_rows = np.flatnonzero(in_column & is_neuron)
    col_type = cells["cell_type"].to_numpy()[col_rows].astype(object)
    col_type = np.where(col_type == "NGC", "Unsure I", col_type)
    col_type = np.where(tb_rng.random(col_rows.size) < 0.02, "Unsure", col_type)
    # the rarer labels of the real column table (datasets-facts §2.3): "WM-P" for pyramidal
    # cells at the white-matter border (the m-type table's L6wm depth), "Unsure E" for a few
    # excitatory cells; drawn from hashes of the nucleus ids so no other table changes
    col_depth = cells["depth_um"].to_numpy()[col_rows]
    deep_pyramidal = np.isin(col_type, ["6P-IT", "6P-CT"]) & (col_depth > 800)
    col_type = np.where(deep_pyramidal, "WM-P", col_type)
    unsure_e = (~np.isin(cells["cell_type"].to_numpy()[col_rows], INH_TYPES)
                & (unit_hash(nucleus_ids[col_rows], UNSURE_E_SALT) < 0.015))
    col_type = np.where(unsure_e & (col_type != "Unsure"), "Unsure E", col_type)
    col_system = np.where(np.isin(cells["cell_type"].to_numpy()[col_rows], INH_TYPES),
                          "aibs_coarse_inhibitory", "aibs_coarse_excitatory")
    column_types = reference(np.arange(1, col_rows.size + 1),
                             timestamps(tb_rng, col_rows.size, "2023-03-18T00:00:00", 7200),
                             nucleus_ids[col_rows],
                             {"classification_system": col_system, "cell_type": col_type})
    glia_col = np.flatnonzero(in_column & (cells["cell_class"] == "nonneuron").to_numpy())
    column_glia = reference(np.arange(1, glia_col.size + 1),
                            timestamps(tb_rng, glia_col.size, "2023-03-18T02:00:00", 3600),
                            nucleus_ids[glia_col],
                            {"classification_system": np.full(glia_col.size,
                                                              "aibs_coarse_nonneuronal"),
                             "cell_type": cells["cell_type"].to_numpy()[glia_col]})
    svm_label = np.where(is_neuron, "neuron", "not-neuron").astype(object)
    flip = np.where(is_neuron, tb_rng.random(n) < 0.004, tb_rng.random(n) < 0.03)
    svm_label[flip] = np.where(svm_label[flip] == "neuron", "not-neuron", "neuron")
    neuron_svm = reference(np.arange(1, n + 1),
                           timestamps(tb_rng, n, "2022-01-20T00:00:00", 7200), nucleus_ids,
                           {"classification_system": np.full(n, "is_neuron"),
                            "cell_type": svm_label})

    coreg, func_v3, twin, coreg_auto, auto_twins = function_tables(cells, nucleus_ids, fn_rng)
    # areas from positions only, stamped from their own stream (no draws from tb_rng /
    # fn_rng, so no other table changes)
    areas = area_table(cells, nucleus_ids,
                       timestamps(np.random.default_rng(AREA_SALT), n, "2023-04-20T00:00:00",
                                  days(1)))

    return {"nucleus_ref_neuron_svm": neuron_svm, "aibs_metamodel_celltypes_v661": celltypes,
            "aibs_metamodel_mtypes_v661_v2": mtypes,
            "allen_v1_column_types_slanted_ref": column_types,
            "aibs_column_nonneuronal_ref": column_glia, "coregistration_manual_v4": coreg,
            "functional_properties_v3_bcm": func_v3,
            "digital_twin_properties_bcm_coreg_v4": twin,
            "coregistration_auto_phase3_fwd_apl_vess_combined_v2": coreg_auto,
            "nucleus_functional_area_assignment": areas, **auto_twins}


# long but linear: three short tables (two as closures over the roots) and the NWB sessions
def v1dd_static_tables(cells: pd.DataFrame, is_neuron: np.ndarray, pt_vx: np.ndarray,
                       nuc_sv: np.ndarray, alt_rows: np.ndarray, alt_sv: np.ndarray,
                       core_piece: np.ndarray, rng: np.random.Generator, seed: int,
                       out: Writer) -> dict:
    """Tables of v1dd_public plus its two-photon sessions (NWB, written into ``out``)."""
    n = len(cells)
    nucleus_ids = cells["nucleus_id"].to_numpy()
    depth = cells["depth_um"].to_numpy()
    true_type = cells["cell_type"].to_numpy()
    v1dd_type = np.array([V1DD_TYPE_OF.get(t, t) for t in true_type], dtype=object)
    v1dd_type[true_type == "23P"] = np.where(depth[true_type == "23P"] < 200, "L2IT", "L3IT")
    six_it = true_type == "6P-IT"
    v1dd_type[six_it] = np.where(depth[six_it] > 795, "L6SP", "L6IT")
    # typed only >= 50 um from the volume's lateral borders (datasets-facts §2.10); tiny test
    # slabs use a fifth of their width instead
    x, z = cells["x_um"].to_numpy(), cells["z_um"].to_numpy()
    margin = min(50.0, 0.2 * (x.max() - x.min()), 0.2 * (z.max() - z.min()))
    inner = ((x - x.min() > margin) & (x.max() - x > margin) & (z - z.min() > margin)
             & (z.max() - z > margin))
    rows = np.flatnonzero(is_neuron & inner)
    exc = cells["cell_class"].to_numpy()[rows] == "excitatory_neuron"
    multifeature = reference(np.arange(1, rows.size + 1),
                             timestamps(rng, rows.size, "2025-05-02T00:00:00", days(1)),
                             nucleus_ids[rows],
                             {"classification_system": np.where(exc, "excitatory", "inhibitory"),
                              "cell_type": v1dd_type[rows]})
    neuron_rows = np.flatnonzero(is_neuron)
    created_soma = timestamps(rng, neuron_rows.size, "2025-04-10T00:00:00", days(1))
    sv_of_row = nuc_sv.copy()
    alt_index = pd.Series(np.arange(alt_rows.size), index=alt_rows)
    zero = sv_of_row == 0
    sv_of_row[zero] = alt_sv[alt_index[np.flatnonzero(zero)].to_numpy()]

    def soma_model(piece_root: np.ndarray) -> pd.DataFrame:
        root = piece_root[core_piece[neuron_rows]]
        single = ~pd.Series(root).duplicated(keep=False).to_numpy()
        keep = neuron_rows[single]
        cols = {"id": nucleus_ids[keep], "created": created_soma[single].to_numpy(),
                "superceded_id": pd.array([pd.NA] * keep.size, dtype="Int64"),
                "valid": np.ones(keep.size, dtype=bool),
                "pt_supervoxel_id": sv_of_row[keep], "pt_root_id": root[single]}
        for i, axis in enumerate("xyz"):
            cols[f"pt_position_{axis}"] = pt_vx[keep, i]
        return pd.DataFrame(cols)

    imaged = imaged_cells(cells)
    matched = imaged[imaged.nucleus_id > 0].reset_index(drop=True)
    row_of = pd.Series(np.arange(n), index=nucleus_ids)
    match_rows = row_of[matched.nucleus_id].to_numpy()
    created_coreg = timestamps(rng, len(matched), "2025-03-01T00:00:00", days(30))

    def coregistration(piece_root: np.ndarray) -> pd.DataFrame:
        cols = {"id": np.arange(1, len(matched) + 1, dtype=np.int64),
                "created": created_coreg.to_numpy(),
                "superceded_id": pd.array([pd.NA] * len(matched), dtype="Int64"),
                "valid": np.ones(len(matched), dtype=bool)}
        for i, axis in enumerate("xyz"):
            cols[f"pt_position_{axis}"] = pt_vx[match_rows, i]
        cols["pt_supervoxel_id"] = sv_of_row[match_rows]
        cols["pt_root_id"] = piece_root[core_piece[match_rows]]
        for key in ("column", "volume", "plane", "roi"):
            cols[key] = matched[key].to_numpy().astype(np.int64)
        cols["residual"] = np.zeros(len(matched))  # 0 in this manual table (datasets-facts §2.10)
        cols["score"] = np.zeros(len(matched))
        return pd.DataFrame(cols)

    from offline_cave.generator.twophoton.sessions import write_sessions

    sessions_dir = out.target / "sessions"
    write_sessions(sessions_dir, imaged, seed)
    # every file of the sessions directory (the files of the Zarr NWB stores, their
    # MANIFEST.json, the ROI truth) is in the datastack's manifest too, so serve verifies
    # them with the rest
    for path in sorted(p for p in sessions_dir.rglob("*") if p.is_file()):
        out.entries[f"sessions/{path.relative_to(sessions_dir).as_posix()}"] = file_entry(path)
    out.put("sessions/imaged_cells.parquet", imaged)
    return {"cell_type_multifeature_v1": multifeature, "neurons_soma_model": soma_model,
            "functional_coregistration_manual_2": coregistration}


def proofreading_table(cells: pd.DataFrame, t_snap: float, piece_root: np.ndarray,
                       core_piece: np.ndarray, pt_vx: np.ndarray, nuc_sv: np.ndarray,
                       alt_rows: np.ndarray, alt_sv: np.ndarray) -> pd.DataFrame:
    """Proofreading status at a version: proofread axons done by then + dendrite-only rows."""
    done = cells["proofread_time"].to_numpy() < t_snap
    neuron = cells["cell_class"].isin(["excitatory_neuron", "inhibitory_neuron"]).to_numpy()
    # dendrite-only assessments (strategy_axon 'none'): ~8 % of rows at v1300 (149 of 1,865)
    dendrite_only = neuron & ~cells["proofread_axon"].to_numpy() & (
        multiplicative_bucket(cells["nucleus_id"].to_numpy(), 2246822519, 1000, shift=5) < 5)
    rows = np.flatnonzero(done | dendrite_only)
    k = rows.size
    h = multiplicative_bucket(cells["nucleus_id"].to_numpy()[rows], 2654435761, 1000)
    axon = done[rows]
    strategy_axon = np.where(~axon, "none",
                             np.where(h < 80, "axon_fully_extended",
                                      np.where(h < 150, "axon_interareal",
                                               "axon_partially_extended")))
    strategy_dendrite = np.where(h % 7 < 2, "dendrite_extended", "dendrite_clean")
    if "example" in cells:  # the change-log cell's strategies are public (examples.py)
        is_log = cells["example"].to_numpy()[rows] == "change_log"
        strategy_axon = np.where(is_log & axon, "axon_partially_extended", strategy_axon)
        strategy_dendrite = np.where(is_log, "dendrite_extended", strategy_dendrite)
    sv = nuc_sv[rows].copy()
    alt_index = pd.Series(np.arange(alt_rows.size), index=alt_rows)
    missing = sv == 0
    sv[missing] = alt_sv[alt_index[rows[missing]].to_numpy()]
    root = piece_root[core_piece[rows]]
    # rows are (re)assessed at proofreading time: valid_id is the root at that moment, which is
    # the current root unless the cell was edited since
    created = pd.to_datetime(np.where(axon, cells["proofread_time"].to_numpy()[rows],
                                      np.full(k, t_snap - days(30))), unit="s", utc=True)
    order = np.argsort(created.to_numpy(), kind="stable")
    rows, strategy_axon, strategy_dendrite, sv, root = (rows[order], strategy_axon[order],
                                                        strategy_dendrite[order], sv[order],
                                                        root[order])
    created = created[order]
    return proofreading(np.arange(1, k + 1), pd.Series(created.round("us").as_unit("us")), pt_vx[rows], root,
                        np.ones(k, dtype=bool), axon[order], strategy_dendrite, strategy_axon,
                        sv, root)
