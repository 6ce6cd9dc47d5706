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
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from offline_cave.contract import layout
from offline_cave.server.data.db import Database
from offline_cave.server.data.errors import InvalidQuery, MissingArtefact, MissingRoot, shown
from offline_cave.server.data.query import qstring

MAX_LOG_ROOTS = 10_000
"""Most roots one change-log request may ask for (each is a walk of its history and a root
lookup of the supervoxels its edits touched)."""


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
        # one lock per index, and each checked before its lock is taken: once built, an index
        # is read with no lock at all, and building one never holds up users of another
        # (under a classroom's load every skeleton and mesh request queued behind the
        # seconds-long build of the leaf index on a shared lock)
        self._lock = threading.Lock()
        self._pieces_lock = threading.Lock()
        self._leaves_lock = threading.Lock()
        self._loaded = False
        self._pieces: tuple[np.ndarray, ...] | None = None
        self._leaves: tuple[np.ndarray, ...] | None = None
        self.pieces_path = ds_dir / layout.PIECES_PARQUET
        self.roots_path = ds_dir / layout.ROOTS_PARQUET
        self.root_pieces_path = ds_dir / layout.ROOT_PIECES_PARQUET
        self.lineage_path = ds_dir / layout.LINEAGE_PARQUET
        self.operations_path = ds_dir / layout.OPERATIONS_PARQUET
        self.users_path = ds_dir / layout.USERS_PARQUET
        self._ops: dict[int, dict] | None = None
        self._users: dict[int, tuple[str, str]] = {}

    # ---- lazy in-memory indexes
    def warm(self) -> None:
        """Build every in-memory index now (the server does it at start, in the background,
        so the first clients do not wait seconds for it)."""
        self._load()
        self._leaf_index()

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            table = pq.read_table(self.roots_path) if self.roots_path.exists() else None

            def column(name: str, dtype: type) -> np.ndarray:
                if table is None:
                    return np.zeros(0, dtype)
                return np.asarray(table.column(name).to_numpy(), dtype=dtype)

            ids = column("root_id", np.int64)
            order = np.argsort(ids, kind="stable")
            self.root_ids = ids[order]
            self.created = column("created", np.float64)[order]
            self.expired = column("expired", np.float64)[order]
            self.operation = column("operation_id", np.int64)[order]
            self.nucleus = column("nucleus_id", np.int64)[order]
            self.children: dict[int, list[int]] = defaultdict(list)
            self.parents: dict[int, list[int]] = defaultdict(list)
            self.retired_by: dict[int, int] = {}  # root -> the operation that retired it
            self.op_parents: dict[int, list[int]] = defaultdict(list)  # operation -> roots
            self.op_children: dict[int, list[int]] = defaultdict(list)
            if self.lineage_path.exists():
                lin = pq.read_table(self.lineage_path).to_pydict()
                for p, c, op in zip(lin["parent_root_id"], lin["child_root_id"],
                                    lin["operation_id"], strict=True):
                    p, c, op = int(p), int(c), int(op)
                    self.children[p].append(c)
                    self.parents[c].append(p)
                    self.retired_by[p] = op
                    if p not in self.op_parents[op]:
                        self.op_parents[op].append(p)
                    if c not in self.op_children[op]:
                        self.op_children[op].append(c)
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
        """The last operation that touched a root, as the PyChunkedGraph's lineage nodes
        carry it: the one that retired it, else the one that created it (0: none)."""
        self._load()
        if int(root) in self.retired_by:
            return self.retired_by[int(root)]
        pos, ok = self._index(np.array([root]))
        return int(self.operation[pos[0]]) if ok[0] else 0

    def require_roots(self, ids: list[int]) -> None:
        """InvalidQuery for an id that is not of the root layer, MissingRoot for a root id
        the chunkedgraph never held."""
        ids_arr = np.asarray(ids, dtype=np.int64)
        layers = (ids_arr.astype(np.uint64) >> np.uint64(layout.ROOT_LAYER_SHIFT)).astype(int)
        not_root = ids_arr[layers != layout.N_LAYERS]
        if len(not_root):
            raise InvalidQuery(
                f"not root ids (a root id has layer {layout.N_LAYERS} in its top byte): "
                f"{shown(', '.join(str(i) for i in not_root[:10]))}")
        missing = ids_arr[~self.exists(ids_arr)]
        if len(missing):
            raise MissingRoot(f"root id(s) not found in the chunkedgraph: "
                              f"{shown(', '.join(str(i) for i in missing[:10]))}")

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
        if self._pieces is not None:
            return self._pieces
        with self._pieces_lock:
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
        if self._leaves is not None:
            return self._leaves
        sv, piece, rp_piece, rp_root = self._piece_index()
        with self._leaves_lock:
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

    # ---- operation log
    def _operations(self) -> dict[int, dict]:
        """operation id -> {timestamp, user_id, is_merge, sources, sinks, source_coords,
        sink_coords} from ``segments/operations.parquet`` (one row per edge), read once."""
        with self._lock:
            if self._ops is None:
                if not self.operations_path.exists():
                    raise MissingArtefact(
                        "this sample has no operation log (segments/operations.parquet); "
                        "regenerate it with this version of offline_cave")
                rows = pq.read_table(self.operations_path).to_pydict()
                ops: dict[int, dict] = {}
                for i, op in enumerate(rows["operation_id"]):
                    rec = ops.setdefault(int(op), {
                        "timestamp": float(rows["timestamp"][i]),
                        "user_id": int(rows["user_id"][i]),
                        "is_merge": bool(rows["is_merge"][i]),
                        "edges": [], "source_coords": [], "sink_coords": []})
                    src, snk = int(rows["source_supervoxel_id"][i]), int(rows["sink_supervoxel_id"][i])
                    rec["edges"].append((src, snk))
                    rec["source_coords"].append([int(rows[f"source_{a}"][i]) for a in "xyz"])
                    rec["sink_coords"].append([int(rows[f"sink_{a}"][i]) for a in "xyz"])
                if self.users_path.exists():
                    users = pq.read_table(self.users_path).to_pydict()
                    self._users = {int(u): (str(n), str(a)) for u, n, a in zip(
                        users["user_id"], users["user_name"], users["user_affiliation"],
                        strict=True)}
                self._ops = ops
            return self._ops

    def user_info(self, user_id: int) -> tuple[str, str]:
        """(name, affiliation) of a user of the log ("unknown" as the real service)."""
        self._operations()
        return self._users.get(int(user_id), ("unknown", "unknown"))

    def operation_details(self, operation_ids: list[int]) -> dict[int, dict]:
        """The log entry of each operation as the PyChunkedGraph stores it: user, roots it
        created, the points and supervoxels the user placed, the edges added or removed."""
        ops = self._operations()
        self._load()
        missing = [o for o in operation_ids if o not in ops]
        if missing:
            raise InvalidQuery(f"operation id(s) not in the log of this chunkedgraph: "
                               f"{shown(', '.join(str(o) for o in missing[:10]))}")
        out: dict[int, dict] = {}
        for op in dict.fromkeys(operation_ids):
            rec = ops[op]
            when = str(datetime.fromtimestamp(rec["timestamp"], UTC))
            edges = [[s, t] for s, t in rec["edges"] if s and t]
            sources = list(dict.fromkeys(s for s, _ in rec["edges"] if s))
            source_coords = list({tuple(c): c for c in rec["source_coords"]}.values())
            details = {
                "operation_id": op,
                "operation_status": 0,
                "operation_ts": when,
                "roots": sorted(self.op_children.get(op, [])),
                "sink_coords": rec["sink_coords"], "sink_ids": [t for _, t in rec["edges"] if t],
                "source_coords": source_coords, "source_ids": sources,
                "timestamp": when, "user": str(rec["user_id"]),
            }
            if rec["is_merge"]:
                details["added_edges"] = edges
            else:
                details["removed_edges"] = edges
                details["bb_offset"] = [240, 240, 24]
            out[op] = details
        return out

    def merge_log(self, root: int) -> dict:
        """The PyChunkedGraph's ``merge_log`` of a root (``SegmentHistory.merge_log`` with
        ``correct_for_wrong_coord_type=False``, as its route calls it): every merge among the
        operations that retired an ancestor of ``root``, by operation id, with the edge it
        added and ``[[source coord], [sink coord]]``, the points the user placed, in voxels
        of the base resolution (MeshParty's ``add_link_edges`` multiplies by it).

        A real merge joins two points (one edge, one coordinate each); many of the sample's
        merges join one piece to several, so each of their edges is listed as a merge of its
        own: ``merge_edge_coords`` then stays a regular (merges x 2 x 1 x 3) array, which is
        what MeshParty reads."""
        ops = self._operations()
        self._load()
        edges, _ = self._walk([int(root)], self.parents)
        ancestors = {p for _, p in edges} - {int(root)}
        op_ids = sorted({self.retired_by[a] for a in ancestors if a in self.retired_by})
        merge_edges, merge_coords = [], []
        for op in op_ids:
            rec = ops.get(op)
            if rec is None or not rec["is_merge"]:
                continue
            for (src, snk), c_src, c_snk in zip(rec["edges"], rec["source_coords"],
                                                rec["sink_coords"], strict=True):
                if src and snk:
                    merge_edges.append([[src, snk]])
                    merge_coords.append([[c_src], [c_snk]])
        return {"merge_edges": merge_edges, "merge_edge_coords": merge_coords}

    def _log_rows(self, root: int) -> list[dict]:
        """Every operation in the history of ``root``, oldest id first, with the columns of
        the PyChunkedGraph's tabular change log (``SegmentHistory``): the roots each one
        retired and the one of its results that leads to ``root``; ``in_neuron`` and
        ``is_relevant`` from the roots of the supervoxels the user placed, at the root's
        creation and before any edit."""
        ops = self._operations()
        edges, _ = self._walk([root], self.parents)
        lineage_nodes = {root} | {p for _, p in edges}
        ancestors = lineage_nodes - {root}
        op_ids = sorted({self.retired_by[a] for a in ancestors if a in self.retired_by})
        op_ids = [op for op in op_ids if op in ops]
        if not op_ids:
            return []
        svs = np.array(sorted({sv for op in op_ids for e in ops[op]["edges"] for sv in e if sv}),
                       dtype=np.int64)
        t_root = float(self.created_of(np.array([root]))[0])
        t_orig = min(rec["timestamp"] for rec in ops.values()) - 1e-3
        now = dict(zip(svs.tolist(), self.resolve_roots(svs, t_root).tolist(), strict=True))
        orig = dict(zip(svs.tolist(), self.resolve_roots(svs, t_orig).tolist(), strict=True))
        rows = []
        for op in op_ids:
            rec = ops[op]
            placed = [sv for e in rec["edges"] for sv in e if sv]
            current = [now[sv] for sv in placed]
            if rec["is_merge"]:
                relevant = len(set(orig[sv] for sv in placed)) != 1
                in_neuron = all(r == root for r in current)
            else:
                relevant = len(set(current)) != 1
                in_neuron = any(r == root for r in current)
            rows.append({
                "operation_id": op,
                "timestamp": int(round(rec["timestamp"] * 1000)),  # ms, as pandas' to_json
                "user_id": str(rec["user_id"]),  # the log stores the user as a string
                "before_root_ids": sorted(self.op_parents.get(op, [])),
                "after_root_ids": sorted(c for c in self.op_children.get(op, [])
                                         if c in lineage_nodes),
                "is_merge": rec["is_merge"], "in_neuron": in_neuron, "is_relevant": relevant,
            })
        return rows

    def tabular_change_logs(self, roots: list[int], filtered: bool) -> dict[int, dict]:
        """Per root, its change log as pandas' ``DataFrame.to_json()`` shape (column -> index
        label -> value), as the PyChunkedGraph sends it: with ``filtered`` only the edits
        in the neuron and relevant to it, without those two columns; with the users' names
        and affiliations unless no root has any edit."""
        self._load()
        columns = ["operation_id", "timestamp", "user_id", "before_root_ids", "after_root_ids",
                   "is_merge"] + ([] if filtered else ["in_neuron", "is_relevant"])
        logs: dict[int, list[tuple[int, dict]]] = {}
        for root in dict.fromkeys(int(r) for r in roots):
            rows = list(enumerate(self._log_rows(root)))
            if filtered:
                rows = [(i, r) for i, r in rows if r["in_neuron"] and r["is_relevant"]]
            logs[root] = rows
        any_user = any(rows for rows in logs.values())
        if any_user:
            columns += ["user_name", "user_affiliation"]
        out: dict[int, dict] = {}
        for root, rows in logs.items():
            table: dict[str, dict] = {c: {} for c in columns}
            for i, r in rows:
                name, affiliation = self.user_info(int(r["user_id"]))
                r = {**r, "user_name": name, "user_affiliation": affiliation}
                for c in columns:
                    table[c][str(i)] = r[c]
            out[root] = table
        return out

    def change_log_summary(self, root: int, filtered: bool) -> dict:
        """The PyChunkedGraph's ``change_log`` of one root: edit counts in total and per
        user, the operation ids and the past root ids of its (filtered) tabular log."""
        rows = self._log_rows(int(root))
        if filtered:
            rows = [r for r in rows if r["in_neuron"] and r["is_relevant"]]
        users: dict[str, dict[str, int]] = {}
        for r in rows:
            u = users.setdefault(r["user_id"], {"n_splits": 0, "n_mergers": 0})
            u["n_mergers" if r["is_merge"] else "n_splits"] += 1
        n_mergers = sum(1 for r in rows if r["is_merge"])
        return {"n_splits": len(rows) - n_mergers, "n_mergers": n_mergers,
                "user_info": dict(sorted(users.items())),
                "operations_ids": [r["operation_id"] for r in rows],
                "past_ids": [p for r in rows for p in r["before_root_ids"]]}

    def _valid_relatives(self, roots: list[int], step: dict[int, list[int]],
                         t: float) -> dict[int, list[int]]:
        """For each root, the nearest roots along ``step`` (or itself) valid at ``t``."""
        out: dict[int, list[int]] = {}
        for r in roots:
            _, found = self._walk([int(r)], step,
                                  stop=lambda node: self.valid_at(np.array([node]), t)[0])
            out[int(r)] = sorted(found)
        return out

    def past_ids(self, roots: list[int], t_past: float | None) -> dict[int, list[int]]:
        """For each root, its ancestors (or itself) that were valid at ``t_past``; without
        ``t_past`` its original roots (the ancestors without parents, as the real service's
        default of time 0 gives)."""
        self._load()
        if t_past is None:
            out: dict[int, list[int]] = {}
            for r in roots:
                _, found = self._walk([int(r)], self.parents,
                                      stop=lambda node: not self.parents.get(node))
                out[int(r)] = sorted(found)
            return out
        return self._valid_relatives(roots, self.parents, t_past)

    def future_ids(self, roots: list[int], t_future: float) -> dict[int, list[int]]:
        """For each root, its descendants (or itself) that are valid at ``t_future``."""
        self._load()
        return self._valid_relatives(roots, self.children, t_future)
