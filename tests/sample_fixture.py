"""A tiny, contract-complete sample datastack for the server tests.

It writes one ``<data_dir>/<datastack>/`` directory exactly as described in
``offline_cave.layout`` (datastack/versions/tables/views JSON, per-version parquet tables,
segment history, skeletons, ground truth, MANIFEST written last), small enough to build in
well under a second. The real generator (``offline_cave.sample``) produces the same layout
at scale; the server must not be able to tell the difference.

What it contains (all deterministic):

* 12 cells with nuclei (9 neurons, 3 glia) plus one nucleus outside the segmentation
  (``pt_root_id == 0``), and 6 soma-less fragments.
* Two materialized versions, 1300 and 1822, and three listed-only versions.
* One split and one merge between 1300 and 1822:
  ``SPLIT_PARENT -> (SPLIT_CHILD_CELL, SPLIT_CHILD_FRAGMENT)`` and
  ``(MERGE_CELL, MERGE_FRAGMENT) -> MERGE_CHILD``. Every ``*_root_id`` column of every
  materialized table is the root of its supervoxel at that version's timestamp, so the
  tables and the chunkedgraph agree.
* Tables: nucleus_detection_v0, synapses_pni_2, aibs_metamodel_celltypes_v661 (reference on
  nuclei), proofreading_status_and_strategy, nucleus_alternative_points (reference with its
  own point), synapse_target_predictions_ssa (reference on synapses; 1300 only),
  functional_properties_v3_bcm and digital_twin_properties_bcm_coreg_v4 (1822 only).
* The view nucleus_detection_lookup_v1.
* Skeletons (nm) for every cell with a nucleus.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from offline_cave import layout

DATASTACK = "minnie65_public"
PCG_TABLE = "minnie3_v1"
VOXEL_RES = (4.0, 4.0, 40.0)
CHUNK_OFFSET = (26385, 30308, 14850)
CHUNK_SIZE = (256, 256, 512)

VERSIONS = (  # version, time_stamp, valid (listed as not expired), materialized
    (117, "2021-06-11T08:10:00.215114", True, False),
    (1300, "2025-01-13T10:10:01.286229", True, True),
    (1412, "2025-04-29T10:10:01.200893", False, False),
    (1507, "2025-07-31T08:10:01.117494", True, False),
    (1822, "2026-06-27T14:05:22.813147", True, True),
)
T0 = datetime(2020, 10, 1, 12, 0, tzinfo=UTC).timestamp()  # all original roots
T_SPLIT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC).timestamp()
T_MERGE = datetime(2025, 9, 1, 12, 0, tzinfo=UTC).timestamp()
OP_SPLIT = 101
OP_MERGE = 102
ROOT_BASE = 12 << layout.ROOT_LAYER_SHIFT

CELL_TYPES = ("23P", "23P", "4P", "5P-IT", "5P-ET", "6P-IT", "BC", "MC", "BPC",
              "astrocyte", "oligo", "microglia")
TS = pa.timestamp("us", tz="UTC")


def version_ts(version: int) -> float:
    """Unix seconds of a fixture version's time_stamp."""
    for v, ts, _, _ in VERSIONS:
        if v == version:
            return datetime.fromisoformat(ts).replace(tzinfo=UTC).timestamp()
    raise KeyError(version)


