"""The stages of a sample build (``python -m offline_cave generate``).

Pipeline: parameters -> cells (``population``) -> skeletons (``skeletons``) -> synapses
(``synapses``) -> segmentation pieces and proofreading edits (``segmentation``) -> supervoxels
-> per-version annotation tables (``annotations``, ``tables``, ``function``) -> Parquet/JSON
files (``writer``, ``contract.layout``). In minnie65_public the public tutorials' example cells
(``examples``) are planted along the way: picked after the cells and after the synapses, their
edits added to the plan, their roots given the real ids once the edits are replayed.
``build`` runs the stages in order; ``cache`` checks,
locks and swaps in the result with MANIFEST.json last (``ensure_sample`` here binds the two).

Determinism: every stage draws from its own ``numpy`` generator seeded by ``(seed, stage)``
(skeletons by ``(seed, stage, nucleus_id)``), so the same seed and scale give byte-identical
tables whatever the number of worker processes.
"""

from __future__ import annotations

import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from offline_cave.contract import layout
from offline_cave.contract.catalog import SYNTHETIC_NOTICE, TABLES, VIEWS
from offline_cave.contract.geometry import Slab, cortical_to_nm, cortical_to_voxels, slab_for
from offline_cave.contract.ids import ScaledPoints, sparse_sorted_ids, supervoxel_ids
from offline_cave.contract.params import LAYER_BOUNDS_UM, DatastackParams
from offline_cave.generator import cache, examples
from offline_cave.generator.annotations import (
    days,
    lookup_view,
    nucleus_detection,
    reference_point,
    synapses,
    timestamps,
)

# re-exported (``X as X``): the CLI, prepare.py and tests import these from the pipeline
from offline_cave.generator.cache import MAX_SCALE as MAX_SCALE
from offline_cave.generator.cache import MIN_SCALE as MIN_SCALE
from offline_cave.generator.cache import SampleError as SampleError
from offline_cave.generator.cache import check as check
from offline_cave.generator.cache import generator_digest as generator_digest
from offline_cave.generator.population import place_cells
from offline_cave.generator.segmentation import (
    Edit,
    operation_log,
    simulate,
    synthetic_users,
    unix,
)
from offline_cave.generator.tables import (
    minnie_static_tables,
    proofreading_table,
    v1dd_static_tables,
)
from offline_cave.generator.writer import PARQUET_OPTIONS as PARQUET_OPTIONS
from offline_cave.generator.writer import Writer

# stage codes for the per-stage random generators
_STAGES = {"cells": 1, "ids": 2, "skeleton": 3, "synapses": 4, "edits": 5, "tables": 6,
           "function": 7, "fragments": 8, "sv": 9, "users": 10, "examples": 11,
           "imagery": 12}


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
    for nucleus_id, cell_type, x, y, z, soma_r, stream in rows:
        rng = _rng(seed, "skeleton", int(stream))
        sk = grow_skeleton(cell_type, np.array([x, y, z]), rng, LAYER_BOUNDS_UM, box_min, box_max,
                           soma_radius_um=float(soma_r))
        sk.vertices = sk.vertices.astype(np.float32)  # 0.1 nm resolution; halves the memory
        out.append((int(nucleus_id), sk))
    return out


def _stream_ids(cells: pd.DataFrame) -> np.ndarray:
    """The id seeding each cell's random streams: its nucleus id as drawn, before the example
    cells took their real ones (``examples.plant_cells``), so planting changes no other cell."""
    col = "stream_id" if "stream_id" in cells else "nucleus_id"
    return cells[col].to_numpy(np.int64)


def grow_all(neurons: pd.DataFrame, slab: Slab, seed: int, workers: int) -> dict:
    """Grow every neuron's skeleton (cortical frame) in ``workers`` processes, each from the
    random stream of its nucleus id (of its synthetic id for a planted example cell)."""
    rows = list(neurons[["nucleus_id", "cell_type", "x_um", "y_um", "z_um", "soma_radius_um"]]
                .assign(stream=_stream_ids(neurons)).itertuples(index=False, name=None))
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
@dataclass
class CellStage:
    """Every nucleus (shuffled, with sparse ids and voxel points) and the neurons among them."""

    slab: Slab
    cells: pd.DataFrame
    is_neuron: np.ndarray
    neurons: pd.DataFrame
    pt_vx: np.ndarray  # (n, 3) int64 nucleus points in table voxels


@dataclass
class Pieces:
    """Segmentation pieces: ``[0, n)`` cell cores (by row of ``cells``), then distal axon
    fragments, then axons from outside the slab; and the piece of each synapse's partners."""

    core_piece: np.ndarray
    cell_fragments: dict[int, np.ndarray]  # nucleus id -> its axon fragments' pieces
    ext_piece_base: int
    ext_inverse: np.ndarray  # outside axon of each external synapse, 0-based
    n_pieces: int
    pre_piece: np.ndarray
    post_piece: np.ndarray
    piece_nucleus: np.ndarray


@dataclass
class EditPlan:
    """Objects merged at the start and the proofreading edits to replay."""

    initial_groups: list[np.ndarray]
    edits: list[Edit]


@dataclass
class Segmentation:
    history: object  # segmentation.History: roots, root_pieces, lineage, snapshots
    snapshot_times: list[float]
    root_zero: np.ndarray  # nuclei whose centroid misses the segmentation
    operations: pd.DataFrame | None = None  # the operation log (layout.OPERATION_COLUMNS)
    users: pd.DataFrame | None = None  # its proofreaders (layout.USER_COLUMNS)


@dataclass
class SynapsePoints:
    """The synapse arrays the tables need (the synapse frame itself is dropped)."""

    pre_vx: np.ndarray
    post_vx: np.ndarray
    ctr_vx: np.ndarray
    to_table: np.ndarray  # synapse voxels -> table voxels
    size: np.ndarray

    def __len__(self) -> int:
        return len(self.size)


