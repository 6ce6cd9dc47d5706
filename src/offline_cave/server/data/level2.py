"""Level-2 nodes, the level-2 chunk graph and the level-2 cache, read from ``level2/``.

The generator writes level-2 data for some cells only (``level2/cells.parquet``: every
proofread neuron and a bounded set of others). A level-2 node belongs to one segmentation
piece, so the nodes of a root are those of its pieces. A supervoxel outside those nodes (a
synapse on an axon from outside the slab, a glia nucleus, ...) is a level-2 node of its own,
whose id is the supervoxel's with layer 2; such nodes have no cache data (the real cache
answers ``{}`` for an uncached node, and so does this one).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

from offline_cave.contract import layout
from offline_cave.server.data.errors import InvalidQuery, MissingArtefact, MissingRoot
from offline_cave.server.data.store import Datastack

ATTRIBUTES = ("area_nm2", "chunk_intersect_count", "max_dt_nm", "mean_dt_nm", "pca", "pca_val",
              "rep_coord_nm", "size_nm3")
"""The attribute names of caveclient 8.2.1's ``get_l2data`` docstring, in its order."""

ATTRIBUTE_DTYPES = {"area_nm2": "float32", "chunk_intersect_count": "int32",
                    "max_dt_nm": "float32", "mean_dt_nm": "float32", "pca": "float32",
                    "pca_val": "float32", "rep_coord_nm": "uint64", "size_nm3": "uint32"}
"""``attribute_metadata``: attribute -> data type (the value types are not documented
publicly; these are the cache's storage types as far as we know, *assumed*)."""

_LAYER_SHIFT = np.uint64(layout.ROOT_LAYER_SHIFT)
_LOW_BITS = np.int64((1 << layout.ROOT_LAYER_SHIFT) - 1)


def layer_of(ids: np.ndarray) -> np.ndarray:
    """Chunkedgraph layer of each id (its top byte)."""
    return (np.asarray(ids, dtype=np.int64).astype(np.uint64) >> _LAYER_SHIFT).astype(np.int64)


def with_layer(ids: np.ndarray, layer: int) -> np.ndarray:
    """The ids with their layer byte replaced (supervoxel <-> its own level-2 node)."""
    return (np.asarray(ids, dtype=np.int64) & _LOW_BITS) | np.int64(layer << 56)


@dataclass
class _Index:
    cells: np.ndarray  # covered nucleus ids, sorted
    sv: np.ndarray  # supervoxels inside covered nodes, sorted
    sv_l2: np.ndarray
    node: np.ndarray  # covered level-2 ids, sorted
    node_piece: np.ndarray
    node_row: np.ndarray  # row of each in nodes.parquet
    group_start: np.ndarray  # first row of each row group of nodes.parquet
    piece_sorted: np.ndarray  # node pieces, sorted
    piece_node: np.ndarray  # the nodes in that order
    edge_a: np.ndarray
    edge_b: np.ndarray
    edge_piece_a: np.ndarray
    edge_piece_b: np.ndarray


