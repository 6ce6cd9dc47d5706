"""Generate, cache and validate a synthetic sample datastack (``python -m offline_cave generate``).

Pipeline: parameters -> cells (``cells``) -> skeletons (``morphology``) -> synapses
(``synapses``) -> segmentation pieces and proofreading edits (``segments``) -> per-version
annotation tables (``tables``) -> Parquet/JSON files (``layout``) -> MANIFEST.json last.

Determinism: every stage draws from its own ``numpy`` generator seeded by ``(seed, stage)``
(skeletons by ``(seed, stage, nucleus_id)``), so the same seed and scale give byte-identical
tables whatever the number of worker processes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from offline_cave.contract import layout
from offline_cave.contract.catalog import SYNTHETIC_NOTICE, TABLES, VIEWS
from offline_cave.contract.files import file_entry, verify_files
from offline_cave.contract.geometry import Slab, cortical_to_nm, cortical_to_voxels, slab_for
from offline_cave.contract.hashing import multiplicative_bucket, unit_hash
from offline_cave.contract.ids import sparse_sorted_ids, supervoxel_ids
from offline_cave.contract.params import (
    DATASTACKS,
    INH_TYPES,
    LAYER_BOUNDS_UM,
    V1DD_PLANE_DEPTHS_UM,
    V1DD_SESSIONS,
    V1DD_TYPE_OF,
    DatastackParams,
)
from offline_cave.generator import resources
from offline_cave.generator.annotations import (
    days,
    lookup_view,
    noisy_labels,
    nucleus_detection,
    proofreading,
    reference,
    reference_point,
    synapses,
    timestamps,
)
from offline_cave.generator.population import place_cells
from offline_cave.generator.segmentation import Edit, simulate, unix

# stage codes for the per-stage random generators
_STAGES = {"cells": 1, "ids": 2, "skeleton": 3, "synapses": 4, "edits": 5, "tables": 6,
           "function": 7, "fragments": 8, "sv": 9}
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "write_statistics": True}
ROW_GROUP_SIZE = 131_072
MAX_SCALE = 40.0
MIN_SCALE = 0.02


class SampleError(RuntimeError):
    """A sample cannot be generated or read (bad parameters, corrupt files)."""


def _mark(t_start: float) -> str:
    """Elapsed time and peak memory so far, for progress lines."""
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return f"[{time.perf_counter() - t_start:.1f} s, peak {peak_gb:.1f} GB]"


def _rng(seed: int, stage: str, *extra: int) -> np.random.Generator:
    return np.random.default_rng([seed, _STAGES[stage], *extra])


# ---------------------------------------------------------------------------- skeletons
def _grow_batch(args: tuple) -> list[tuple[int, dict]]:
    from offline_cave.generator.skeletons import grow_skeleton

    seed, rows, box_min, box_max = args
    out = []
    for nucleus_id, cell_type, x, y, z in rows:
        rng = _rng(seed, "skeleton", int(nucleus_id))
        sk = grow_skeleton(cell_type, np.array([x, y, z]), rng, LAYER_BOUNDS_UM, box_min, box_max)
        sk.vertices = sk.vertices.astype(np.float32)  # 0.1 nm resolution; halves the memory
        out.append((int(nucleus_id), sk))
    return out


def grow_all(neurons: pd.DataFrame, slab: Slab, seed: int, workers: int) -> dict:
    """Grow every neuron's skeleton (cortical frame) in ``workers`` processes."""
    rows = list(neurons[["nucleus_id", "cell_type", "x_um", "y_um", "z_um"]]
                .itertuples(index=False, name=None))
    n_batches = max(1, min(len(rows) // 200, 64))
    batches = [rows[i::n_batches] for i in range(n_batches)]
    jobs = [(seed, b, slab.box_min, slab.box_max) for b in batches]
    skeletons: dict = {}
    if workers > 1 and len(rows) > 400:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(_grow_batch, jobs):
                skeletons.update(result)
    else:
        for job in jobs:
            skeletons.update(_grow_batch(job))
    return {k: skeletons[k] for k in sorted(skeletons)}


# ---------------------------------------------------------------------------- the build
# float columns of skeletons compress far better split by byte stream
_FLOAT_ENCODED = {"x", "y", "z", "radius"}


class Writer:
    """Writes files of a sample into a directory as soon as they are built; records hashes."""

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        self.entries: dict[str, dict] = {}

    def put(self, rel: str, payload) -> tuple[pa.Schema | None, int]:
        """Write a table (Arrow, pandas, or an iterator of Arrow chunks) or a JSON payload.

        Returns the table's schema and row count (``None, 0`` for JSON).
        """
        path = self.target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        schema, n_rows = None, 0
        if isinstance(payload, (dict, list)):
            path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
        else:
            if isinstance(payload, pd.DataFrame):
                payload = pa.Table.from_pandas(payload, preserve_index=False)
            chunks = [payload] if isinstance(payload, pa.Table) else payload
            writer = None
            for chunk in chunks:
                if writer is None:
                    schema = chunk.schema
                    encoded = {c: "BYTE_STREAM_SPLIT" for c in schema.names
                               if c in _FLOAT_ENCODED and rel.startswith("skeletons/")}
                    writer = pq.ParquetWriter(
                        path, schema, use_dictionary=[c for c in schema.names if c not in encoded],
                        column_encoding=encoded or None, **PARQUET_OPTIONS)
                writer.write_table(chunk, row_group_size=ROW_GROUP_SIZE)
                n_rows += chunk.num_rows
            if writer is None:
                raise SampleError(f"no rows for {rel}")
            writer.close()
        self.entries[rel] = file_entry(path)
        return schema, n_rows


def _versions(params: DatastackParams) -> list[dict]:
    out = []
    for version, stamp, listed in params.versions:
        materialized = version in params.materialized_versions
        t = datetime.fromisoformat(stamp)
        # the real service keeps "major" versions long and expires the others after months
        expires = t.replace(year=t.year + (5 if listed else 0)) + (
            pd.Timedelta(days=0) if listed else pd.Timedelta(days=120))
        out.append({
            "version": version, "time_stamp": stamp,
            "expires_on": expires.strftime("%Y-%m-%dT%H:%M:%S.%f"),
            # listed like the real service in 2026; versions without their own files are served
            # from the nearest materialized one with roots re-derived at their time
            "valid": listed, "status": "AVAILABLE" if listed else "EXPIRED",
            "is_merged": False, "materialized": materialized,
        })
    return out


def build(params: DatastackParams, seed: int, scale: float, out: Writer, workers: int = 2,
          log=print) -> dict:
    """Generate every table and file of one datastack into ``out``; returns a summary."""
    t_start = time.perf_counter()
    slab = slab_for(params, scale)
    cells = place_cells(params, slab, _rng(seed, "cells"))
    n = len(cells)
    # nucleus ids are sparse (fact sheet §1.4: 144k ids over 1..7.3e5)
    id_space = int(max(7.3e5 * max(scale, 1.0), 10 * n))
    cells.insert(0, "nucleus_id", sparse_sorted_ids(_rng(seed, "ids"), n, 1000, id_space))
    cells = cells.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    pt_vx = np.rint(cortical_to_voxels(cells[["x_um", "y_um", "z_um"]].to_numpy(), params))
    pt_vx = pt_vx.astype(np.int64)
    cells["pt_x"], cells["pt_y"], cells["pt_z"] = pt_vx[:, 0], pt_vx[:, 1], pt_vx[:, 2]
    is_neuron = cells["cell_class"].isin(["excitatory_neuron", "inhibitory_neuron"]).to_numpy()
    neurons = cells[is_neuron].reset_index(drop=True)
    log(f"  cells: {n} nuclei, {len(neurons)} neurons  {_mark(t_start)}")

    skeletons = grow_all(neurons, slab, seed, workers)
    n_vertices = sum(len(s.parent) for s in skeletons.values())
    _write_skeletons(out, skeletons, neurons, params)
    log(f"  skeletons: {n_vertices} vertices  {_mark(t_start)}")

    from offline_cave.generator.synapses import axon_fragments_many, place_synapses

    syn = place_synapses(neurons, skeletons, params, _rng(seed, "synapses"))
    log(f"  synapses: {len(syn)}  {_mark(t_start)}")

    # ------------------------------------------------------------------ pieces
    # piece ids: [0, n) cell cores (by row of `cells`), then distal axon fragments, then
    # axons from outside the slab
    core_piece = np.arange(n, dtype=np.int64)
    row_of_nucleus = pd.Series(np.arange(n), index=cells["nucleus_id"].to_numpy())
    frag_offset: dict[int, int] = {}
    next_piece = n
    cell_fragments: dict[int, np.ndarray] = {}
    # every axon starts fragmented as in the raw segmentation; proofreading later merges the
    # fragments back (the edits below), before or after the first materialized version
    frag_labels = dict(zip(skeletons, (lab.astype(np.int32) for lab in axon_fragments_many(
        list(skeletons.values()), [False] * len(skeletons), _rng(seed, "fragments"))),
        strict=True))
    del skeletons  # on disk already; the rest of the build needs only the fragment labels
    for nucleus_id, labels in frag_labels.items():
        k = int(labels.max(initial=0))
        frag_offset[nucleus_id] = next_piece - 1  # label L -> piece next_piece + L - 1
        cell_fragments[nucleus_id] = np.arange(next_piece, next_piece + k, dtype=np.int64)
        next_piece += k
    ext_ids = syn["external_axon_id"].to_numpy()
    ext_unique, ext_inverse = np.unique(ext_ids[ext_ids > 0], return_inverse=True)
    ext_piece_base = next_piece
    n_pieces = next_piece + ext_unique.size

    pre_nuc = syn["pre_nucleus_id"].to_numpy()
    pre_node = syn["pre_node"].to_numpy()
    pre_piece = np.empty(len(syn), dtype=np.int64)
    external = pre_nuc == 0
    pre_piece[external] = ext_piece_base + ext_inverse
    local_idx = np.flatnonzero(~external)
    if local_idx.size:
        order = local_idx[np.argsort(pre_nuc[local_idx], kind="stable")]
        bounds = np.flatnonzero(np.diff(pre_nuc[order])) + 1
        for chunk in np.split(order, bounds):
            nid = int(pre_nuc[chunk[0]])
            lab = frag_labels[nid][pre_node[chunk]]
            core = core_piece[row_of_nucleus[nid]]
            pre_piece[chunk] = np.where(lab == 0, core, frag_offset[nid] + lab)
    post_piece = core_piece[row_of_nucleus[syn["post_nucleus_id"].to_numpy()].to_numpy()]
    del frag_labels, pre_nuc, pre_node, ext_ids  # (views that would pin the synapse frame)
    piece_nucleus = np.zeros(n_pieces, dtype=np.int64)
    piece_nucleus[:n] = cells["nucleus_id"].to_numpy()

    # ------------------------------------------------------------------ edits
    ed_rng = _rng(seed, "edits")
    # edits before the first materialized version are "old" proofreading; edits between the
    # first and the last (or, with a single version, until params.edits_until) change roots
    t1300 = unix(params.timestamp_of(min(params.materialized_versions)))
    t_last = unix(params.timestamp_of(max(params.materialized_versions)))
    if t_last - t1300 < days(30):
        t_last = unix(params.edits_until)
    initial_groups: list[np.ndarray] = []
    edits: list[Edit] = []
    neuron_rows = np.flatnonzero(is_neuron)
    # multi-soma objects: a neuron merged with its nearest neuron (1 % of neurons)
    xyz = cells[["x_um", "y_um", "z_um"]].to_numpy()
    from scipy.spatial import cKDTree

    tree = cKDTree(xyz[neuron_rows])
    taken = np.zeros(n, dtype=bool)
    multi_pairs = []
    for row in ed_rng.choice(neuron_rows, size=int(params.frac_multi_soma * neuron_rows.size),
                             replace=False):
        if taken[row]:
            continue
        _, nn = tree.query(xyz[row], k=4)
        for cand in neuron_rows[nn[1:]]:
            if not taken[cand] and not cells["proofread_axon"].iat[cand]:
                taken[row] = taken[cand] = True
                multi_pairs.append((row, cand))
                break
    for a, b in multi_pairs:
        initial_groups.append(np.array([a, b], dtype=np.int64))
    # half of the multi-soma objects are split by proofreaders after v1300
    for a, b in multi_pairs[: len(multi_pairs) // 2]:
        t = ed_rng.uniform(t1300 + days(5), t_last - days(5))
        edits.append(Edit(t, "split", [np.array([a]), np.array([b])], "split_multi_soma"))
    # false merges: an outside axon fragment glued to a neuron at v1300, split off later
    ext_pieces_by_size = ext_piece_base + np.argsort(-np.bincount(ext_inverse))
    false_merge_rows = ed_rng.choice(neuron_rows[~taken[neuron_rows]],
                                     size=max(1, int(0.01 * neuron_rows.size)), replace=False)
    for row, piece in zip(false_merge_rows, ext_pieces_by_size[: false_merge_rows.size],
                          strict=False):
        if taken[row] or cells["proofread_axon"].iat[row]:
            continue
        taken[row] = True
        initial_groups.append(np.array([row, piece], dtype=np.int64))
        t = ed_rng.uniform(t1300 + days(5), t_last - days(5))
        edits.append(Edit(t, "split", [np.array([row]), np.array([piece])], "split_false_merge"))
    # axon proofreading: merges of a cell's distal fragments into its root, 1-4 operations;
    # 80 % of the proofread cells were done before v1300, the rest between the versions
    proof_rows = np.flatnonzero(cells["proofread_axon"].to_numpy())
    late = ed_rng.random(proof_rows.size) < 0.2
    proof_time = np.where(late, ed_rng.uniform(t1300 + days(5), t_last - days(5), proof_rows.size),
                          ed_rng.uniform(unix("2022-03-01T00:00:00"), t1300 - days(3),
                                         proof_rows.size))
    for row, t in zip(proof_rows, proof_time, strict=True):
        frags = cell_fragments.get(int(cells["nucleus_id"].iat[row]), np.zeros(0, np.int64))
        if frags.size == 0:
            continue
        n_ops = int(min(frags.size, ed_rng.integers(1, 5)))
        for j, part in enumerate(np.array_split(ed_rng.permutation(frags), n_ops)):
            edits.append(Edit(t + j * ed_rng.uniform(60, 3 * 86400),
                              "merge", [np.array([row])] + [np.array([p]) for p in part],
                              "axon_extension"))
    cells["proofread_time"] = np.nan
    cells.loc[proof_rows, "proofread_time"] = proof_time
    snapshot_times = [unix(params.timestamp_of(v)) for v in params.materialized_versions]
    # nuclei whose centroid misses the segmentation (pt_root_id 0 in the nucleus table)
    sv_rng = _rng(seed, "sv")
    root_zero = np.zeros(n, dtype=bool)
    root_zero[sv_rng.choice(n, size=int(params.frac_root_zero * n), replace=False)] = True
    history = simulate(n_pieces, initial_groups, edits, piece_nucleus, snapshot_times, ed_rng,
                       unlisted_nuclei=cells["nucleus_id"].to_numpy()[root_zero])
    log(f"  segmentation: {n_pieces} pieces, {len(history.roots)} roots, "
        f"{history.lineage['operation_id'].nunique()} edits  "
        f"{_mark(t_start)}")

    # ------------------------------------------------------------------ supervoxels
    syn_res = params.synapse_voxel_resolution
    syn_pre_vx = np.rint(cortical_to_voxels(syn[["pre_x_um", "pre_y_um", "pre_z_um"]].to_numpy(),
                                            params, syn_res)).astype(np.int32)
    syn_post_vx = np.rint(cortical_to_voxels(
        syn[["post_x_um", "post_y_um", "post_z_um"]].to_numpy(), params, syn_res)).astype(np.int32)
    syn_ctr_vx = np.rint(cortical_to_voxels(syn[["ctr_x_um", "ctr_y_um", "ctr_z_um"]].to_numpy(),
                                            params, syn_res)).astype(np.int32)
    syn_to_table = np.asarray(syn_res) / np.asarray(params.voxel_resolution)
    syn_size = syn["size"].to_numpy().copy()
    n_syn = len(syn)
    del syn  # the largest frame: keep only the arrays the tables need
    # alternative points sit a few um from the centroid, inside the cell's segment
    alt_rows = np.flatnonzero(root_zero)
    alt_um = xyz[alt_rows] + sv_rng.normal(0, 2.0, size=(alt_rows.size, 3))
    alt_vx = np.rint(cortical_to_voxels(alt_um, params)).astype(np.int64)
    all_points = [pt_vx, alt_vx, syn_pre_vx * syn_to_table, syn_post_vx * syn_to_table]
    all_pieces = np.concatenate([core_piece, core_piece[alt_rows], pre_piece, post_piece])
    sv_all = supervoxel_ids(all_points, params.voxel_resolution, params.base_resolution,
                            params.chunk_size, params.chunk_offset_vx, sv_rng)
    nuc_sv = sv_all[:n].copy()
    alt_sv = sv_all[n:n + alt_rows.size]
    pre_sv = sv_all[n + alt_rows.size:n + alt_rows.size + n_syn]
    post_sv = sv_all[n + alt_rows.size + n_syn:]
    keep = np.ones(sv_all.size, dtype=bool)
    keep[:n] = ~root_zero  # a centroid outside the segmentation has no supervoxel
    nuc_sv[root_zero] = 0
    del all_points
    sv_kept, piece_kept = sv_all[keep], all_pieces[keep]
    del sv_all, all_pieces, keep
    by_sv = np.argsort(sv_kept, kind="stable")
    pieces = pa.table({"supervoxel_id": sv_kept[by_sv], "piece_id": piece_kept[by_sv]})
    del sv_kept, piece_kept, by_sv

    # ------------------------------------------------------------------ tables
    tb_rng = _rng(seed, "tables")
    fn_rng = _rng(seed, "function")
    table_meta: dict[str, dict] = {}
    nucleus_ids = cells["nucleus_id"].to_numpy()
    nuc_created = timestamps(tb_rng, n, "2020-09-28T22:40:00", 300)
    syn_ids = sparse_sorted_ids(tb_rng, n_syn, 594_888, max(511_314_790, 4 * n_syn))
    syn_created = "2020-11-04T06:31:14.118512"  # bulk ingestion: one creation time
    # synapse rows sorted by post root at the first version => input queries touch few row groups
    syn_order = None

    if params.kind == "minnie":
        static = _minnie_static_tables(cells, is_neuron, slab, tb_rng, fn_rng)
    else:
        static = _v1dd_static_tables(cells, is_neuron, pt_vx, nuc_sv, alt_rows, alt_sv, core_piece,
                                     tb_rng, seed, out)

    for version, t_snap in zip(params.materialized_versions, snapshot_times, strict=True):
        piece_root = history.snapshots[t_snap]
        nuc_root = np.where(root_zero, 0, piece_root[core_piece])
        nucleus = nucleus_detection(nucleus_ids, nuc_created, cells["volume_um3"].to_numpy(),
                                    pt_vx, nuc_sv, nuc_root)
        alternative = reference_point(
            np.arange(1, alt_rows.size + 1),
            timestamps(_rng(seed, "tables", 1), alt_rows.size, "2023-02-01T00:00:00", days(20)),
            nucleus_ids[alt_rows], alt_vx, alt_sv, piece_root[core_piece[alt_rows]])
        tables_v = {
            "nucleus_detection_v0": nucleus,
            "nucleus_alternative_points": alternative,
            "proofreading_status_and_strategy": _proofreading_table(
                cells, t_snap, piece_root, core_piece, pt_vx, nuc_sv, alt_rows, alt_sv),
        }
        for name, table in static.items():
            if TABLES[name].introduced <= version:  # tables exist from their introduction on
                tables_v[name] = table(piece_root) if callable(table) else table
        lookup_name = ("nucleus_detection_lookup_v1" if params.kind == "minnie"
                       else "nucleus_alternative_lookup")
        tables_v[lookup_name] = lookup_view(nucleus, alternative)
        pre_root = piece_root[pre_piece]
        post_root = piece_root[post_piece]
        if syn_order is None:
            # rows sorted by post root (then pre root): a neuron's inputs are a few row groups;
            # a second copy sorted by pre root does the same for a neuron's outputs
            syn_order = np.lexsort((pre_root, post_root))
            syn_order_pre = np.lexsort((post_root, pre_root))
        # the synapse table is written in row chunks so memory stays flat at large scales
        tables_v[params.synapse_table] = (
            synapses(syn_ids[rows], syn_created, syn_size[rows], pre_sv[rows], pre_root[rows],
                     post_sv[rows], post_root[rows], syn_pre_vx[rows], syn_post_vx[rows],
                     syn_ctr_vx[rows])
            for rows in np.array_split(syn_order, max(1, n_syn // 1_000_000)))
        tables_v[params.synapse_table + layout.BY_PRE_SUFFIX] = (
            synapses(syn_ids[rows], syn_created, syn_size[rows], pre_sv[rows], pre_root[rows],
                     post_sv[rows], post_root[rows], syn_pre_vx[rows], syn_post_vx[rows],
                     syn_ctr_vx[rows])
            for rows in np.array_split(syn_order_pre, max(1, n_syn // 1_000_000)))
        for name, frame in tables_v.items():
            schema, n_rows = out.put(f"v{version}/{name}.parquet", frame)
            if name.endswith(layout.BY_PRE_SUFFIX):
                continue
            meta = table_meta.setdefault(name, {"row_counts": {}})
            meta["columns"] = [[f.name, str(f.type)] for f in schema]
            meta["row_counts"][str(version)] = n_rows
        del tables_v, pre_root, post_root
    del syn_pre_vx, syn_post_vx, syn_ctr_vx, pre_sv, post_sv
    log(f"  tables: {len(table_meta)} per version  {_mark(t_start)}")

    out.put(layout.PIECES_PARQUET, pieces)
    out.put(layout.ROOTS_PARQUET, history.roots)
    out.put(layout.ROOT_PIECES_PARQUET, history.root_pieces)
    out.put(layout.LINEAGE_PARQUET, history.lineage)
    truth = cells.copy()
    truth["root_zero"] = root_zero
    out.put(layout.CELLS_PARQUET, truth)
    out.put(layout.DATASTACK_JSON, _datastack_info(params, slab))
    out.put(layout.VERSIONS_JSON, _versions(params))
    out.put(layout.TABLES_JSON, _table_metadata(params, table_meta))
    out.put(layout.VIEWS_JSON, _view_metadata(params, table_meta))
    return {"nuclei": n, "neurons": len(neurons), "synapses": n_syn,
            "skeleton_vertices": n_vertices, "roots": len(history.roots),
            "edits": int(history.lineage["operation_id"].nunique()),
            "slab_um": [slab.box_min.tolist(), slab.box_max.tolist()]}


def _write_skeletons(out: Writer, skeletons: dict, cells: pd.DataFrame,
                     params: DatastackParams) -> None:
    """Skeletons in the dataset's nm frame, one row per vertex, sorted by nucleus id.

    Written in chunks of cells, so memory does not grow with the number of vertices.
    """
    cell_type = cells.set_index("nucleus_id")["cell_type"]
    ids = list(skeletons)

    def chunks():
        for start in range(0, len(ids), 1000):
            part = ids[start:start + 1000]
            sizes = np.array([len(skeletons[k].parent) for k in part])
            nm = cortical_to_nm(np.concatenate([skeletons[k].vertices for k in part]),
                                params).astype(np.float32)
            yield pa.table({
                "nucleus_id": np.repeat(np.asarray(part, dtype=np.int64), sizes),
                "node": np.concatenate([np.arange(n, dtype=np.int32) for n in sizes]),
                "parent": np.concatenate([skeletons[k].parent for k in part]).astype(np.int32),
                "x": nm[:, 0], "y": nm[:, 1], "z": nm[:, 2],
                "radius": (np.concatenate([skeletons[k].radius for k in part]) * 1000
                           ).astype(np.float32),
                "compartment": np.concatenate([skeletons[k].compartment for k in part]
                                              ).astype(np.int8)})

    out.put(layout.SKELETONS_PARQUET, chunks())
    summaries = [(k, cell_type[k], len(skeletons[k].parent),
                  float(skeletons[k].soma_radius_um * 1000), skeletons[k].path_length_um(2),
                  skeletons[k].path_length_um(3) + skeletons[k].path_length_um(4)) for k in ids]
    out.put(layout.SKELETON_CELLS_PARQUET,
            pd.DataFrame(summaries, columns=list(layout.SKELETON_CELL_COLUMNS)))


def _minnie_static_tables(cells, is_neuron, slab, tb_rng, fn_rng) -> dict:
    """Tables of minnie65_public that do not change between versions (reference tables)."""
    n = len(cells)
    nucleus_ids = cells["nucleus_id"].to_numpy()
    xyz = cells[["x_um", "y_um", "z_um"]].to_numpy()
    typed = is_neuron | (cells["cell_class"] == "nonneuron").to_numpy()
    reported_type = noisy_labels(cells["cell_type"].to_numpy(), tb_rng, 0.01)
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

    coreg, func_v3, twin = _function_tables(cells, nucleus_ids, fn_rng)

    return {"nucleus_ref_neuron_svm": neuron_svm, "aibs_metamodel_celltypes_v661": celltypes,
            "aibs_metamodel_mtypes_v661_v2": mtypes,
            "allen_v1_column_types_slanted_ref": column_types,
            "aibs_column_nonneuronal_ref": column_glia, "coregistration_manual_v4": coreg,
            "functional_properties_v3_bcm": func_v3,
            "digital_twin_properties_bcm_coreg_v4": twin}


def _v1dd_static_tables(cells, is_neuron, pt_vx, nuc_sv, alt_rows, alt_sv, core_piece, rng,
                        seed, out: Writer) -> dict:
    """Tables of v1dd_public plus its two-photon sessions (NWB, written into ``out``)."""
    n = len(cells)
    nucleus_ids = cells["nucleus_id"].to_numpy()
    depth = cells["depth_um"].to_numpy()
    true_type = cells["cell_type"].to_numpy()
    v1dd_type = np.array([V1DD_TYPE_OF.get(t, t) for t in true_type], dtype=object)
    v1dd_type[true_type == "23P"] = np.where(depth[true_type == "23P"] < 200, "L2IT", "L3IT")
    six_it = true_type == "6P-IT"
    v1dd_type[six_it] = np.where(depth[six_it] > 795, "L6SP", "L6IT")
    # typed only >= 50 um from the volume's lateral borders (fact sheet §2.10); tiny test
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
        cols["residual"] = np.zeros(len(matched))  # 0 in this manual table (fact sheet §2.10)
        cols["score"] = np.zeros(len(matched))
        return pd.DataFrame(cols)

    from offline_cave.generator.twophoton.sessions import write_sessions

    sessions_dir = out.target / "sessions"
    for path in write_sessions(sessions_dir, imaged, seed):
        rel = str(Path(path).resolve().relative_to(out.target.resolve()))
        out.entries[rel] = file_entry(Path(path))
    out.put("sessions/imaged_cells.parquet", imaged)
    return {"cell_type_multifeature_v1": multifeature, "neurons_soma_model": soma_model,
            "functional_coregistration_manual_2": coregistration}


def imaged_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """Excitatory cells seen by the V1DD two-photon sessions of the sample (ground truth).

    Five imaging columns tile the slab (a 2 x 2 grid and a centre column overlapping all
    four); each volume is 6 planes 16 um apart (fact sheet §4.1). Only excitatory cells express
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


def _function_tables(cells: pd.DataFrame, nucleus_ids: np.ndarray, rng: np.random.Generator):
    """Co-registration and functional property tables for the co-registered cells."""
    rows = np.flatnonzero(cells["coregistered"].to_numpy())
    # 25 % of cells are matched to two units (19,181 rows for 15,352 roots, fact sheet §2.5)
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


def _proofreading_table(cells, t_snap, piece_root, core_piece, pt_vx, nuc_sv,
                        alt_rows, alt_sv) -> pd.DataFrame:
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


# ---------------------------------------------------------------------------- metadata
def _table_metadata(params: DatastackParams, table_meta: dict) -> dict:
    out = {}
    for name, meta in table_meta.items():
        if name in VIEWS:
            continue
        info = TABLES[name]
        out[name] = {
            "table_name": name, "schema": info.schema, "schema_type": info.schema,
            "reference_table": info.reference_table, "description": info.description,
            "notice_text": SYNTHETIC_NOTICE,
            "voxel_resolution": list(params.synapse_voxel_resolution
                                     if name == params.synapse_table else params.voxel_resolution),
            "created": "2020-11-02T18:56:35.530100", "introduced": info.introduced,
            "removed": None,
            "columns": meta["columns"], "row_counts": meta["row_counts"],
        }
    return out


def _view_metadata(params: DatastackParams, table_meta: dict) -> dict:
    out = {}
    for name, info in VIEWS.items():
        if name in table_meta:
            out[name] = {"description": info.description, "live_compatible": info.live_compatible,
                         "voxel_resolution": list(params.voxel_resolution),
                         "notice_text": SYNTHETIC_NOTICE, "introduced": info.introduced,
                         "columns": table_meta[name]["columns"],
                         "row_counts": table_meta[name]["row_counts"]}
    return out


def _datastack_info(params: DatastackParams, slab: Slab) -> dict:
    corners = cortical_to_voxels(np.array([[slab.box_min[0], slab.box_min[1], slab.box_min[2]],
                                           [slab.box_max[0], slab.box_max[1], slab.box_max[2]],
                                           [slab.box_min[0], slab.box_max[1], slab.box_min[2]],
                                           [slab.box_max[0], slab.box_min[1], slab.box_max[2]]]),
                                 params)
    return {
        "name": params.name,
        "description": params.description + SYNTHETIC_NOTICE,
        "aligned_volume": {"id": params.aligned_volume_id, "name": params.aligned_volume,
                           "display_name": params.aligned_volume_display,
                           "description": "synthetic stand-in for " + params.aligned_volume},
        "synapse_table": params.synapse_table, "soma_table": params.soma_table,
        "viewer_resolution": list(params.voxel_resolution), "viewer_site": params.viewer_site,
        "pcg_table_name": params.pcg_table_name,
        "segmentation_bounds_vx": [np.floor(corners.min(0)).astype(int).tolist(),
                                   np.ceil(corners.max(0)).astype(int).tolist()],
        "base_resolution": list(params.base_resolution), "chunk_size": list(params.chunk_size),
        "chunk_offset_vx": list(params.chunk_offset_vx),
        "public_local_server": params.public_local_server,
    }


# ---------------------------------------------------------------------------- cache
_DIGESTED_PACKAGES = ("contract", "generator")  # what the sample's bytes can depend on


def generator_digest() -> str:
    """Digest of the generator's source (and of the contract it writes to): any change to the
    code invalidates cached samples."""
    digest = hashlib.sha256(layout.GENERATOR_VERSION.encode())
    root = Path(__file__).resolve().parents[1]
    for package in _DIGESTED_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def check(ds_dir: Path, params: DatastackParams, seed: int, scale: float,
          deep: bool = True) -> str | None:
    """Why the sample in ``ds_dir`` cannot be used (``None`` when it is complete and current)."""
    manifest_path = ds_dir / layout.MANIFEST
    if not manifest_path.is_file():
        return "no MANIFEST.json (missing or partial sample)"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        return f"unreadable MANIFEST.json ({exc})"
    if (manifest.get("generator_version") != layout.GENERATOR_VERSION
            or manifest.get("generator_digest") != generator_digest()):
        return (f"made by another generator ({manifest.get('generator_version')}, "
                f"{manifest.get('generator_digest')}); this is {layout.GENERATOR_VERSION}, "
                f"{generator_digest()}")
    if manifest.get("params_hash") != params.params_hash(seed, scale):
        return (f"made with other parameters (seed {manifest.get('seed')}, scale "
                f"{manifest.get('scale')})")
    return verify_files(ds_dir, manifest.get("files", {}), deep=deep)


def ensure_sample(data_dir: str | Path, datastack: str = "minnie65_public", seed: int = 0,
                  scale: float = 1.0, force: bool = False, deep: bool = True,
                  log=print, check_resources: bool = True) -> Path:
    """Return the directory of a complete, current sample, generating it if needed.

    A missing, partial, outdated or corrupt sample is rebuilt in a temporary directory and
    swapped in atomically, so a crash never leaves a half-written sample in place. Before a
    build, the memory and disk it needs are checked (:mod:`offline_cave.generator.resources`); a build
    that cannot fit raises :class:`SampleError` and leaves any existing sample as it was.
    """
    params = _params(datastack, seed, scale)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    # one generator per sample at a time (parallel test workers, a server and a notebook run
    # may all ask for the same sample): the others wait, then find it cached
    with open(data_dir / f".{datastack}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _ensure_locked(data_dir, datastack, params, seed, scale, force, deep, log,
                                  check_resources)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _ensure_locked(data_dir: Path, datastack: str, params: DatastackParams, seed: int,
                   scale: float, force: bool, deep: bool, log, check_resources: bool) -> Path:
    ds_dir = layout.datastack_dir(data_dir, datastack)
    reason = "forced" if force else check(ds_dir, params, seed, scale, deep=deep)
    if reason is None:
        log(f"{datastack}: cached sample in {ds_dir} (seed {seed}, scale {scale:g})")
        return ds_dir
    if check_resources:
        try:
            resources.check_resources(datastack, scale, data_dir)
        except resources.InsufficientResources as exc:
            raise SampleError(str(exc)) from None
    if ds_dir.exists():
        log(f"{datastack}: rebuilding {ds_dir}: {reason}")
    t0 = time.perf_counter()
    log(f"{datastack}: generating the synthetic sample (seed {seed}, scale {scale:g}) ...")
    tmp = Path(tempfile.mkdtemp(prefix=f".{datastack}.tmp-", dir=data_dir))
    try:
        out = Writer(tmp)
        summary = build(params, seed, scale, out, log=log)
        files = out.entries
        manifest = {
            "generator_version": layout.GENERATOR_VERSION, "generator_digest": generator_digest(),
            "datastack": datastack, "seed": seed,
            "scale": scale, "params_hash": params.params_hash(seed, scale),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "elapsed_s": round(time.perf_counter() - t0, 2), "summary": summary,
            "files": files,
        }
        (tmp / layout.MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        old = None
        if ds_dir.exists():
            old = data_dir / f".{datastack}.old-{os.getpid()}"
            ds_dir.rename(old)
        tmp.rename(ds_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size_mb = sum(e["bytes"] for e in files.values()) / 1e6
    log(f"{datastack}: wrote {ds_dir} ({size_mb:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    return ds_dir


def _params(datastack: str, seed: int, scale: float) -> DatastackParams:
    if datastack not in DATASTACKS:
        raise SampleError(f"unknown datastack {datastack!r}; the sample has "
                          f"{', '.join(sorted(DATASTACKS))}")
    if not isinstance(seed, int) or seed < 0:
        raise SampleError(f"seed must be a non-negative integer, got {seed!r}")
    if not (MIN_SCALE <= scale <= MAX_SCALE):
        raise SampleError(f"scale must be between {MIN_SCALE} and {MAX_SCALE}, got {scale}")
    return DATASTACKS[datastack]