@dataclass
class Supervoxels:
    nuc_sv: np.ndarray  # 0 where the centroid misses the segmentation
    alt_rows: np.ndarray  # rows of nuclei with an alternative point
    alt_vx: np.ndarray
    alt_sv: np.ndarray
    pre_sv: np.ndarray
    post_sv: np.ndarray
    pieces: pa.Table  # supervoxel -> piece, sorted by supervoxel
    # the edited pieces (sorted), a supervoxel of each and its point in base voxels
    op_points: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def build(params: DatastackParams, seed: int, scale: float, out: Writer, workers: int = 2,
          log=print) -> dict:
    """Generate every table and file of one datastack into ``out``; returns a summary."""
    t_start = time.perf_counter()
    stage = _place_cells(params, seed, scale)
    cells, neurons = stage.cells, stage.neurons
    log(f"  cells: {len(cells)} nuclei, {len(neurons)} neurons  {_mark(t_start)}")

    skeletons = grow_all(neurons, stage.slab, seed, workers)
    n_vertices = sum(len(s.parent) for s in skeletons.values())
    _write_skeletons(out, skeletons, neurons, params)
    log(f"  skeletons: {n_vertices} vertices  {_mark(t_start)}")

    from offline_cave.generator.synapses import place_synapses

    syn = place_synapses(neurons, skeletons, params, _rng(seed, "synapses"))
    log(f"  synapses: {len(syn)}  {_mark(t_start)}")

    frag_labels = _fragment_labels(skeletons, seed, dict(zip(neurons["nucleus_id"],
                                                             _stream_ids(neurons), strict=True)))
    frag_points = _fragment_points(skeletons, frag_labels)
    from offline_cave.generator.level2 import select_cells

    img_plan = _imagery_plan(params, cells, syn, skeletons, frag_labels, scale)
    l2_cells = select_cells(cells, stage.is_neuron, params.level2_other_cells)
    keep = set(l2_cells.tolist())
    mesh_payloads = _static_mesh_payloads(params, cells, skeletons, l2_cells, workers)
    if mesh_payloads:
        log(f"  static meshes: LOD 0-3 of {len(mesh_payloads)} cells, "
            f"{sum(len(p[0]) for p in mesh_payloads.values()) / 1e6:.1f} MB  {_mark(t_start)}")
    # on disk already: keep only the skeletons the level-2 stage needs
    skeletons = {k: v for k, v in skeletons.items() if k in keep}
    pieces = _pieces(cells, frag_labels, syn)
    l2 = _level2(params, stage, skeletons, l2_cells, frag_labels, pieces, syn, out)
    del skeletons, frag_labels
    log(f"  level 2: {l2.n_nodes} nodes of {len(l2.nuclei)} cells  {_mark(t_start)}")
    if examples.applies(params.name, params.materialized_versions):
        n_frag = np.array([pieces.cell_fragments.get(int(k), np.zeros(0)).size
                           for k in cells["nucleus_id"].to_numpy()])
        examples.plant_edited_cells(cells, np.bincount(pieces.post_piece, minlength=len(cells)),
                                    n_frag)

    ed_rng = _rng(seed, "edits")
    sv_rng = _rng(seed, "sv")
    plan = _plan_edits(params, cells, stage.is_neuron, pieces, ed_rng, _rng(seed, "examples", 1))
    seg = _segment(params, cells, pieces, plan, ed_rng, sv_rng)
    history = seg.history
    if examples.applies(params.name, params.materialized_versions):
        examples.rename_roots(history, cells, pieces.core_piece,
                              dict(zip(params.materialized_versions, seg.snapshot_times,
                                       strict=True)))
    log(f"  segmentation: {pieces.n_pieces} pieces, {len(history.roots)} roots, "
        f"{history.lineage['operation_id'].nunique()} edits  "
        f"{_mark(t_start)}")
    if mesh_payloads:
        _write_static_meshes(out, params, stage, history, pieces.core_piece, mesh_payloads)
        del mesh_payloads

    points = _synapse_points(params, syn)
    del syn  # the largest frame: keep only the arrays the tables need
    op_pieces = np.unique(history.operations[["source_piece", "sink_piece"]].to_numpy())
    sv = _supervoxels(params, cells, stage.pt_vx, pieces, points, seg.root_zero, sv_rng,
                      op_pieces, _fragment_piece_points(frag_points, pieces), _rng(seed, "sv", 1))
    del frag_points
    # the supervoxel -> piece map (two rows per synapse) is final: write it now, not hold it
    # through the tables and bulk stages
    out.put(layout.PIECES_PARQUET, sv.pieces)
    sv.pieces = None
    users = synthetic_users(_rng(seed, "users"))
    seg.operations = operation_log(history.operations, sv.op_points, users, _rng(seed, "users", 1))
    seg.users = users
    _write_supervoxel_l2(out, cells, sv, l2)
    del l2
    table_meta = _write_tables(params, seed, out, stage, pieces, seg, points, sv)
    del points
    log(f"  tables: {len(table_meta)} per version  {_mark(t_start)}")
    if img_plan is not None:  # after the tables: its ~1 GB of volumes on a smaller live set
        _imagery(out, params, seed, img_plan, stage, pieces, sv, log, t_start)
    from offline_cave.generator import bulk

    if bulk.applies(params):  # from the tables just written: CSV.gz + Parquet exports
        bulk.write_bulk(out, params, log)
        log(f"  bulk: written  {_mark(t_start)}")

    _write_metadata(out, params, stage, seg, table_meta)
    return {"nuclei": len(cells), "neurons": len(neurons), "synapses": len(sv.pre_sv),
            "skeleton_vertices": n_vertices, "roots": len(history.roots),
            "edits": int(history.lineage["operation_id"].nunique()),
            "slab_um": [stage.slab.box_min.tolist(), stage.slab.box_max.tolist()]}


def _imagery_plan(params: DatastackParams, cells: pd.DataFrame, syn: pd.DataFrame,
                  skeletons: dict, frag_labels: dict, scale: float):
    """The imagery box (``imagery.plan``) around the example pyramidal cell; None where the
    example cells are not planted (v1dd_public has no imagery)."""
    if not examples.applies(params.name, params.materialized_versions):
        return None
    from offline_cave.generator import imagery

    row = examples.rows_of(cells)["example_pyramidal"]
    return imagery.plan(params, cells, syn, skeletons, frag_labels, row, params.chunk_offset_vx,
                        scale)