class Level2Store:
    """Level-2 lookups of one datastack (indexes read on first use: ~50 bytes a node)."""

    def __init__(self, ds: Datastack) -> None:
        self.ds = ds
        self._lock = threading.Lock()
        self._index: _Index | None = None

    def _path(self, rel: str):
        return self.ds.dir / rel

    def index(self) -> _Index:
        with self._lock:
            if self._index is None:
                if not self._path(layout.LEVEL2_CELLS_PARQUET).exists():
                    raise MissingArtefact(f"the {self.ds.name} sample has no level-2 data "
                                          f"(generated before it had any: regenerate it)")
                col = lambda rel, *cols: [  # noqa: E731
                    c.to_numpy() for c in pq.read_table(self._path(rel), columns=list(cols))
                    .columns]
                (cells,) = col(layout.LEVEL2_CELLS_PARQUET, "nucleus_id")
                sv, sv_l2 = col(layout.LEVEL2_SUPERVOXELS_PARQUET, "supervoxel_id", "l2_id")
                node, piece = col(layout.LEVEL2_NODES_PARQUET, "l2_id", "piece_id")
                order = np.argsort(node, kind="stable")
                meta = pq.ParquetFile(self._path(layout.LEVEL2_NODES_PARQUET)).metadata
                sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
                a, b, pa_, pb_ = col(layout.LEVEL2_EDGES_PARQUET, "l2_id_a", "l2_id_b",
                                     "piece_id_a", "piece_id_b")
                by_piece = np.lexsort((node, piece))
                self._index = _Index(np.sort(cells), sv, sv_l2, node[order], piece[order],
                                     order, np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64),
                                     piece[by_piece], node[by_piece], a, b, pa_, pb_)
            return self._index

    # ---- the chunkedgraph side
    def available(self) -> bool:
        """Whether the sample has level-2 data at all."""
        return self._path(layout.LEVEL2_CELLS_PARQUET).exists()

    def covered(self, nucleus: int) -> bool:
        if not self.available():
            return False
        cells = self.index().cells
        pos = np.searchsorted(cells, nucleus)
        return bool(pos < len(cells) and cells[pos] == nucleus)

    def l2_of_supervoxels(self, svids: np.ndarray, t: float | None = None) -> np.ndarray:
        """Level-2 node of each supervoxel (0 for 0 and for supervoxels that do not exist)."""
        svids = np.asarray(svids, dtype=np.int64)
        idx = self.index()
        out = with_layer(svids, layout.LEVEL2_LAYER)
        if len(idx.sv):
            pos = np.clip(np.searchsorted(idx.sv, svids), 0, len(idx.sv) - 1)
            hit = idx.sv[pos] == svids
            out[hit] = idx.sv_l2[pos[hit]]
        t = time.time() if t is None else t
        exists = self.ds.segments.roots_of(svids, t) != 0
        out[(svids == 0) | ~exists | (layer_of(svids) != 1)] = 0
        is_l2 = layer_of(svids) == layout.LEVEL2_LAYER  # a level-2 node is its own level 2
        out[is_l2] = np.where(self.roots_of(svids[is_l2], t) != 0, svids[is_l2], 0)
        return out

    def roots_of(self, l2ids: np.ndarray, t: float) -> np.ndarray:
        """Root at ``t`` of each level-2 id (0 for unknown ids and other layers)."""
        l2ids = np.asarray(l2ids, dtype=np.int64)
        out = np.zeros(len(l2ids), dtype=np.int64)
        ok = layer_of(l2ids) == layout.LEVEL2_LAYER
        if not ok.any() or not self.available():
            return out
        idx = self.index()
        seg = self.ds.segments
        pos = np.clip(np.searchsorted(idx.node, l2ids), 0, max(len(idx.node) - 1, 0))
        covered = ok & (idx.node[pos] == l2ids) if len(idx.node) else np.zeros_like(ok)
        if covered.any():
            out[covered] = seg.roots_of_pieces(idx.node_piece[pos[covered]], t)
        own = ok & ~covered  # a supervoxel's own node, unless that supervoxel is in a node
        if own.any():
            sv = with_layer(l2ids[own], 1)
            if len(idx.sv):
                spos = np.clip(np.searchsorted(idx.sv, sv), 0, len(idx.sv) - 1)
                sv = np.where(idx.sv[spos] == sv, 0, sv)
            out[own] = seg.roots_of(sv, t)
        return out

    def _pieces(self, root: int) -> np.ndarray:
        seg = self.ds.segments
        if not seg.exists(np.array([root], np.int64))[0]:
            raise MissingRoot(f"root id {root} does not exist in {self.ds.pcg_table}")
        return seg.pieces_of(root)

    def leaves(self, root: int) -> np.ndarray:
        """Level-2 nodes of a root (sorted): the covered nodes of its pieces and every other
        supervoxel's own node."""
        idx = self.index()
        pieces = self._pieces(root)
        lo = np.searchsorted(idx.piece_sorted, pieces, "left")
        hi = np.searchsorted(idx.piece_sorted, pieces, "right")
        nodes = (np.concatenate([idx.piece_node[a:b] for a, b in zip(lo, hi, strict=True)])
                 if len(pieces) else np.zeros(0, np.int64))
        sv = self.ds.segments.leaves([root])[root]
        if len(idx.sv):
            pos = np.clip(np.searchsorted(idx.sv, sv), 0, len(idx.sv) - 1)
            sv = sv[idx.sv[pos] != sv]
        return np.unique(np.concatenate([nodes, with_layer(sv, layout.LEVEL2_LAYER)]))

    def chunk_graph(self, root: int) -> np.ndarray:
        """(n, 2) level-2 edges of a root; a domain error when none of its pieces has
        level-2 data."""
        idx = self.index()
        pieces = self._pieces(root)
        lo = np.searchsorted(idx.piece_sorted, pieces, "left")
        if not (np.searchsorted(idx.piece_sorted, pieces, "right") > lo).any():
            nucleus = self.ds.segments.nucleus_of(root)
            what = f"nucleus {nucleus}" if nucleus else "a fragment without a nucleus"
            raise MissingArtefact(
                f"root id {root} ({what}) has no level-2 graph in the offline sample: it holds "
                f"level-2 data only for proofread neurons and {len(idx.cells)} cells in all "
                f"(see client.materialize.query_table('proofreading_status_and_strategy'))")
        keep = np.isin(idx.edge_piece_a, pieces) & np.isin(idx.edge_piece_b, pieces)
        return np.stack([idx.edge_a[keep], idx.edge_b[keep]], axis=1)

    # ---- the cache side
    def attributes(self, l2ids: list[int], names: list[str] | None) -> dict[str, dict]:
        """``{str(id): {attribute: value}}``; ``{}`` for a level-2 id without cache data."""
        names = list(ATTRIBUTES) if names is None else names
        unknown = [n for n in names if n not in ATTRIBUTES]
        if unknown:
            raise InvalidQuery(f"unknown level-2 cache attribute(s) {unknown[:10]}; "
                               f"valid: {', '.join(ATTRIBUTES)}")
        ids = np.asarray(l2ids, dtype=np.int64)
        bad = ids[layer_of(ids) != layout.LEVEL2_LAYER]
        if len(bad):
            raise InvalidQuery(f"not level-2 ids (layer {int(layer_of(bad[:1])[0])}, not 2): "
                               f"{', '.join(str(i) for i in bad[:10])}")
        out: dict[str, dict] = {str(int(i)): {} for i in ids}
        idx = self.index()
        if not len(idx.node):
            return out
        pos = np.clip(np.searchsorted(idx.node, ids), 0, len(idx.node) - 1)
        hit = idx.node[pos] == ids
        if not hit.any():
            return out
        rows = idx.node_row[pos[hit]]
        # read only the row groups holding the rows, and only the columns asked for
        groups = np.unique(np.searchsorted(idx.group_start, rows, "right") - 1)
        columns = [c for n in names for c in _COLUMNS[n]]
        table = pq.ParquetFile(self._path(layout.LEVEL2_NODES_PARQUET)).read_row_groups(
            groups.tolist(), columns=columns)
        # rows of the read groups, renumbered within the concatenated table
        group_of_row = np.searchsorted(idx.group_start, rows, "right") - 1
        sizes = np.diff(np.r_[idx.group_start, len(idx.node)])[groups]
        offset = np.r_[0, np.cumsum(sizes)[:-1]]
        local = (rows - idx.group_start[group_of_row]
                 + offset[np.searchsorted(groups, group_of_row)])
        d = {c: table.column(c).to_numpy()[local] for c in columns}
        for j, l2 in enumerate(ids[hit]):
            out[str(int(l2))] = {n: _value(d, n, j) for n in names}
        return out

    def vertex_l2(self, nucleus: int) -> np.ndarray | None:
        """Level-2 id of every skeleton vertex of a covered cell (None when not covered)."""
        if not self.covered(nucleus):
            return None
        table = pq.read_table(self._path(layout.LEVEL2_VERTICES_PARQUET),
                              columns=["node", "l2_id"],
                              filters=[("nucleus_id", "=", int(nucleus))])
        node = table.column(0).to_numpy()
        return table.column(1).to_numpy()[np.argsort(node, kind="stable")]


