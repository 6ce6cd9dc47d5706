"""Per-cell artefacts: skeletons read from parquet and meshes derived from them (cached).

A root maps to a cell through ``segments/roots.parquet`` ``nucleus_id``; the cell's skeleton is
the rows of ``skeletons/skeletons.parquet`` with that ``nucleus_id`` (vertices and radius in
nm, SWC compartment codes). Meshes are generated on first request and written atomically to
``<datastack>/cache/meshes-v<MESH_VERSION>/nucleus_<id>.frag``.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from offline_cave.contract import layout
from offline_cave.server.data.errors import MissingArtefact, MissingRoot
from offline_cave.server.data.mesh import (
    MESH_VERSION,
    encode_legacy,
    is_valid_legacy,
    skeleton_mesh,
)
from offline_cave.server.data.query import qstring
from offline_cave.server.data.store import Datastack

log = logging.getLogger("offline_cave.server")

SERIALISED_BYTES = 64 << 20
"""Memory kept for serialised skeleton responses (gzip JSON, ~30-200 KB a neuron)."""


@dataclass
class Skeleton:
    """One cell skeleton; vertices/radius in nm, ``parent`` -1 at the root (soma)."""

    nucleus_id: int
    vertices: np.ndarray
    parent: np.ndarray
    radius: np.ndarray
    compartment: np.ndarray

    @property
    def edges(self) -> np.ndarray:
        """(child, parent) pairs, the meshparty / skeleton-service convention."""
        idx = np.nonzero(self.parent >= 0)[0]
        return np.stack([idx, self.parent[idx]], axis=1).astype(np.int64)

    @property
    def root(self) -> int:
        roots = np.nonzero(self.parent < 0)[0]
        return int(roots[0]) if len(roots) else 0


def mesh_cache_path(ds_dir: Path, nucleus: int) -> Path:
    """Where the server caches a cell's mesh fragment. The mesh builder's version is part of
    the name: a changed builder never serves a stale cached mesh."""
    return (Path(ds_dir) / layout.CACHE_DIR / f"meshes-v{MESH_VERSION}"
            / f"nucleus_{int(nucleus)}.frag")


class CellStore:
    """Skeleton and mesh access for one datastack, with a small in-memory LRU."""

    def __init__(self, ds: Datastack, cache_size: int = 64) -> None:
        self.ds = ds
        self._lock = threading.Lock()
        self._mesh_locks: dict[int, threading.Lock] = {}
        self._lru: OrderedDict[int, Skeleton] = OrderedDict()
        self._size = cache_size
        self._with_skeleton: set[int] | None = None
        self._serialised: OrderedDict[tuple[int, int, int], bytes] = OrderedDict()
        self._serialised_bytes = 0

    def skeleton_nuclei(self) -> set[int]:
        """Nucleus ids that have a stored skeleton (from skeletons/cells.parquet)."""
        with self._lock:
            if self._with_skeleton is None:
                path = self.ds.dir / layout.SKELETON_CELLS_PARQUET
                if path.exists():
                    ids = pq.read_table(path, columns=["nucleus_id"]).column(0).to_pylist()
                else:
                    sk = self.ds.dir / layout.SKELETONS_PARQUET
                    ids = [] if not sk.exists() else self.ds.db.arrow(
                        f"SELECT DISTINCT nucleus_id FROM read_parquet({qstring(str(sk))})"
                    ).column(0).to_pylist()
                self._with_skeleton = {int(i) for i in ids}
            return self._with_skeleton

    def nucleus_for_root(self, root: int) -> int:
        """The nucleus (with a skeleton) a root carries; a domain error otherwise, saying why."""
        seg = self.ds.segments
        if not seg.exists(np.array([root], np.int64))[0]:
            raise MissingRoot(f"root id {root} does not exist in {self.ds.pcg_table}")
        nucleus = seg.nucleus_of(root)
        if not nucleus:
            raise MissingArtefact(f"root id {root} is a fragment without a nucleus; the offline "
                                  f"sample has skeletons and meshes only for cells with a nucleus")
        if nucleus not in self.skeleton_nuclei():
            raise MissingArtefact(f"root id {root} (nucleus {nucleus}) has no skeleton or mesh in "
                                  f"the offline sample (only neurons are skeletonized)")
        return nucleus

    def skeleton(self, nucleus: int) -> Skeleton:
        with self._lock:
            if nucleus in self._lru:
                self._lru.move_to_end(nucleus)
                return self._lru[nucleus]
        path = self.ds.dir / layout.SKELETONS_PARQUET
        if not path.exists():
            raise MissingArtefact(f"{self.ds.name} sample has no skeletons")
        # the cell's rows from the decoded row groups kept in memory (data/row_groups.py),
        # or from the file when it declines (or the datastack has none)
        groups = getattr(self.ds, "row_groups", None)
        rows = None if groups is None else groups.rows(path, "nucleus_id", [int(nucleus)])
        source = f"read_parquet({qstring(str(path))})" if rows is None else "skeleton_rows"
        table = self.ds.db.arrow(
            f"SELECT node, parent, x, y, z, radius, compartment FROM {source} "
            f"WHERE nucleus_id = {int(nucleus)} ORDER BY node",
            register=None if rows is None else {"skeleton_rows": rows})
        if table.num_rows == 0:
            raise MissingArtefact(
                f"no skeleton for nucleus {nucleus} in the {self.ds.name} sample")
        col = {name: table.column(name).to_numpy() for name in table.column_names}
        node = col["node"].astype(np.int64)
        # nodes are 0..n-1 per the layout; re-indexed defensively (one array operation: a
        # Python loop over the nodes cost more than the query under a classroom's load)
        order = np.argsort(node, kind="stable")
        raw_parent = col["parent"].astype(np.int64)
        pos = np.clip(np.searchsorted(node, raw_parent, sorter=order), 0, len(node) - 1)
        found = node[order[pos]] == raw_parent
        parent = np.where(found, order[pos], -1).astype(np.int64)
        xyz = np.stack([col["x"], col["y"], col["z"]], axis=1).astype(np.float64)
        sk = Skeleton(nucleus_id=int(nucleus), vertices=xyz,
                      parent=parent, radius=col["radius"].astype(np.float64),
                      compartment=col["compartment"].astype(np.int64))
        with self._lock:
            self._lru[nucleus] = sk
            while len(self._lru) > self._size:
                self._lru.popitem(last=False)
        return sk

    # ---- output formats
    def flatdict(self, root: int, sk: Skeleton, skeleton_version: int,
                 lvl2_ids: np.ndarray | None = None) -> dict:
        r = sk.root
        soma = sk.vertices[r]
        out = {
            "meta": {"root_id": int(root), "nucleus_id": sk.nucleus_id,
                     "datastack": self.ds.name, "skeleton_version": skeleton_version,
                     "soma_pt_x": float(soma[0]), "soma_pt_y": float(soma[1]),
                     "soma_pt_z": float(soma[2]), "soma_radius": float(sk.radius[r]),
                     "space": "nm", "source": "offline_cave synthetic sample"},
            "root": r,
            "vertices": sk.vertices.tolist(),
            "edges": sk.edges.tolist(),
            "radius": sk.radius.tolist(),
            "compartment": sk.compartment.tolist(),
            "mesh_to_skel_map": list(range(len(sk.vertices))),
        }
        if lvl2_ids is not None:  # one vertex per level-2 node: mesh_to_skel_map is 1:1
            out["lvl2_ids"] = [int(i) for i in lvl2_ids]
        return out

    @staticmethod
    def swc(sk: Skeleton) -> str:
        """SWC text: ``id type x y z radius parent`` space separated, um, no header."""
        v = sk.vertices / 1000.0
        r = sk.radius / 1000.0
        lines = [f"{i} {int(sk.compartment[i])} {v[i, 0]:.4f} {v[i, 1]:.4f} {v[i, 2]:.4f} "
                 f"{r[i]:.4f} {int(sk.parent[i])}" for i in range(len(v))]
        return "\n".join(lines) + "\n"

    def _serialised_get(self, key: tuple[int, int, int]) -> bytes | None:
        with self._lock:
            data = self._serialised.get(key)
            if data is not None:
                self._serialised.move_to_end(key)
            return data

    def cached_flatdict_gz(self, root: int, skeleton_version: int, build) -> bytes:
        """:meth:`flatdict_gz` of ``root``, looked up *before* the skeleton is built:
        ``build()`` returns ``(skeleton, lvl2_ids)`` and runs only on a miss. A class asks for
        the same cells again and again, and building a level-2 skeleton (version 4, the
        client's default) reads the level-2 attributes each time."""
        key = (int(root), self.nucleus_for_root(root), int(skeleton_version))
        data = self._serialised_get(key)
        if data is not None:
            return data
        sk, lvl2_ids = build()
        return self.flatdict_gz(root, sk, skeleton_version, lvl2_ids)

    def flatdict_gz(self, root: int, sk: Skeleton, skeleton_version: int,
                    lvl2_ids: np.ndarray | None = None) -> bytes:
        """gzip(JSON) of :meth:`flatdict`; the bytes of the most recently served roots are
        kept (up to ``SERIALISED_BYTES`` in all), as a class asks for the same example cells.
        ``lvl2_ids`` are a function of the root and version, so the key does not need them."""
        key = (int(root), sk.nucleus_id, int(skeleton_version))
        data = self._serialised_get(key)
        if data is not None:
            return data
        data = gzip.compress(
            json.dumps(self.flatdict(root, sk, skeleton_version, lvl2_ids)).encode(),
            compresslevel=5)
        with self._lock:
            if key not in self._serialised and len(data) <= SERIALISED_BYTES:
                self._serialised[key] = data
                self._serialised_bytes += len(data)
                while self._serialised_bytes > SERIALISED_BYTES:
                    _, old = self._serialised.popitem(last=False)
                    self._serialised_bytes -= len(old)
        return data

    @staticmethod
    def precomputed(sk: Skeleton) -> bytes:
        """Neuroglancer precomputed skeleton: nv, ne, vertices, edges, radius, compartment
        (both attributes float32, as ``SKELETON_INFO`` of the routes says)."""
        edges = sk.edges
        return (np.array([len(sk.vertices), len(edges)], dtype="<u4").tobytes()
                + sk.vertices.astype("<f4").tobytes() + edges.astype("<u4").tobytes()
                + sk.radius.astype("<f4").tobytes() + sk.compartment.astype("<f4").tobytes())

    # ---- meshes
    def mesh_path(self, nucleus: int) -> Path:
        return mesh_cache_path(self.ds.dir, nucleus)

    def _cached_mesh(self, path: Path) -> bytes | None:
        """The cached fragment, or None when there is none or it is damaged (then rebuilt)."""
        try:
            data = self.ds.mesh_cache.get(path)
        except OSError as exc:
            log.warning("cannot read cached mesh %s (%s); rebuilding it", path, exc)
            return None
        if data is not None and not is_valid_legacy(data):
            log.warning("cached mesh %s is damaged (%d bytes); rebuilding it", path, len(data))
            self.ds.mesh_cache.discard(path)
            return None
        return data

    def mesh_fragment(self, nucleus: int) -> bytes:
        """Legacy fragment bytes of a cell's mesh: built once, then read from the bounded
        cache (:mod:`~offline_cave.server.data.mesh_cache`); served from memory without
        caching when the cache cannot take it (cap, disk margin, read-only directory)."""
        path = self.mesh_path(nucleus)
        cached = self._cached_mesh(path)
        if cached is not None:
            return cached
        with self._lock:
            lock = self._mesh_locks.setdefault(nucleus, threading.Lock())
        try:
            with lock:
                cached = self._cached_mesh(path)
                if cached is not None:
                    return cached
                sk = self.skeleton(nucleus)
                verts, faces = skeleton_mesh(sk.vertices, sk.parent, sk.radius,
                                             soma_radius=float(sk.radius[sk.root]))
                data = encode_legacy(verts, faces)
                self.ds.mesh_cache.put(path, data)
                return data
        finally:
            with self._lock:  # one lock per mesh being built, not per mesh ever asked for
                if not lock.locked():
                    self._mesh_locks.pop(nucleus, None)


def cell_store(ds: Datastack) -> CellStore:
    """The (lazily created) CellStore of a datastack."""
    return ds.attached("cells", lambda: CellStore(ds))