def _imagery(out: Writer, params: DatastackParams, seed: int, plan, stage: CellStage,
             pieces: Pieces, sv: Supervoxels, log, t_start: float) -> None:
    """Render and write the EM-like image and its supervoxels (``generator/imagery.py``)."""
    from offline_cave.generator import imagery

    rows = plan.syn_rows
    nm = stage.pt_vx * np.asarray(params.voxel_resolution, float)
    lo, hi = plan.region_nm()
    plan.seed = int(_rng(seed, "imagery", 1).integers(2 ** 31))  # the per-synapse streams
    pad = imagery.CANDIDATE_PAD_UM * 1000
    near = np.flatnonzero(np.all((nm > lo - pad) & (nm < hi + pad), axis=1) & (sv.nuc_sv != 0))
    candidates = (np.concatenate([sv.pre_sv[rows], sv.post_sv[rows], sv.nuc_sv[near]]),
                  np.concatenate([pieces.pre_piece[rows], pieces.post_piece[rows],
                                  pieces.core_piece[near]]),
                  np.concatenate([plan.pre_nm, plan.post_nm, nm[near]]))
    args = (plan, pieces.core_piece, pieces.cell_fragments, pieces.pre_piece,
            pieces.post_piece, candidates)
    image, ws, stats = imagery.render(*args, _rng(seed, "imagery"))
    wide_box = (plan.wide_lo_vx, plan.wide_shape, imagery.SCALES[imagery.WIDE_MIP])

    def wide(emit):  # the wide box of the coarse mip, written as it is rendered
        return imagery.render(*args, _rng(seed, "imagery", 2), box=wide_box, emit=emit)[2]

    meta = imagery.write(out, plan, image, ws, stats, wide)
    log(f"  imagery: {plan.shape} voxels at mip 0, {plan.wide_shape} at mip "
        f"{imagery.WIDE_MIP}, {meta['n_supervoxels']} supervoxels, "
        f"{(meta['image']['bytes'] + meta['watershed']['bytes']) / 1e6:.1f} MB  "
        f"{_mark(t_start)}")


def _place_cells(params: DatastackParams, seed: int, scale: float) -> CellStage:
    """Nuclei with sparse ids, in a shuffled order, and their points in table voxels."""
    slab = slab_for(params, scale)
    cells = place_cells(params, slab, _rng(seed, "cells"))
    n = len(cells)
    # nucleus ids are sparse (datasets-facts §1.4: 144k ids over 1..7.3e5)
    id_space = int(max(7.3e5 * max(scale, 1.0), 10 * n))
    cells.insert(0, "nucleus_id", sparse_sorted_ids(_rng(seed, "ids"), n, 1000, id_space))
    cells = cells.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    if examples.applies(params.name, params.materialized_versions):
        # the tutorials' example cells, with their real nucleus ids (before skeletons are
        # grown: each skeleton is seeded by its nucleus id)
        examples.plant_cells(cells, _rng(seed, "examples"))
    pt_vx = np.rint(cortical_to_voxels(cells[["x_um", "y_um", "z_um"]].to_numpy(), params))
    pt_vx = pt_vx.astype(np.int64)
    cells["pt_x"], cells["pt_y"], cells["pt_z"] = pt_vx[:, 0], pt_vx[:, 1], pt_vx[:, 2]
    is_neuron = cells["cell_class"].isin(["excitatory_neuron", "inhibitory_neuron"]).to_numpy()
    neurons = cells[is_neuron].reset_index(drop=True)
    return CellStage(slab, cells, is_neuron, neurons, pt_vx)


def _fragment_labels(skeletons: dict, seed: int,
                     stream_of: dict[int, int] | None = None) -> dict[int, np.ndarray]:
    """Axon fragment label of every skeleton node (0 = attached to the soma), by nucleus id.

    Every axon starts fragmented as in the raw segmentation; proofreading later merges the
    fragments back (the edits), before or after the first materialized version. The cells
    are cut in the order of their stream ids (``stream_of``: nucleus id -> stream id), so
    the planted example cells change no other cell's fragments.
    """
    from offline_cave.generator.synapses import axon_fragments_many

    order = sorted(skeletons, key=lambda k: (stream_of or {}).get(k, k))
    labels = axon_fragments_many([skeletons[k] for k in order], [False] * len(order),
                                 _rng(seed, "fragments"))
    return dict(zip(order, (lab.astype(np.int32) for lab in labels), strict=True))