_COLUMNS = {
    "rep_coord_nm": [f"rep_coord_{a}" for a in "xyz"],
    "pca": [f"pca_{k}_{a}" for k in range(3) for a in "xyz"],
    "pca_val": [f"pca_val_{k}" for k in range(3)],
    "chunk_intersect_count": [f"chunk_intersect_count_{k}" for k in range(6)],
    **{n: [n] for n in ("area_nm2", "max_dt_nm", "mean_dt_nm", "size_nm3")},
}
"""The nodes.parquet columns of each attribute."""


def _value(d: dict, name: str, i: int):
    """One attribute of row ``i`` in the shape the real cache returns."""
    if name == "rep_coord_nm":
        return [float(d[f"rep_coord_{a}"][i]) for a in "xyz"]
    if name == "pca":
        return [[float(d[f"pca_{k}_{a}"][i]) for a in "xyz"] for k in range(3)]
    if name == "pca_val":
        return [float(d[f"pca_val_{k}"][i]) for k in range(3)]
    if name == "chunk_intersect_count":
        c = [int(d[f"chunk_intersect_count_{k}"][i]) for k in range(6)]
        return [c[:3], c[3:]]
    return float(d[name][i])


def level2_store(ds: Datastack) -> Level2Store:
    """The (lazily created) Level2Store of a datastack."""
    return ds.attached("level2", lambda: Level2Store(ds))


def level2_skeleton(ds: Datastack, sk):
    """The skeleton at level-2 resolution (what skeleton version 4 serves): one vertex per
    level-2 node at its ``rep_coord_nm``, edges where the cell's skeleton crosses between
    nodes, the mean radius of the node's vertices and the compartment of its vertex nearest
    the soma. Returns ``(skeleton, lvl2_ids)``, or ``(sk, None)`` for a cell without
    level-2 data."""
    from offline_cave.server.data.artefacts import Skeleton

    store = level2_store(ds)
    vl2 = store.vertex_l2(sk.nucleus_id)
    if vl2 is None or len(vl2) != len(sk.parent):
        return sk, None
    ids, first, group = np.unique(vl2, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # nodes in skeleton order: the soma's first
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.arange(len(ids))
    g = rank[group]
    child = np.flatnonzero(sk.parent >= 0)
    cut = child[g[child] != g[sk.parent[child]]]
    parent = np.full(len(ids), -1, np.int64)
    parent[g[cut]] = g[sk.parent[cut]]
    counts = np.bincount(g, minlength=len(ids))
    radius = np.bincount(g, weights=sk.radius, minlength=len(ids)) / counts
    lvl2 = ids[order]
    attrs = store.attributes(lvl2.tolist(), ["rep_coord_nm"])
    verts = np.array([attrs[str(int(i))]["rep_coord_nm"] for i in lvl2], dtype=np.float64)
    return Skeleton(nucleus_id=sk.nucleus_id, vertices=verts, parent=parent, radius=radius,
                    compartment=sk.compartment[first[order]]), lvl2