def supervoxel_id(pos_vx: np.ndarray, counter: int) -> int:
    """The PyChunkedGraph layer-1 id of a point given in 4x4x40 nm voxels."""
    cx = int((pos_vx[0] / 2 - CHUNK_OFFSET[0]) // CHUNK_SIZE[0])
    cy = int((pos_vx[1] / 2 - CHUNK_OFFSET[1]) // CHUNK_SIZE[1])
    cz = int((pos_vx[2] - CHUNK_OFFSET[2]) // CHUNK_SIZE[2])
    return (1 << 56) | (cx << 46) | (cy << 36) | (cz << 26) | counter


@dataclass
class Fixture:
    """What a test needs to know about the fixture without re-deriving it."""

    data_dir: Path
    ds_dir: Path
    cell_roots_1300: dict[int, int] = field(default_factory=dict)  # nucleus -> root
    cell_roots_1822: dict[int, int] = field(default_factory=dict)
    nucleus_ids: list[int] = field(default_factory=list)
    zero_root_nucleus: int = 0
    split_parent: int = 0
    split_child_cell: int = 0
    split_child_fragment: int = 0
    merge_cell: int = 0
    merge_fragment: int = 0
    merge_child: int = 0
    fragment_roots: list[int] = field(default_factory=list)


class _Segments:
    """Pieces, supervoxels and the root history of the fixture."""

    def __init__(self) -> None:
        self.sv_piece: dict[int, int] = {}
        self.sv_counter = 1
        self.next_piece = 1
        self.roots: dict[int, dict] = {}  # root -> {created, expired, op, nucleus, pieces}

    def new_piece(self) -> int:
        self.next_piece += 1
        return self.next_piece - 1

    def add_sv(self, pos_vx: np.ndarray, piece: int) -> int:
        sv = supervoxel_id(pos_vx, self.sv_counter)
        self.sv_counter += 1
        self.sv_piece[sv] = piece
        return sv

    def add_root(self, root: int, pieces: list[int], created: float, nucleus: int,
                 op: int = 0, expired: float = math.inf) -> None:
        self.roots[root] = {"created": created, "expired": expired, "op": op,
                            "nucleus": nucleus, "pieces": list(pieces)}

    def root_at(self, sv: int, t: float) -> int:
        if sv == 0:
            return 0
        piece = self.sv_piece[sv]
        for root, rec in self.roots.items():
            if piece in rec["pieces"] and rec["created"] <= t < rec["expired"]:
                return root
        return 0


def _write_parquet(path: Path, columns: dict[str, pa.Array]) -> list[list[str]]:
    table = pa.table(columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=64)
    return [[f.name, str(f.type)] for f in table.schema]


def _positions(prefix: str, pts: np.ndarray) -> dict[str, pa.Array]:
    pts = np.asarray(pts, dtype=np.int64).reshape(-1, 3)
    return {f"{prefix}_position_{a}": pa.array(pts[:, i], pa.int64())
            for i, a in enumerate("xyz")}


def _created(n: int, when: str) -> pa.Array:
    t = datetime.fromisoformat(when).replace(tzinfo=UTC)
    return pa.array([t] * n, TS)


def _base_cols(ids: list[int], when: str) -> dict[str, pa.Array]:
    n = len(ids)
    return {"id": pa.array(ids, pa.int64()), "created": _created(n, when),
            "superceded_id": pa.array([None] * n, pa.int64()),
            "valid": pa.array([True] * n, pa.bool_())}


def build_fixture(data_dir: str | Path, datastack: str = DATASTACK) -> Fixture:
    """Write the fixture datastack under ``data_dir`` and return what tests need to know."""
    data_dir = Path(data_dir)
    ds = layout.datastack_dir(data_dir, datastack)
    ds.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1234)
    seg = _Segments()
    fx = Fixture(data_dir=data_dir, ds_dir=ds)

    # ---- cells: nucleus, soma position (4x4x40 voxels), pieces, root
    n_cells = len(CELL_TYPES)
    nucleus_ids = [250000 + 37 * i for i in range(n_cells)]
    soma = np.stack([rng.uniform(180000, 200000, n_cells), rng.uniform(100000, 200000, n_cells),
                     rng.uniform(20000, 21000, n_cells)], axis=1).astype(np.int64)
    counters = iter(range(3_600_000_000, 3_600_000_000 + 10_000, 7))
    cell_root: dict[int, int] = {}
    cell_pieces: dict[int, list[int]] = {}
    nucleus_sv: dict[int, int] = {}
    for i, nuc in enumerate(nucleus_ids):
        pieces = [seg.new_piece() for _ in range(5)]
        root = ROOT_BASE + next(counters)
        seg.add_root(root, pieces, T0, nuc)
        cell_root[nuc] = root
        cell_pieces[nuc] = pieces
        nucleus_sv[nuc] = seg.add_sv(soma[i], pieces[0])
    frag_roots = []
    frag_pieces: dict[int, list[int]] = {}
    for _ in range(6):
        pieces = [seg.new_piece() for _ in range(2)]
        root = ROOT_BASE + next(counters)
        seg.add_root(root, pieces, T0, 0)
        frag_roots.append(root)
        frag_pieces[root] = pieces

    # supervoxels for synapses: (pre root, post root) -> svs in that root's pieces
    def piece_of(root: int) -> int:
        pieces = seg.roots[root]["pieces"]
        return int(pieces[rng.integers(len(pieces))])

    neurons = nucleus_ids[:9]
    syn_rows = []
    syn_id = 1_000_000
    for post_nuc in neurons:
        post_root = cell_root[post_nuc]
        pre_candidates = [cell_root[n] for n in neurons if n != post_nuc] + frag_roots
        for _ in range(40):
            pre_root = pre_candidates[int(rng.integers(len(pre_candidates)))]
            ctr = soma[nucleus_ids.index(post_nuc)] + rng.normal(0, [2000, 2000, 60]).astype(np.int64)
            pre_pos = ctr + np.array([-50, 0, 0])
            post_pos = ctr + np.array([50, 0, 0])
            pre_sv = seg.add_sv(pre_pos, piece_of(pre_root))
            post_sv = seg.add_sv(post_pos, piece_of(post_root))
            size = int(4 * round(math.exp(rng.normal(7.94, 1.17)) / 4))
            syn_rows.append((syn_id, max(size, 4), pre_sv, post_sv, pre_pos, post_pos, ctr))
            syn_id += int(rng.integers(1, 5000))
    # one autapse (valid False by schema rule)
    a_root = cell_root[neurons[0]]
    pos = soma[0] + np.array([900, 900, 3])
    syn_rows.append((syn_id, 400, seg.add_sv(pos, piece_of(a_root)),
                     seg.add_sv(pos + 30, piece_of(a_root)), pos, pos + 30, pos + 15))

    # ---- edits between 1300 and 1822
    split_nuc, merge_nuc = neurons[2], neurons[3]
    rA = cell_root[split_nuc]
    pa_ = seg.roots[rA]["pieces"]
    rA1, rA2 = ROOT_BASE + next(counters), ROOT_BASE + next(counters)
    seg.roots[rA]["expired"] = T_SPLIT
    seg.add_root(rA1, pa_[:3], T_SPLIT, split_nuc, OP_SPLIT)
    seg.add_root(rA2, pa_[3:], T_SPLIT, 0, OP_SPLIT)
    rB, rF = cell_root[merge_nuc], frag_roots[0]
    rB1 = ROOT_BASE + next(counters)
    seg.roots[rB]["expired"] = T_MERGE
    seg.roots[rF]["expired"] = T_MERGE
    seg.add_root(rB1, seg.roots[rB]["pieces"] + seg.roots[rF]["pieces"], T_MERGE, merge_nuc,
                 OP_MERGE)
    lineage = [(rA, rA1, OP_SPLIT, T_SPLIT), (rA, rA2, OP_SPLIT, T_SPLIT),
               (rB, rB1, OP_MERGE, T_MERGE), (rF, rB1, OP_MERGE, T_MERGE)]
    fx.split_parent, fx.split_child_cell, fx.split_child_fragment = rA, rA1, rA2
    fx.merge_cell, fx.merge_fragment, fx.merge_child = rB, rF, rB1
    fx.fragment_roots = frag_roots
    fx.nucleus_ids = nucleus_ids + [nucleus_ids[-1] + 1000]
    fx.zero_root_nucleus = fx.nucleus_ids[-1]

    # ---- JSON metadata
    datastack_json = {
        "name": datastack,
        "description": "Offline fixture of the minnie65 datastack (synthetic).",
        "aligned_volume": {"id": 1, "name": "minnie65_phase3", "display_name": "Minnie65",
                           "description": "fixture aligned volume"},
        "synapse_table": "synapses_pni_2", "soma_table": "nucleus_detection_v0",
        "viewer_resolution": list(VOXEL_RES),
        "viewer_site": "https://spelunker.cave-explorer.org/",
        "pcg_table_name": PCG_TABLE,
        "segmentation_bounds_vx": [[170000, 90000, 19000], [210000, 210000, 22000]],
        "base_resolution": [8, 8, 40],
        "chunk_size": list(CHUNK_SIZE),
        "chunk_offset_vx": list(CHUNK_OFFSET),
        "public_local_server": "https://minnie.microns-daf.com",
    }
    versions_json = [
        {"version": v, "time_stamp": ts, "expires_on": "2121-01-01T00:00:00.000000",
         "valid": valid, "status": "AVAILABLE", "is_merged": True, "materialized": mat}
        for v, ts, valid, mat in VERSIONS
    ]
    tables: dict[str, dict] = {}

    def table_meta(name: str, schema: str, ref: str | None, introduced: int,
                   removed: int | None, desc: str, notice: str | None = None) -> dict:
        return {"table_name": name, "schema": schema, "schema_type": schema,
                "reference_table": ref, "description": desc, "notice_text": notice,
                "voxel_resolution": list(VOXEL_RES), "created": "2020-11-02T18:56:35.530100",
                "introduced": introduced, "removed": removed, "columns": [], "row_counts": {}}

    tables["nucleus_detection_v0"] = table_meta(
        "nucleus_detection_v0", "nucleus_detection", None, 117, None,
        "Nucleus detections (fixture).")
    tables["synapses_pni_2"] = table_meta(
        "synapses_pni_2", "synapse", None, 117, None, "Synapses (fixture).")
    tables["aibs_metamodel_celltypes_v661"] = table_meta(
        "aibs_metamodel_celltypes_v661", "cell_type_reference", "nucleus_detection_v0", 795,
        None, "Cell types from the metamodel (fixture).",
        notice="fixture notice: cell types are synthetic")
    tables["proofreading_status_and_strategy"] = table_meta(
        "proofreading_status_and_strategy", "compartment_proofread_status_strategy", None,
        1078, None, "Proofreading status (fixture).")
    tables["nucleus_alternative_points"] = table_meta(
        "nucleus_alternative_points", "reference_point", "nucleus_detection_v0", 661, None,
        "Alternative nucleus points (fixture).")
    tables["synapse_target_predictions_ssa"] = table_meta(
        "synapse_target_predictions_ssa", "reference_tag", "synapses_pni_2", 1300, 1822,
        "Spine/shaft/soma predictions (fixture).")
    tables["functional_properties_v3_bcm"] = table_meta(
        "functional_properties_v3_bcm", "func_properties_bcm", "nucleus_detection_v0", 943,
        None, "Functional properties (fixture).")
    tables["digital_twin_properties_bcm_coreg_v4"] = table_meta(
        "digital_twin_properties_bcm_coreg_v4", "digital_twin_properties",
        "nucleus_detection_v0", 1507, None, "Digital twin properties (fixture).")
    views_json = {
        "nucleus_detection_lookup_v1": {
            "description": "nucleus_detection_v0 with alternative points merged (fixture).",
            "live_compatible": True, "voxel_resolution": list(VOXEL_RES),
            "notice_text": None, "columns": [], "introduced": 1300},
    }

    # ---- per-version tables
    all_nuc = nucleus_ids + [fx.zero_root_nucleus]
    all_soma = np.vstack([soma, soma[-1] + np.array([5000, 5000, 10])])
    all_nsv = [nucleus_sv[n] for n in nucleus_ids] + [0]
    volumes = np.round(rng.lognormal(np.log(250), 0.25, len(all_nuc)), 2)
    syn = syn_rows
    for version, _ts, _, materialized in VERSIONS:
        if not materialized:
            continue
        t = version_ts(version)
        vdir = layout.version_dir(ds, version)
        roots_of = [seg.root_at(sv, t) for sv in all_nsv]
        if version == 1300:
            fx.cell_roots_1300 = {n: r for n, r in zip(all_nuc, roots_of, strict=True) if r}
        else:
            fx.cell_roots_1822 = {n: r for n, r in zip(all_nuc, roots_of, strict=True) if r}
        n = len(all_nuc)
        nan3 = np.zeros((n, 3), np.int64)
        cols = {**_base_cols(all_nuc, "2020-09-28T22:40:41.000000"),
                "volume": pa.array(volumes, pa.float64()),
                "pt_supervoxel_id": pa.array(all_nsv, pa.int64()),
                "pt_root_id": pa.array(roots_of, pa.int64()),
                **_positions("pt", all_soma), **_positions("bb_start", nan3 + all_soma - 200),
                **_positions("bb_end", nan3 + all_soma + 200)}
        tables["nucleus_detection_v0"]["columns"] = _write_parquet(
            vdir / "nucleus_detection_v0.parquet", cols)
        tables["nucleus_detection_v0"]["row_counts"][str(version)] = n

        # synapses sorted by post root then pre root (what the generator does for pushdown)
        recs = []
        for sid, size, pre_sv, post_sv, pre_pos, post_pos, ctr in syn:
            pre_r, post_r = seg.root_at(pre_sv, t), seg.root_at(post_sv, t)
            recs.append((post_r, pre_r, sid, size, pre_sv, post_sv, pre_pos, post_pos, ctr))
        recs.sort(key=lambda r: (r[0], r[1], r[2]))
        cols = {**_base_cols([r[2] for r in recs], "2020-11-04T06:48:03.000000"),
                "valid": pa.array([r[0] != r[1] for r in recs], pa.bool_()),
                "size": pa.array([r[3] for r in recs], pa.int64()),
                "pre_pt_supervoxel_id": pa.array([r[4] for r in recs], pa.int64()),
                "pre_pt_root_id": pa.array([r[1] for r in recs], pa.int64()),
                "post_pt_supervoxel_id": pa.array([r[5] for r in recs], pa.int64()),
                "post_pt_root_id": pa.array([r[0] for r in recs], pa.int64()),
                **_positions("pre_pt", np.array([r[6] for r in recs])),
                **_positions("post_pt", np.array([r[7] for r in recs])),
                **_positions("ctr_pt", np.array([r[8] for r in recs]))}
        tables["synapses_pni_2"]["columns"] = _write_parquet(
            vdir / "synapses_pni_2.parquet", cols)
        tables["synapses_pni_2"]["row_counts"][str(version)] = len(recs)
        syn_ids_sorted = [r[2] for r in recs]

        classes = ["excitatory_neuron"] * 6 + ["inhibitory_neuron"] * 3 + ["nonneuron"] * 3
        cols = {**_base_cols(list(range(1, n_cells + 1)), "2023-12-19T18:00:00.000000"),
                "target_id": pa.array(nucleus_ids, pa.int64()),
                "classification_system": pa.array(classes, pa.string()),
                "cell_type": pa.array(list(CELL_TYPES), pa.string())}
        tables["aibs_metamodel_celltypes_v661"]["columns"] = _write_parquet(
            vdir / "aibs_metamodel_celltypes_v661.parquet", cols)
        tables["aibs_metamodel_celltypes_v661"]["row_counts"][str(version)] = n_cells

        pr_nuc = neurons[:5]
        pr_idx = [nucleus_ids.index(x) for x in pr_nuc]
        pr_roots = [seg.root_at(nucleus_sv[x], t) for x in pr_nuc]
        cols = {**_base_cols([5209 + i for i in range(len(pr_nuc))], "2025-01-01T00:00:00.000000"),
                **_positions("pt", soma[pr_idx]),
                "valid_id": pa.array([seg.root_at(nucleus_sv[x], T0) for x in pr_nuc], pa.int64()),
                "status_dendrite": pa.array([True] * 5, pa.bool_()),
                "status_axon": pa.array([True, True, False, True, False], pa.bool_()),
                "strategy_dendrite": pa.array(["dendrite_extended", "dendrite_clean",
                                               "dendrite_clean", "dendrite_extended",
                                               "dendrite_clean"], pa.string()),
                "strategy_axon": pa.array(["axon_fully_extended", "axon_partially_extended",
                                           "none", "axon_interareal", "none"], pa.string()),
                "pt_supervoxel_id": pa.array([nucleus_sv[x] for x in pr_nuc], pa.int64()),
                "pt_root_id": pa.array(pr_roots, pa.int64())}
        tables["proofreading_status_and_strategy"]["columns"] = _write_parquet(
            vdir / "proofreading_status_and_strategy.parquet", cols)
        tables["proofreading_status_and_strategy"]["row_counts"][str(version)] = len(pr_nuc)

        # alternative point for the zero-root nucleus: a point inside the last glia cell
        alt_sv = nucleus_sv[nucleus_ids[-1]]
        cols = {**_base_cols([1], "2023-04-01T00:00:00.000000"),
                "target_id": pa.array([fx.zero_root_nucleus], pa.int64()),
                "pt_supervoxel_id": pa.array([alt_sv], pa.int64()),
                "pt_root_id": pa.array([seg.root_at(alt_sv, t)], pa.int64()),
                **_positions("pt", soma[-1:])}
        tables["nucleus_alternative_points"]["columns"] = _write_parquet(
            vdir / "nucleus_alternative_points.parquet", cols)
        tables["nucleus_alternative_points"]["row_counts"][str(version)] = 1

        if version == 1300:
            tags = np.array(["spine", "shaft", "soma"])[rng.integers(0, 3, len(syn_ids_sorted))]
            cols = {**_base_cols(list(range(1, len(syn_ids_sorted) + 1)),
                                 "2024-12-01T00:00:00.000000"),
                    "target_id": pa.array(syn_ids_sorted, pa.int64()),
                    "tag": pa.array(tags.tolist(), pa.string())}
            tables["synapse_target_predictions_ssa"]["columns"] = _write_parquet(
                vdir / "synapse_target_predictions_ssa.parquet", cols)
            tables["synapse_target_predictions_ssa"]["row_counts"][str(version)] = len(tags)

        func_nuc = neurons[:6]
        cols = {**_base_cols(list(range(1, 7)), "2024-01-10T00:00:00.000000"),
                "target_id": pa.array(func_nuc, pa.int64()),
                "session": pa.array([4] * 6, pa.int64()),
                "scan_idx": pa.array([7] * 6, pa.int64()),
                "unit_id": pa.array(list(range(100, 106)), pa.int64()),
                "pref_ori": pa.array(rng.uniform(0, math.pi, 6), pa.float64()),
                "pref_dir": pa.array(rng.uniform(0, 2 * math.pi, 6), pa.float64()),
                "gOSI": pa.array(rng.uniform(0, 0.6, 6), pa.float64()),
                "gDSI": pa.array(rng.uniform(0, 0.3, 6), pa.float64()),
                "cc_abs": pa.array(rng.uniform(0.1, 0.6, 6), pa.float64())}
        tables["functional_properties_v3_bcm"]["columns"] = _write_parquet(
            vdir / "functional_properties_v3_bcm.parquet", cols)
        tables["functional_properties_v3_bcm"]["row_counts"][str(version)] = 6

        if version == 1822:
            cols = {**_base_cols(list(range(1, 7)), "2025-07-01T00:00:00.000000"),
                    "target_id": pa.array(func_nuc, pa.int64()),
                    "session": pa.array([4] * 6, pa.int64()),
                    "scan_idx": pa.array([7] * 6, pa.int64()),
                    "unit_id": pa.array(list(range(100, 106)), pa.int64()),
                    "cc_abs": pa.array(rng.uniform(0.1, 0.6, 6), pa.float64()),
                    "cc_max": pa.array(rng.uniform(0.6, 0.9, 6), pa.float64()),
                    "cc_norm": pa.array(rng.uniform(0.1, 0.9, 6), pa.float64()),
                    "OSI": pa.array(rng.uniform(0, 1, 6), pa.float64()),
                    "DSI": pa.array(rng.uniform(0, 1, 6), pa.float64()),
                    "gOSI": pa.array(rng.uniform(0, 0.6, 6), pa.float64()),
                    "gDSI": pa.array(rng.uniform(0, 0.3, 6), pa.float64()),
                    "pref_ori": pa.array(rng.uniform(0, 180, 6), pa.float64()),
                    "pref_dir": pa.array(rng.uniform(0, 360, 6), pa.float64()),
                    "readout_loc_x": pa.array(rng.uniform(-1, 1, 6), pa.float64()),
                    "readout_loc_y": pa.array(rng.uniform(-1, 1, 6), pa.float64())}
            tables["digital_twin_properties_bcm_coreg_v4"]["columns"] = _write_parquet(
                vdir / "digital_twin_properties_bcm_coreg_v4.parquet", cols)
            tables["digital_twin_properties_bcm_coreg_v4"]["row_counts"][str(version)] = 6

        # view: nucleus table with the alternative point's root filled in
        view_roots = list(roots_of)
        view_roots[-1] = seg.root_at(alt_sv, t)
        view_sv = list(all_nsv)
        view_sv[-1] = alt_sv
        cols = {"id": pa.array(all_nuc, pa.int64()),
                "volume": pa.array(volumes, pa.float64()),
                "pt_supervoxel_id": pa.array(view_sv, pa.int64()),
                "pt_root_id": pa.array(view_roots, pa.int64()),
                **_positions("pt", all_soma)}
        views_json["nucleus_detection_lookup_v1"]["columns"] = _write_parquet(
            vdir / "nucleus_detection_lookup_v1.parquet", cols)

    # ---- segments
    sv_sorted = sorted(seg.sv_piece)
    _write_parquet(ds / layout.PIECES_PARQUET, {
        "supervoxel_id": pa.array(sv_sorted, pa.int64()),
        "piece_id": pa.array([seg.sv_piece[s] for s in sv_sorted], pa.int64())})
    roots_sorted = sorted(seg.roots)
    _write_parquet(ds / layout.ROOTS_PARQUET, {
        "root_id": pa.array(roots_sorted, pa.int64()),
        "created": pa.array([seg.roots[r]["created"] for r in roots_sorted], pa.float64()),
        "expired": pa.array([seg.roots[r]["expired"] for r in roots_sorted], pa.float64()),
        "operation_id": pa.array([seg.roots[r]["op"] for r in roots_sorted], pa.int64()),
        "nucleus_id": pa.array([seg.roots[r]["nucleus"] for r in roots_sorted], pa.int64())})
    rp = sorted((r, p) for r in seg.roots for p in seg.roots[r]["pieces"])
    _write_parquet(ds / layout.ROOT_PIECES_PARQUET, {
        "root_id": pa.array([r for r, _ in rp], pa.int64()),
        "piece_id": pa.array([p for _, p in rp], pa.int64())})
    _write_parquet(ds / layout.LINEAGE_PARQUET, {
        "parent_root_id": pa.array([r[0] for r in lineage], pa.int64()),
        "child_root_id": pa.array([r[1] for r in lineage], pa.int64()),
        "operation_id": pa.array([r[2] for r in lineage], pa.int64()),
        "timestamp": pa.array([r[3] for r in lineage], pa.float64())})

    # ---- skeletons (nm): soma + 3 dendrites + 1 axon per cell, a few dozen vertices
    sk = {k: [] for k in layout.SKELETON_COLUMNS}
    summary = {k: [] for k in layout.SKELETON_CELL_COLUMNS}
    for i, nuc in enumerate(nucleus_ids):
        center = soma[i] * np.array(VOXEL_RES)
        verts = [center]
        parents = [-1]
        radius = [4000.0]
        comp = [1]
        for b, (direction, c, nseg) in enumerate(
                [((0, -1, 0), 4, 10), ((1, 0.3, 0), 3, 6), ((-1, 0.4, 0.1), 3, 6),
                 ((0, 1, 0), 2, 12)]):
            d = np.asarray(direction, float) / np.linalg.norm(direction)
            prev = 0
            for s in range(1, nseg + 1):
                jitter = rng.normal(0, 300, 3)
                verts.append(center + d * (4000 + 2500 * s) + jitter)
                parents.append(prev)
                radius.append(900.0 - 50 * s if c != 2 else 150.0)
                comp.append(c)
                prev = len(verts) - 1
            if b == 0:  # a side branch on the apical dendrite
                base = len(verts) - 5
                for s in range(1, 4):
                    verts.append(verts[base] + np.array([2000.0 * s, 0, 0]))
                    parents.append(base if s == 1 else len(verts) - 2)
                    radius.append(400.0)
                    comp.append(4)
        verts = np.asarray(verts)
        nv = len(verts)
        sk["nucleus_id"] += [nuc] * nv
        sk["node"] += list(range(nv))
        sk["parent"] += parents
        sk["x"] += verts[:, 0].tolist()
        sk["y"] += verts[:, 1].tolist()
        sk["z"] += verts[:, 2].tolist()
        sk["radius"] += radius
        sk["compartment"] += comp
        summary["nucleus_id"].append(nuc)
        summary["cell_type"].append(CELL_TYPES[i])
        summary["n_vertices"].append(nv)
        summary["soma_radius_nm"].append(4000.0)
        summary["axon_length_um"].append(30.0)
        summary["dendrite_length_um"].append(100.0)
    _write_parquet(ds / layout.SKELETONS_PARQUET, {
        "nucleus_id": pa.array(sk["nucleus_id"], pa.int64()),
        "node": pa.array(sk["node"], pa.int32()),
        "parent": pa.array(sk["parent"], pa.int32()),
        "x": pa.array(sk["x"], pa.float32()), "y": pa.array(sk["y"], pa.float32()),
        "z": pa.array(sk["z"], pa.float32()),
        "radius": pa.array(sk["radius"], pa.float32()),
        "compartment": pa.array(sk["compartment"], pa.int8())})
    _write_parquet(ds / layout.SKELETON_CELLS_PARQUET, {
        "nucleus_id": pa.array(summary["nucleus_id"], pa.int64()),
        "cell_type": pa.array(summary["cell_type"], pa.string()),
        "n_vertices": pa.array(summary["n_vertices"], pa.int64()),
        "soma_radius_nm": pa.array(summary["soma_radius_nm"], pa.float64()),
        "axon_length_um": pa.array(summary["axon_length_um"], pa.float64()),
        "dendrite_length_um": pa.array(summary["dendrite_length_um"], pa.float64())})

    # ---- ground truth (not served)
    _write_parquet(ds / layout.CELLS_PARQUET, {
        "nucleus_id": pa.array(nucleus_ids, pa.int64()),
        "cell_class": pa.array(["excitatory_neuron"] * 6 + ["inhibitory_neuron"] * 3
                               + ["nonneuron"] * 3, pa.string()),
        "cell_type": pa.array(list(CELL_TYPES), pa.string()),
        "pt_x": pa.array(soma[:, 0], pa.int64()), "pt_y": pa.array(soma[:, 1], pa.int64()),
        "pt_z": pa.array(soma[:, 2], pa.int64())})

    for name, obj in [(layout.DATASTACK_JSON, datastack_json),
                      (layout.VERSIONS_JSON, versions_json),
                      (layout.TABLES_JSON, tables), (layout.VIEWS_JSON, views_json)]:
        (ds / name).write_text(json.dumps(obj, indent=1))
    files = {}
    for path in sorted(ds.rglob("*")):
        if path.is_file() and layout.CACHE_DIR not in path.relative_to(ds).parts:
            rel = path.relative_to(ds).as_posix()
            files[rel] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                          "bytes": path.stat().st_size}
    manifest = {"generator_version": "fixture", "datastack": datastack, "seed": 0,
                "scale": 0.0, "params_hash": "fixture", "created": "2026-01-01T00:00:00",
                "elapsed_s": 0.0, "files": files}
    (ds / layout.MANIFEST).write_text(json.dumps(manifest, indent=1))
    return fx


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    build_fixture(sys.argv[1])
