"""The chunkedgraph model of a sample: supervoxels, pieces, roots over time, edit lineage.

A *piece* is the unit proofreading edits move; a supervoxel belongs to one piece forever and a
root is a set of pieces valid in ``[created, expired)`` (unix seconds). So the root of a
supervoxel at time ``t`` is the root that holds its piece and is valid at ``t``.

The small tables (roots, lineage) are held in memory as sorted numpy arrays, loaded on first
use; the large ones (pieces, root_pieces) are only ever read through DuckDB with filter
pushdown.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from offline_cave.contract import layout
from offline_cave.server.data.db import Database
from offline_cave.server.data.query import qstring


def sql_float(value: float) -> str:
    """A DOUBLE literal (handles +-inf)."""
    if math.isinf(value):
        return "'Infinity'::DOUBLE" if value > 0 else "'-Infinity'::DOUBLE"
    if math.isnan(value):
        return "'NaN'::DOUBLE"
    return repr(float(value))


class SegmentStore:
    """Chunkedgraph queries over ``segments/*.parquet`` of one datastack."""

    def __init__(self, ds_dir: Path, db: Database, info: dict) -> None:
        self.db = db
        self.info = info  # the datastack's datastack.json
        self._lock = threading.Lock()
        self._loaded = False
        self._pieces: tuple[np.ndarray, ...] | None = None
        self._leaves: tuple[np.ndarray, ...] | None = None
        self.pieces_path = ds_dir / layout.PIECES_PARQUET
        self.roots_path = ds_dir / layout.ROOTS_PARQUET
        self.root_pieces_path = ds_dir / layout.ROOT_PIECES_PARQUET
        self.lineage_path = ds_dir / layout.LINEAGE_PARQUET

    # ---- lazy in-memory indexes
    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            roots = pq.read_table(self.roots_path).to_pydict() if self.roots_path.exists() else {}
            ids = np.asarray(roots.get("root_id", []), dtype=np.int64)
            order = np.argsort(ids, kind="stable")
            self.root_ids = ids[order]
            self.created = np.asarray(roots.get("created", []), dtype=np.float64)[order]
            self.expired = np.asarray(roots.get("expired", []), dtype=np.float64)[order]
            self.operation = np.asarray(roots.get("operation_id", []), dtype=np.int64)[order]
            self.nucleus = np.asarray(roots.get("nucleus_id", []), dtype=np.int64)[order]
            self.children: dict[int, list[int]] = defaultdict(list)
            self.parents: dict[int, list[int]] = defaultdict(list)
            if self.lineage_path.exists():
                lin = pq.read_table(self.lineage_path).to_pydict()
                for p, c in zip(lin["parent_root_id"], lin["child_root_id"], strict=True):
                    self.children[int(p)].append(int(c))
                    self.parents[int(c)].append(int(p))
            self._loaded = True

    def _index(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``ids`` in the root arrays and a mask of which exist."""
        self._load()
        ids = np.asarray(ids, dtype=np.int64)
        if len(self.root_ids) == 0:
            return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
        pos = np.searchsorted(self.root_ids, ids)
        pos = np.clip(pos, 0, len(self.root_ids) - 1)
        return pos, self.root_ids[pos] == ids

    # ---- root facts
    def exists(self, ids: np.ndarray) -> np.ndarray:
        return self._index(ids)[1]

    def created_of(self, ids: np.ndarray) -> np.ndarray:
        pos, ok = self._index(ids)
        return np.where(ok, self.created[pos], np.nan)

    def expired_of(self, ids: np.ndarray) -> np.ndarray:
        pos, ok = self._index(ids)
        return np.where(ok, self.expired[pos], np.nan)

    def nucleus_of(self, root: int) -> int:
        pos, ok = self._index(np.array([root]))
        return int(self.nucleus[pos[0]]) if ok[0] else 0

    def operation_of(self, root: int) -> int:
        pos, ok = self._index(np.array([root]))
        return int(self.operation[pos[0]]) if ok[0] else 0

    def is_latest(self, ids: np.ndarray, t: float | None) -> np.ndarray:
        """Roots that are current at time ``t`` (now if None): created by then, no successor yet.

        As the PyChunkedGraph: a root created after ``t`` did not exist then, so it is not a
        latest root at ``t``.
        """
        t = time.time() if t is None else t
        return self.valid_at(ids, t)

    def valid_at(self, ids: np.ndarray, t: float) -> np.ndarray:
        pos, ok = self._index(ids)
        return ok & (self.created[pos] <= t) & (t < self.expired[pos])

    def oldest_timestamp(self) -> float:
        self._load()
        return float(self.created.min()) if len(self.created) else 0.0

    def delta_roots(self, t_past: float, t_future: float) -> tuple[list[int], list[int]]:
        self._load()
        old = self.root_ids[(self.expired > t_past) & (self.expired <= t_future)]
        new = self.root_ids[(self.created > t_past) & (self.created <= t_future)]
        return old.tolist(), new.tolist()

    # ---- SQL pieces
    def changed_roots(self, t_from: float, t_to: float) -> np.ndarray:
        """Roots valid at ``t_from`` that are no longer (or not yet) valid at ``t_to``."""
        self._load()
        at_from = (self.created <= t_from) & (t_from < self.expired)
        at_to = (self.created <= t_to) & (t_to < self.expired)
        return self.root_ids[at_from & ~at_to]

    def changed_svmap_sql(self, changed: np.ndarray, t: float) -> str:
        """SELECT supervoxel_id, root_id at ``t`` for the supervoxels of the ``changed`` roots.

        Only rows whose stored root changed need a lookup, which keeps the join small.
        """
        tt = sql_float(t)
        ids = ", ".join(str(int(r)) for r in changed)
        rp = f"read_parquet({qstring(str(self.root_pieces_path))})"
        return (f"SELECT p.supervoxel_id, max(r.root_id) AS root_id FROM {rp} rp0 "
                f"JOIN read_parquet({qstring(str(self.pieces_path))}) p ON p.piece_id = rp0.piece_id "
                f"JOIN {rp} rp ON rp.piece_id = p.piece_id "
                f"JOIN read_parquet({qstring(str(self.roots_path))}) r ON r.root_id = rp.root_id "
                f"WHERE rp0.root_id IN ({ids}) AND r.created <= {tt} AND {tt} < r.expired "
                f"GROUP BY p.supervoxel_id")

    def _piece_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Supervoxel -> piece (sorted by supervoxel) and piece -> roots (sorted by piece), in
        memory: ~16 bytes a supervoxel (120 MB for the default minnie65 sample), read once on
        the first root lookup. A lookup is then a binary search instead of a scan of the
        pieces file (1 s for 500 supervoxels, which a classroom of clients queues behind)."""
        with self._lock:
            if self._pieces is None:
                t = pq.read_table(self.pieces_path, columns=["supervoxel_id", "piece_id"])
                sv = t.column(0).to_numpy()
                piece = t.column(1).to_numpy()
                if len(sv) > 1 and not bool(np.all(sv[1:] >= sv[:-1])):
                    order = np.argsort(sv, kind="stable")
                    sv, piece = sv[order], piece[order]
                rp = pq.read_table(self.root_pieces_path, columns=["piece_id", "root_id"])
                rp_piece = rp.column(0).to_numpy()
                order = np.argsort(rp_piece, kind="stable")
                self._pieces = (sv, piece, rp_piece[order], rp.column(1).to_numpy()[order])
            return self._pieces

    def roots_of(self, svids: np.ndarray, t: float) -> np.ndarray:
        """Root of every supervoxel at ``t`` (0 where unknown or 0): the newest-id root valid at
        ``t`` among the roots that hold the supervoxel's piece."""
        svids = np.asarray(svids, dtype=np.int64)
        out = np.zeros(len(svids), dtype=np.int64)
        if len(svids) == 0:
            return out
        sv, piece, rp_piece, rp_root = self._piece_index()
        if len(sv) == 0 or len(rp_piece) == 0:
            return out
        pos = np.clip(np.searchsorted(sv, svids), 0, len(sv) - 1)
        found = sv[pos] == svids
        return self.roots_of_pieces(piece[pos], t, found)

    def roots_of_pieces(self, pieces: np.ndarray, t: float,
                        found: np.ndarray | None = None) -> np.ndarray:
        """Root of every piece at ``t`` (0 where ``found`` is False or there is none)."""
        pieces = np.asarray(pieces, dtype=np.int64)
        out = np.zeros(len(pieces), dtype=np.int64)
        found = np.ones(len(pieces), bool) if found is None else found
        _, _, rp_piece, rp_root = self._piece_index()
        if len(pieces) == 0 or len(rp_piece) == 0:
            return out
        lo = np.searchsorted(rp_piece, pieces, "left")
        hi = np.searchsorted(rp_piece, pieces, "right")
        counts = np.where(found, hi - lo, 0)
        total = int(counts.sum())
        if total == 0:
            return out
        query = np.repeat(np.arange(len(pieces)), counts)
        first = np.repeat(lo, counts)
        step = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        cand = rp_root[first + step]
        ok = self.valid_at(cand, t)
        np.maximum.at(out, query[ok], cand[ok])
        return out

    def resolve_roots(self, ids: np.ndarray, t: float) -> np.ndarray:
        """Root at ``t`` of each id: supervoxels are looked up, roots valid at ``t`` map to
        themselves, anything else (0, unknown ids) gives 0."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros(len(ids), dtype=np.int64)
        if len(ids) == 0:
            return out
        layers = (ids.astype(np.uint64) >> np.uint64(layout.ROOT_LAYER_SHIFT)).astype(np.int64)
        is_root = layers == layout.N_LAYERS
        if is_root.any():
            root_ids = ids[is_root]
            out[is_root] = np.where(self.valid_at(root_ids, t), root_ids, 0)
        is_sv = layers == 1
        if is_sv.any():
            out[is_sv] = self.roots_of(ids[is_sv], t)
        return out

    def _leaf_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Root -> pieces (sorted by root) and piece -> supervoxels (sorted by piece, then
        supervoxel), from the arrays of :meth:`_piece_index` (~8 bytes a supervoxel more)."""
        sv, piece, rp_piece, rp_root = self._piece_index()
        with self._lock:
            if self._leaves is None:
                by_root = np.lexsort((rp_piece, rp_root))
                by_piece = np.lexsort((sv, piece))  # supervoxels are sorted within a piece
                self._leaves = (rp_root[by_root], rp_piece[by_root], piece[by_piece],
                                sv[by_piece])
            return self._leaves

    def pieces_of(self, root: int) -> np.ndarray:
        """The pieces of one root (sorted; empty for an unknown id)."""
        root_sorted, root_piece, _, _ = self._leaf_index()
        lo = np.searchsorted(root_sorted, root, "left")
        hi = np.searchsorted(root_sorted, root, "right")
        return np.sort(root_piece[lo:hi])

    def leaves(self, roots: list[int], bounds: tuple | None = None) -> dict[int, np.ndarray]:
        """Supervoxels of each root (sorted); ``bounds`` ((x0,x1),(y0,y1),(z0,z1)) in base
        voxels. Binary searches over in-memory indexes (a scan of the pieces file per call
        took seconds under a classroom's load)."""
        out = {int(r): np.zeros(0, np.int64) for r in roots}  # de-duplicated, in order
        if not roots:
            return out
        root_sorted, root_piece, piece_sorted, piece_sv = self._leaf_index()

        def ranges(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            lo = np.searchsorted(keys, wanted, "left")
            return lo, np.searchsorted(keys, wanted, "right") - lo

        def expand(lo: np.ndarray, counts: np.ndarray) -> np.ndarray:
            total = int(counts.sum())
            return (np.repeat(lo, counts) + np.arange(total)
                    - np.repeat(np.cumsum(counts) - counts, counts))

        for r in out:
            lo, n = ranges(root_sorted, np.array([r], np.int64))
            pieces = root_piece[expand(lo, n)]
            lo, n = ranges(piece_sorted, pieces)
            sv = np.sort(piece_sv[expand(lo, n)])
            if bounds is not None and len(sv):
                sv = sv[self._in_bounds(sv, bounds)]
            out[r] = sv
        return out

    def _in_bounds(self, sv: np.ndarray, bounds: tuple) -> np.ndarray:
        """Supervoxels whose chunk overlaps ``bounds`` (base voxels, half-open)."""
        info = self.info
        offset = np.asarray(info.get("chunk_offset_vx") or [0, 0, 0], dtype=np.int64)
        chunk = np.asarray(info.get("chunk_size") or [256, 256, 512], dtype=np.int64)
        coords = [(sv >> 46) & 0x3FF, (sv >> 36) & 0x3FF, (sv >> 26) & 0x3FF]
        mask = np.ones(len(sv), bool)
        for axis in range(3):
            lo = offset[axis] + coords[axis] * chunk[axis]
            hi = lo + chunk[axis]
            b0, b1 = bounds[axis]
            mask &= (hi > b0) & (lo < b1)
        return mask

    def overlapping_roots(self, roots: list[int], t: float) -> dict[int, list[int]]:
        """For each root, the roots valid at ``t`` that share a piece with it."""
        out: dict[int, list[int]] = {int(r): [] for r in roots}
        if not roots:
            return out
        q = pa.table({"root_id": pa.array(np.asarray(roots, dtype=np.int64))})
        tt = sql_float(t)
        rp = f"read_parquet({qstring(str(self.root_pieces_path))})"
        sql = (f"SELECT DISTINCT a.root_id AS src, b.root_id AS dst FROM q "
               f"JOIN {rp} a ON a.root_id = q.root_id JOIN {rp} b ON a.piece_id = b.piece_id "
               f"JOIN read_parquet({qstring(str(self.roots_path))}) r ON r.root_id = b.root_id "
               f"WHERE r.created <= {tt} AND {tt} < r.expired ORDER BY src, dst")
        res = self.db.arrow(sql, register={"q": q}).to_pydict()
        for s, d in zip(res["src"], res["dst"], strict=True):
            out[int(s)].append(int(d))
        return out

    # ---- lineage
    def _walk(self, starts: list[int], step: dict[int, list[int]], *,
              follow: Callable[[int], bool] | None = None,
              stop: Callable[[int], bool] | None = None,
              seen: set[int] | None = None) -> tuple[set[tuple[int, int]], set[int]]:
        """The one walk of the operation graph (past and future ids, lineage graphs).

        Depth first from ``starts`` along ``step`` (:attr:`parents` to go back in time,
        :attr:`children` to go forward). A node for which ``stop`` holds is collected and not
        expanded; the edge to a neighbour is taken only if ``follow`` holds for it. Every node
        is expanded at most once: ``seen`` (updated in place, so two walks can share it)
        holds the nodes already reached. Returns the edges taken, as ``(node, neighbour)``,
        and the stopped nodes.
        """
        self._load()
        seen = set() if seen is None else seen
        seen.update(starts)
        edges: set[tuple[int, int]] = set()
        stopped: set[int] = set()
        stack = list(starts)
        while stack:
            node = stack.pop()
            if stop is not None and stop(node):
                stopped.add(node)
                continue
            for nxt in step.get(node, []):
                if follow is not None and not follow(nxt):
                    continue
                edges.add((node, nxt))
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return edges, stopped

    def lineage_graph(self, roots: list[int], t_past: float | None,
                      t_future: float | None) -> dict:
        """networkx node-link JSON of the edit history around ``roots`` within the window.

        Ancestors count while they were still alive after ``t_past``, descendants once they
        were created by ``t_future``; both walks share one set of reached nodes.
        """
        self._load()
        t_past = -math.inf if t_past is None else t_past
        t_future = math.inf if t_future is None else t_future
        starts = [int(r) for r in roots if self.exists(np.array([r]))[0]]
        nodes: set[int] = set(starts)
        back, _ = self._walk(starts, self.parents, seen=nodes,
                             follow=lambda p: self.expired_of(np.array([p]))[0] > t_past)
        fwd, _ = self._walk(starts, self.children, seen=nodes,
                            follow=lambda c: self.created_of(np.array([c]))[0] <= t_future)
        links = {(p, node) for node, p in back} | fwd
        ordered = sorted(nodes)
        created = self.created_of(np.array(ordered, dtype=np.int64)) if ordered else []
        node_list = []
        for n, c in zip(ordered, created, strict=True):
            op = self.operation_of(n)
            node_list.append({"id": n, "timestamp": float(c),
                              "operation_id": op if op else None})
        return {"directed": True, "multigraph": False, "graph": {}, "nodes": node_list,
                "links": [{"source": s, "target": t} for s, t in sorted(links)]}

    def _valid_relatives(self, roots: list[int], step: dict[int, list[int]],
                         t: float) -> dict[int, list[int]]:
        """For each root, the nearest roots along ``step`` (or itself) valid at ``t``."""
        out: dict[int, list[int]] = {}
        for r in roots:
            _, found = self._walk([int(r)], step,
                                  stop=lambda node: self.valid_at(np.array([node]), t)[0])
            out[int(r)] = sorted(found)
        return out

    def past_ids(self, roots: list[int], t_past: float) -> dict[int, list[int]]:
        """For each root, its ancestors (or itself) that were valid at ``t_past``."""
        self._load()
        return self._valid_relatives(roots, self.parents, t_past)

    def future_ids(self, roots: list[int], t_future: float) -> dict[int, list[int]]:
        """For each root, its descendants (or itself) that are valid at ``t_future``."""
        self._load()
        return self._valid_relatives(roots, self.children, t_future)