def _fragment_points(skeletons: dict, frag_labels: dict[int, np.ndarray]
                     ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Nucleus id -> (fragment labels 1..k, the position of each fragment's first node, um in
    the cortical frame): where a proofreader would click to join that fragment."""
    out = {}
    for nucleus_id, labels in frag_labels.items():
        found, first = np.unique(labels, return_index=True)
        keep = found > 0
        out[nucleus_id] = (found[keep], skeletons[nucleus_id].vertices[first[keep]])
    return out


def _fragment_piece_points(frag_points: dict[int, tuple[np.ndarray, np.ndarray]],
                           pieces: Pieces) -> tuple[np.ndarray, np.ndarray]:
    """(fragment pieces, sorted; their first node's position, um) from :func:`_fragment_points`
    (label L of a cell is its L-th fragment piece)."""
    ids, xyz = [np.zeros(0, np.int64)], [np.zeros((0, 3))]
    for nucleus_id, (labels, pos) in frag_points.items():
        frags = pieces.cell_fragments.get(nucleus_id, np.zeros(0, np.int64))
        ok = labels <= frags.size
        ids.append(frags[labels[ok] - 1])
        xyz.append(pos[ok])
    ids_all, xyz_all = np.concatenate(ids), np.concatenate(xyz)
    order = np.argsort(ids_all, kind="stable")
    return ids_all[order], xyz_all[order]


def _pieces(cells: pd.DataFrame, frag_labels: dict[int, np.ndarray], syn: pd.DataFrame) -> Pieces:
    """Number the pieces (cores, fragments, outside axons) and find each synapse's pieces."""
    n = len(cells)
    core_piece = np.arange(n, dtype=np.int64)
    row_of_nucleus = pd.Series(np.arange(n), index=cells["nucleus_id"].to_numpy())
    frag_offset: dict[int, int] = {}
    next_piece = n
    cell_fragments: dict[int, np.ndarray] = {}
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
    piece_nucleus = np.zeros(n_pieces, dtype=np.int64)
    piece_nucleus[:n] = cells["nucleus_id"].to_numpy()
    return Pieces(core_piece, cell_fragments, ext_piece_base, ext_inverse, n_pieces, pre_piece,
                  post_piece, piece_nucleus)


@dataclass
class Level2Links:
    """What the later stages need of the level-2 data: the level-2 node of each synapse's
    partner sites and of each covered cell's soma (0 where there is none)."""

    nuclei: np.ndarray
    n_nodes: int
    pre_l2: np.ndarray
    post_l2: np.ndarray
    soma_l2: dict[int, int]


def _level2(params: DatastackParams, stage: CellStage, skeletons: dict, nuclei: np.ndarray,
            frag_labels: dict[int, np.ndarray], pieces: Pieces, syn: pd.DataFrame,
            out: Writer) -> Level2Links:
    """Level-2 nodes, chunk graph and cache attributes of the cells ``nuclei`` (written now)."""
    from offline_cave.generator.level2 import build_level2, vertex_lookup

    cells = stage.cells
    nuclei = nuclei[np.isin(nuclei, np.fromiter(skeletons, np.int64))]
    row = pd.Series(np.arange(len(cells)), index=cells["nucleus_id"].to_numpy())
    core = {int(n): int(pieces.core_piece[row[n]]) for n in nuclei}
    l2 = build_level2(params, skeletons, nuclei, frag_labels, core, pieces.cell_fragments)
    out.put(layout.LEVEL2_NODES_PARQUET, iter(l2.node_tables))
    out.put(layout.LEVEL2_EDGES_PARQUET, l2.edges.sort_values("nucleus_id", kind="stable"))
    out.put(layout.LEVEL2_VERTICES_PARQUET, pd.DataFrame({
        "nucleus_id": np.concatenate([np.full(len(v), k, np.int64)
                                      for k, v in l2.vertex_l2.items()] or [np.zeros(0)]),
        "node": np.concatenate([np.arange(len(v), dtype=np.int32)
                                for v in l2.vertex_l2.values()] or [np.zeros(0)]),
        "l2_id": np.concatenate(list(l2.vertex_l2.values()) or [np.zeros(0)])}))
    out.put(layout.LEVEL2_CELLS_PARQUET, pd.DataFrame({"nucleus_id": nuclei}))
    pre = vertex_lookup(l2.vertex_l2, syn["pre_nucleus_id"].to_numpy(), syn["pre_node"].to_numpy())
    post = vertex_lookup(l2.vertex_l2, syn["post_nucleus_id"].to_numpy(),
                         syn["post_node"].to_numpy())
    soma = {k: int(v[0]) for k, v in l2.vertex_l2.items()}
    return Level2Links(nuclei, l2.n_nodes, pre, post, soma)


def _write_supervoxel_l2(out: Writer, cells: pd.DataFrame, sv: Supervoxels,
                         l2: Level2Links) -> None:
    """supervoxel -> level-2 node of the supervoxels inside the covered cells' nodes: synapse
    sites on their skeleton vertices, nucleus and alternative points in their soma node."""
    nucleus_ids = cells["nucleus_id"].to_numpy()
    soma = np.array([l2.soma_l2.get(int(n), 0) for n in nucleus_ids], dtype=np.int64)
    parts_sv = [sv.pre_sv, sv.post_sv, sv.nuc_sv, sv.alt_sv]
    parts_l2 = [l2.pre_l2, l2.post_l2, soma, soma[sv.alt_rows]]
    svs = np.concatenate(parts_sv)
    l2s = np.concatenate(parts_l2)
    keep = (l2s != 0) & (svs != 0)
    svs, l2s = svs[keep], l2s[keep]
    order = np.argsort(svs, kind="stable")
    out.put(layout.LEVEL2_SUPERVOXELS_PARQUET,
            pa.table({"supervoxel_id": svs[order], "l2_id": l2s[order]}))


def _plan_edits(params: DatastackParams, cells: pd.DataFrame, is_neuron: np.ndarray,
                pieces: Pieces, ed_rng: np.random.Generator,
                ex_rng: np.random.Generator | None = None) -> EditPlan:
    """Multi-soma merges, false merges and axon proofreading (drawn in this order from
    ``ed_rng``); sets ``cells.proofread_time``."""
    # edits before the first materialized version are "old" proofreading; edits between the
    # first and the last (or, with a single version, until params.edits_until) change roots
    t1300 = unix(params.timestamp_of(min(params.materialized_versions)))
    t_last = unix(params.timestamp_of(max(params.materialized_versions)))
    if t_last - t1300 < days(30):
        t_last = unix(params.edits_until)
    plan = EditPlan([], [])
    neuron_rows = np.flatnonzero(is_neuron)
    taken = np.zeros(len(cells), dtype=bool)  # rows already in a merged object
    example_rows = examples.rows_of(cells)
    taken[list(example_rows.values())] = True  # the example cells get only their own edits
    _multi_soma(params, cells, neuron_rows, taken, (t1300, t_last), ed_rng, plan)
    n_false = _false_merges(cells, neuron_rows, taken, pieces, (t1300, t_last), ed_rng, plan)
    _axon_proofreading(cells, pieces, (t1300, t_last), ed_rng, plan, example_rows)
    if example_rows and ex_rng is not None:
        # outside axons no other edit touches, smallest first
        free = _ext_pieces_by_size(pieces)[n_false:][::-1]
        plan.edits += examples.plan_example_edits(cells, pieces.cell_fragments, free,
                                                  (t1300, t_last), ex_rng)
    return plan


def _ext_pieces_by_size(pieces: Pieces) -> np.ndarray:
    """Outside-axon pieces, the one with the most synapses first."""
    return pieces.ext_piece_base + np.argsort(-np.bincount(pieces.ext_inverse))


def _multi_soma(params: DatastackParams, cells: pd.DataFrame, neuron_rows: np.ndarray,
                taken: np.ndarray, window: tuple[float, float], ed_rng: np.random.Generator,
                plan: EditPlan) -> None:
    """Multi-soma objects: a neuron merged with its nearest neuron (1 % of neurons); half of
    them are split by proofreaders after the first version."""
    from scipy.spatial import cKDTree

    t1300, t_last = window
    xyz = cells[["x_um", "y_um", "z_um"]].to_numpy()
    tree = cKDTree(xyz[neuron_rows])
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
        plan.initial_groups.append(np.array([a, b], dtype=np.int64))
    for a, b in multi_pairs[: len(multi_pairs) // 2]:
        t = ed_rng.uniform(t1300 + days(5), t_last - days(5))
        plan.edits.append(Edit(t, "split", [np.array([a]), np.array([b])], "split_multi_soma"))


def _false_merges(cells: pd.DataFrame, neuron_rows: np.ndarray, taken: np.ndarray,
                  pieces: Pieces, window: tuple[float, float], ed_rng: np.random.Generator,
                  plan: EditPlan) -> int:
    """False merges: an outside axon fragment glued to a neuron at v1300, split off later.
    Returns how many of the largest outside axons it may have used."""
    t1300, t_last = window
    ext_pieces_by_size = _ext_pieces_by_size(pieces)
    false_merge_rows = ed_rng.choice(neuron_rows[~taken[neuron_rows]],
                                     size=max(1, int(0.01 * neuron_rows.size)), replace=False)
    for row, piece in zip(false_merge_rows, ext_pieces_by_size[: false_merge_rows.size],
                          strict=False):
        if taken[row] or cells["proofread_axon"].iat[row]:
            continue
        taken[row] = True
        plan.initial_groups.append(np.array([row, piece], dtype=np.int64))
        t = ed_rng.uniform(t1300 + days(5), t_last - days(5))
        plan.edits.append(Edit(t, "split", [np.array([row]), np.array([piece])],
                               "split_false_merge"))
    return int(false_merge_rows.size)


#: Share of the cells proofread before v1300 whose last axon extension comes after it
#: (*assumed*: proofreading of listed cells goes on between releases, e.g. strategies move
#: from axon_partially_extended to axon_fully_extended; no published rate found).
FOLLOW_UP_SHARE = 0.1


def _axon_proofreading(cells: pd.DataFrame, pieces: Pieces, window: tuple[float, float],
                       ed_rng: np.random.Generator, plan: EditPlan,
                       example_rows: dict[str, int] | None = None) -> None:
    """Merges of a cell's distal fragments into its root, 1-4 operations; 80 % of the proofread
    cells were done before v1300, the rest between the versions; of those done before, a share
    ``FOLLOW_UP_SHARE`` get their last operation after v1300 (proofreading goes on after a
    cell is listed as proofread). Sets ``proofread_time``.

    Example cells (``example_rows``, role -> row): the synapse-query example is proofread
    halfway between the versions (its root is replaced), the change-log cell gets its own
    edits (``examples.plan_example_edits``), the first-proofread example a day before every
    other cell (the first row of the proofreading table), the example pyramidal cell before v943
    (its root is in the flat segmentation seg_m943), any other before the first version."""
    t1300, t_last = window
    proof_rows = np.flatnonzero(cells["proofread_axon"].to_numpy())
    late = ed_rng.random(proof_rows.size) < 0.2
    proof_late = ed_rng.uniform(t1300 + days(5), t_last - days(5), proof_rows.size)
    proof_early = ed_rng.uniform(unix("2022-03-01T00:00:00"), t1300 - days(3), proof_rows.size)
    proof_time = np.where(late, proof_late, proof_early)
    follow = ~late & (ed_rng.random(proof_rows.size) < FOLLOW_UP_SHARE)
    follow_time = ed_rng.uniform(t1300 + days(5), t_last - days(5), proof_rows.size)
    skip = set()
    for role, row in (example_rows or {}).items():
        at = np.flatnonzero(proof_rows == row)
        if at.size == 0:
            continue
        follow[at] = False  # the example cells keep the edit histories of their roles
        if role == "synapse_query":
            proof_time[at] = (t1300 + t_last) / 2
        elif role == "change_log":
            skip.add(row)
        elif examples.BY_ROLE[role].first_proofread:
            proof_time[at] = proof_early.min() - days(1)
        elif role == "example_pyramidal":  # its root is in seg_m943 too: edits end before 943
            proof_time[at] = np.minimum(proof_early[at], unix(examples.SEG_M943_TIME) - days(15))
        else:
            proof_time[at] = proof_early[at]
    for row, t, later, t_later in zip(proof_rows, proof_time, follow, follow_time, strict=True):
        if row in skip:
            continue
        frags = pieces.cell_fragments.get(int(cells["nucleus_id"].iat[row]), np.zeros(0, np.int64))
        if frags.size == 0:
            continue
        n_ops = int(min(frags.size, ed_rng.integers(1, 5)))
        for j, part in enumerate(np.array_split(ed_rng.permutation(frags), n_ops)):
            at = t + j * ed_rng.uniform(60, 3 * 86400)
            if later and n_ops > 1 and j == n_ops - 1:
                at = t_later
            plan.edits.append(Edit(at, "merge", [np.array([row])] + [np.array([p]) for p in part],
                                   "axon_extension"))
    cells["proofread_time"] = np.nan
    cells.loc[proof_rows, "proofread_time"] = proof_time


def _segment(params: DatastackParams, cells: pd.DataFrame, pieces: Pieces, plan: EditPlan,
             ed_rng: np.random.Generator, sv_rng: np.random.Generator) -> Segmentation:
    """Replay the edits: roots of every piece at each materialized version, and lineage."""
    n = len(cells)
    snapshot_times = [unix(params.timestamp_of(v)) for v in params.materialized_versions]
    # nuclei whose centroid misses the segmentation (pt_root_id 0 in the nucleus table)
    root_zero = np.zeros(n, dtype=bool)
    root_zero[sv_rng.choice(n, size=int(params.frac_root_zero * n), replace=False)] = True
    root_zero[list(examples.rows_of(cells).values())] = False  # the tutorials query their roots
    history = simulate(pieces.n_pieces, plan.initial_groups, plan.edits, pieces.piece_nucleus,
                       snapshot_times, ed_rng,
                       unlisted_nuclei=cells["nucleus_id"].to_numpy()[root_zero])
    return Segmentation(history, snapshot_times, root_zero)


_POINT_BLOCK_ROWS = 1 << 20  # synapse rows converted to voxels at a time


def _synapse_points(params: DatastackParams, syn: pd.DataFrame) -> SynapsePoints:
    """Synapse points in the synapse table's voxels, and sizes."""
    syn_res = params.synapse_voxel_resolution

    def voxels(prefix: str) -> np.ndarray:
        # a block of rows at a time: the float64 intermediates stay small at any scale
        um = syn[[f"{prefix}_{a}_um" for a in "xyz"]].to_numpy()  # float32
        out = np.empty((len(syn), 3), dtype=np.int32)
        for start in range(0, len(syn), _POINT_BLOCK_ROWS):
            block = um[start:start + _POINT_BLOCK_ROWS]
            out[start:start + len(block)] = np.rint(cortical_to_voxels(block, params, syn_res))
        return out

    return SynapsePoints(voxels("pre"), voxels("post"), voxels("ctr"),
                         np.asarray(syn_res) / np.asarray(params.voxel_resolution),
                         syn["size"].to_numpy().copy())


def _supervoxels(params: DatastackParams, cells: pd.DataFrame, pt_vx: np.ndarray,
                 pieces: Pieces, points: SynapsePoints, root_zero: np.ndarray,
                 sv_rng: np.random.Generator, op_pieces: np.ndarray | None = None,
                 fallback: tuple[np.ndarray, np.ndarray] | None = None,
                 extra_rng: np.random.Generator | None = None) -> Supervoxels:
    """Supervoxel ids of nucleus, alternative and synapse points; the supervoxel -> piece map;
    for each of ``op_pieces`` (the edited pieces) one supervoxel and its point. An edited
    piece that no point falls in (an axon fragment whose synapses were all dropped) gets one
    supervoxel of its own at its ``fallback`` position (pieces sorted, um), drawn from
    ``extra_rng`` so that every other id stays as it was."""
    n, n_syn = len(cells), len(points)
    # alternative points sit a few um from the centroid, inside the cell's segment
    alt_rows = np.flatnonzero(root_zero)
    xyz = cells[["x_um", "y_um", "z_um"]].to_numpy()
    alt_um = xyz[alt_rows] + sv_rng.normal(0, 2.0, size=(alt_rows.size, 3))
    alt_vx = np.rint(cortical_to_voxels(alt_um, params)).astype(np.int64)
    # the synapse points stay int32 in synapse voxels, scaled an axis at a time when read
    all_points = [pt_vx, alt_vx, ScaledPoints(points.pre_vx, points.to_table),
                  ScaledPoints(points.post_vx, points.to_table)]
    core_piece = pieces.core_piece
    all_pieces = np.concatenate([core_piece, core_piece[alt_rows], pieces.pre_piece,
                                 pieces.post_piece])
    sv_all = supervoxel_ids(all_points, params.voxel_resolution, params.base_resolution,
                            params.chunk_size, params.chunk_offset_vx, sv_rng)
    keep = np.ones(sv_all.size, dtype=bool)
    keep[:n] = ~root_zero  # a centroid outside the segmentation has no supervoxel
    op_points = _piece_points(params, op_pieces, all_pieces, sv_all, all_points, keep)
    del all_points
    extra_piece, extra_sv, extra_vx = _extra_supervoxels(params, op_pieces, op_points[0],
                                                         fallback, sv_all, extra_rng)
    if extra_piece.size:
        to_base = np.asarray(params.voxel_resolution) / np.asarray(params.base_resolution)
        merged = np.concatenate([op_points[0], extra_piece])
        order = np.argsort(merged, kind="stable")
        op_points = (merged[order], np.concatenate([op_points[1], extra_sv])[order],
                     np.concatenate([op_points[2], np.rint(extra_vx * to_base)
                                     .astype(np.int64)])[order])
    nuc_sv = sv_all[:n].copy()
    alt_sv = sv_all[n:n + alt_rows.size]
    pre_sv = sv_all[n + alt_rows.size:n + alt_rows.size + n_syn]
    post_sv = sv_all[n + alt_rows.size + n_syn:]
    nuc_sv[root_zero] = 0
    sv_kept = np.concatenate([sv_all[keep], extra_sv])
    piece_kept = np.concatenate([all_pieces[keep], extra_piece])
    del sv_all, all_pieces, keep
    by_sv = np.argsort(sv_kept, kind="stable")
    table = pa.table({"supervoxel_id": sv_kept[by_sv], "piece_id": piece_kept[by_sv]})
    return Supervoxels(nuc_sv, alt_rows, alt_vx, alt_sv, pre_sv, post_sv, table, op_points)


def _extra_supervoxels(params: DatastackParams, op_pieces: np.ndarray | None,
                       found: np.ndarray, fallback: tuple[np.ndarray, np.ndarray] | None,
                       sv_all: np.ndarray, rng: np.random.Generator | None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pieces, new supervoxel ids, points in table voxels) for the edited pieces without a
    supervoxel that have a ``fallback`` position. Each id is in the chunk of its point, with a
    counter above every counter already used in that chunk (so no id repeats)."""
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)))
    if op_pieces is None or fallback is None or rng is None:
        return empty
    fb_piece, fb_um = fallback
    missing = np.setdiff1d(op_pieces, found)
    pos = np.clip(np.searchsorted(fb_piece, missing), 0, max(fb_piece.size - 1, 0))
    has = (fb_piece[pos] == missing) if fb_piece.size else np.zeros(missing.size, bool)
    missing, pos = missing[has], pos[has]
    if missing.size == 0:
        return empty
    vx = np.rint(cortical_to_voxels(fb_um[pos], params)).astype(np.float64)
    new = supervoxel_ids([vx], params.voxel_resolution, params.base_resolution,
                         params.chunk_size, params.chunk_offset_vx, rng)
    counter_bits = np.int64((1 << 26) - 1)
    chunk = new >> 26
    used = np.isin(sv_all >> 26, chunk)
    top = pd.Series(sv_all[used] & counter_bits).groupby(sv_all[used] >> 26).max()
    start = top.reindex(chunk).to_numpy()
    rank = pd.Series(np.arange(chunk.size)).groupby(chunk).cumcount().to_numpy()
    counter = np.where(np.isnan(start), new & counter_bits,
                       np.nan_to_num(start, nan=0).astype(np.int64) + 1 + rank)
    if counter.max(initial=0) > counter_bits:
        raise ValueError("too many points in one chunk for the supervoxel counter")
    return missing.astype(np.int64), (chunk << 26) | counter.astype(np.int64), vx


def _piece_points(params: DatastackParams, op_pieces: np.ndarray | None,
                  all_pieces: np.ndarray, sv_all: np.ndarray, all_points: list[np.ndarray],
                  keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(piece, supervoxel, point in segmentation base voxels) of the first point of each
    edited piece that has one (what a proofreader clicks on); pieces without are left out."""
    wanted = np.zeros(0, np.int64) if op_pieces is None else np.asarray(op_pieces, np.int64)
    rows = np.flatnonzero(np.isin(all_pieces, wanted) & keep)
    found, first = np.unique(all_pieces[rows], return_index=True)
    rows = rows[first]
    starts = np.cumsum([0] + [len(p) for p in all_points])
    xyz = np.zeros((rows.size, 3), dtype=np.float64)
    for k, block in enumerate(all_points):
        inside = (rows >= starts[k]) & (rows < starts[k + 1])
        at = rows[inside] - starts[k]
        xyz[inside] = block.rows(at) if isinstance(block, ScaledPoints) else np.asarray(block)[at]
    to_base = np.asarray(params.voxel_resolution) / np.asarray(params.base_resolution)
    return found, sv_all[rows].astype(np.int64), np.rint(xyz * to_base).astype(np.int64)


# long but linear: the per-version tables, written as they are made
def _write_tables(params: DatastackParams, seed: int, out: Writer, stage: CellStage,
                  pieces: Pieces, seg: Segmentation, points: SynapsePoints,
                  sv: Supervoxels) -> dict[str, dict]:
    """Write every materialized version's tables; returns their columns and row counts."""
    cells, pt_vx, core_piece = stage.cells, stage.pt_vx, pieces.core_piece
    n, n_syn = len(cells), len(points)
    tb_rng = _rng(seed, "tables")
    fn_rng = _rng(seed, "function")
    table_meta: dict[str, dict] = {}
    nucleus_ids = cells["nucleus_id"].to_numpy()
    nuc_created = timestamps(tb_rng, n, "2020-09-28T22:40:00", 300)
    syn_ids = sparse_sorted_ids(tb_rng, n_syn, 594_888, max(511_314_790, 4 * n_syn))
    # synapse rows sorted by post root at the first version => input queries touch few row groups
    syn_order = syn_order_pre = None

    if params.kind == "minnie":
        static = minnie_static_tables(cells, stage.is_neuron, stage.slab, tb_rng, fn_rng)
    else:
        static = v1dd_static_tables(cells, stage.is_neuron, pt_vx, sv.nuc_sv, sv.alt_rows,
                                     sv.alt_sv, core_piece, tb_rng, seed, out)

    for version, t_snap in zip(params.materialized_versions, seg.snapshot_times, strict=True):
        piece_root = seg.history.snapshots[t_snap]
        nuc_root = np.where(seg.root_zero, 0, piece_root[core_piece])
        nucleus = nucleus_detection(nucleus_ids, nuc_created, cells["volume_um3"].to_numpy(),
                                    pt_vx, sv.nuc_sv, nuc_root)
        alternative = reference_point(
            np.arange(1, sv.alt_rows.size + 1),
            timestamps(_rng(seed, "tables", 1), sv.alt_rows.size, "2023-02-01T00:00:00",
                       days(20)),
            nucleus_ids[sv.alt_rows], sv.alt_vx, sv.alt_sv, piece_root[core_piece[sv.alt_rows]])
        tables_v = {
            "nucleus_detection_v0": nucleus,
            "nucleus_alternative_points": alternative,
            "proofreading_status_and_strategy": proofreading_table(
                cells, t_snap, piece_root, core_piece, pt_vx, sv.nuc_sv, sv.alt_rows, sv.alt_sv),
        }
        for name, table in static.items():
            if TABLES[name].introduced <= version:  # tables exist from their introduction on
                tables_v[name] = table(piece_root) if callable(table) else table
        lookup_name = ("nucleus_detection_lookup_v1" if params.kind == "minnie"
                       else "nucleus_alternative_lookup")
        tables_v[lookup_name] = lookup_view(nucleus, alternative)
        pre_root = piece_root[pieces.pre_piece]
        post_root = piece_root[pieces.post_piece]
        if syn_order is None:
            # rows sorted by post root (then pre root): a neuron's inputs are a few row groups;
            # a second copy sorted by pre root does the same for a neuron's outputs
            syn_order = np.lexsort((pre_root, post_root))
            syn_order_pre = np.lexsort((post_root, pre_root))
        tables_v[params.synapse_table] = _synapse_chunks(syn_ids, points, sv, pre_root,
                                                         post_root, syn_order)
        tables_v[params.synapse_table + layout.BY_PRE_SUFFIX] = _synapse_chunks(
            syn_ids, points, sv, pre_root, post_root, syn_order_pre)
        for name, frame in tables_v.items():
            schema, n_rows = out.put(f"v{version}/{name}.parquet", frame)
            if name.endswith(layout.BY_PRE_SUFFIX):
                continue
            meta = table_meta.setdefault(name, {"row_counts": {}})
            meta["columns"] = [[f.name, str(f.type)] for f in schema]
            meta["row_counts"][str(version)] = n_rows
        del tables_v, pre_root, post_root
    return table_meta


_SYNAPSE_CREATED = "2020-11-04T06:31:14.118512"  # bulk ingestion: one creation time


def _synapse_chunks(syn_ids: np.ndarray, points: SynapsePoints, sv: Supervoxels,
                    pre_root: np.ndarray, post_root: np.ndarray, order: np.ndarray):
    """The synapse table in ``order``, in row chunks so memory stays flat at large scales."""
    for rows in np.array_split(order, max(1, len(points) // 1_000_000)):
        yield synapses(syn_ids[rows], _SYNAPSE_CREATED, points.size[rows], sv.pre_sv[rows],
                       pre_root[rows], sv.post_sv[rows], post_root[rows], points.pre_vx[rows],
                       points.post_vx[rows], points.ctr_vx[rows])


def _write_metadata(out: Writer, params: DatastackParams, stage: CellStage, seg: Segmentation,
                    table_meta: dict[str, dict]) -> None:
    """The segmentation files (but the pieces, written with the supervoxels), the ground
    truth and the JSON metadata."""
    history = seg.history
    out.put(layout.ROOTS_PARQUET, history.roots)
    out.put(layout.ROOT_PIECES_PARQUET, history.root_pieces)
    out.put(layout.LINEAGE_PARQUET, history.lineage)
    out.put(layout.OPERATIONS_PARQUET, seg.operations)
    out.put(layout.USERS_PARQUET, seg.users)
    truth = stage.cells.copy()
    truth["root_zero"] = seg.root_zero
    out.put(layout.CELLS_PARQUET, truth)
    out.put(layout.DATASTACK_JSON, _datastack_info(params, stage.slab))
    out.put(layout.VERSIONS_JSON, _versions(params))
    out.put(layout.TABLES_JSON, _table_metadata(params, table_meta))
    out.put(layout.VIEWS_JSON, _view_metadata(params, table_meta))


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


# ---------------------------------------------------------------------------- static meshes
def _mesh_batch(args: tuple) -> list[tuple[int, tuple[bytes, int]]]:
    from offline_cave.generator.static_meshes import encode_multilod, lod_meshes

    return [(k, encode_multilod(lod_meshes(v, p, r, float(r[np.nonzero(p < 0)[0][0]]))))
            for k, v, p, r in args]


def _static_mesh_payloads(params: DatastackParams, cells: pd.DataFrame, skeletons: dict,
                          l2_cells: np.ndarray, workers: int) -> dict[int, tuple[bytes, int]]:
    """Static LOD 0-3 meshes (shard payloads by nucleus id) of the cells with level-2 data and
    the planted example cells, built from the skeletons exactly as the server reads them back
    (float32 nm), so LOD 0 is the cell's dynamic mesh."""
    if not params.static_mesh_versions:
        return {}
    wanted = set(l2_cells.tolist())
    if "example" in cells:
        wanted |= set(cells.loc[cells["example"].astype(bool), "nucleus_id"].tolist())
    ids = sorted(k for k in wanted if k in skeletons)
    rows = []
    for k in ids:
        sk = skeletons[k]
        nm = cortical_to_nm(sk.vertices, params).astype(np.float32).astype(np.float64)
        radius = (np.asarray(sk.radius) * 1000).astype(np.float32).astype(np.float64)
        rows.append((k, nm, np.asarray(sk.parent, dtype=np.int64), radius))
    batches = [rows[i::2 * workers] for i in range(2 * workers)] if workers > 1 else [rows]
    out: dict[int, tuple[bytes, int]] = {}
    if workers > 1 and len(rows) > 20:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(_mesh_batch, batches):
                out.update(result)
    else:
        for batch in batches:
            out.update(_mesh_batch(batch))
    return out


def _write_static_meshes(out: Writer, params: DatastackParams, stage: CellStage, history,
                         core_piece: np.ndarray, payloads: dict[int, tuple[bytes, int]]) -> None:
    """``static/seg_m{N}/`` of each static version N: each cell's meshes under its root id at
    N (the root holding the cell's core piece at version N's time stamp)."""
    from offline_cave.generator.static_meshes import write_static_meshes

    stamps = {int(v): unix(t) for v, t, _ in params.versions}
    nuclei = stage.cells["nucleus_id"].to_numpy(np.int64)
    rows = np.nonzero(np.isin(nuclei, np.fromiter(payloads, np.int64)))[0]
    roots, rp = history.roots, history.root_pieces
    versions = {}
    for version in params.static_mesh_versions:
        t = stamps[version]
        alive = roots.loc[(roots["created"] <= t) & (t < roots["expired"]), "root_id"]
        members = rp[rp["root_id"].isin(alive)]
        root_of_piece = dict(zip(members["piece_id"].to_numpy().tolist(),
                                 members["root_id"].to_numpy().tolist(), strict=True))
        versions[version] = {int(nuclei[r]): int(root_of_piece[int(core_piece[r])])
                             for r in rows if int(core_piece[r]) in root_of_piece}
    info = _datastack_info(params, stage.slab)
    write_static_meshes(out, versions, payloads, info["segmentation_bounds_vx"],
                        tuple(params.voxel_resolution))


# ---------------------------------------------------------------------------- metadata
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
def build_into(params: DatastackParams, seed: int, scale: float, target: Path,
               log=print) -> tuple[dict, dict]:
    """Build one datastack into the directory ``target``: its summary and file entries."""
    out = Writer(target)
    summary = build(params, seed, scale, out, log=log)
    return summary, out.entries


def ensure_sample(data_dir: str | Path, datastack: str = "minnie65_public", seed: int = 0,
                  scale: float = 1.0, force: bool = False, deep: bool = True,
                  log=print, check_resources: bool = True) -> Path:
    """Return the directory of a complete, current sample, generating it if needed
    (:func:`offline_cave.generator.cache.ensure_sample` with this pipeline's build)."""
    return cache.ensure_sample(build_into, data_dir, datastack, seed, scale, force=force,
                               deep=deep, log=log, check_resources=check_resources)
