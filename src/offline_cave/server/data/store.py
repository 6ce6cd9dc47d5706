"""Read-only access to the sample datastacks on disk (layout per ``offline_cave.contract.layout``).

Nothing is loaded at start-up beyond listing the datastack directories: JSON metadata, parquet
schemas and the in-memory segment indexes are read on first use and cached. All data queries
go through one DuckDB connection; every request thread takes its own cursor.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from offline_cave.contract import layout
from offline_cave.server.data.bulk import BulkFiles
from offline_cave.server.data.chunkedgraph import SegmentStore
from offline_cave.server.data.db import Database
from offline_cave.server.data.errors import (
    InvalidQuery,
    MissingArtefact,
    MissingDatastack,
    MissingTable,
    MissingVersion,
    MissingView,
    shown,
)
from offline_cave.server.data.mesh_cache import DEFAULT_MESH_CACHE_BYTES, MeshCache
from offline_cave.server.data.query import Source, qident, qstring, suggest
from offline_cave.server.data.row_groups import RowGroups
from offline_cave.server.data.sessions import SessionFiles

log = logging.getLogger("offline_cave.server")

_ROWS_NAMES = itertools.count()
"""Names of the Arrow tables a query reads instead of a file (unique per process)."""


def _ts(text: str | None) -> float | None:
    if not text:
        return None
    parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _naive_iso(text: str | None) -> str | None:
    """Normalise a stored time to ``YYYY-MM-DDTHH:MM:SS.ffffff`` naive UTC."""
    ts = _ts(text)
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).replace(tzinfo=None).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")


@dataclass(frozen=True)
class VersionInfo:
    """One entry of versions.json."""

    version: int
    time_stamp: str
    expires_on: str | None
    valid: bool
    status: str
    is_merged: bool
    materialized: bool

    @property
    def timestamp(self) -> float:
        return _ts(self.time_stamp) or 0.0


class Datastack:
    """One sample datastack directory."""

    def __init__(self, directory: Path, db: Database, index: int) -> None:
        self.dir = directory
        self.db = db
        self.index = index
        self._lock = threading.RLock()
        self._schemas: dict[Path, pa.Schema] = {}
        self._attached: dict[str, Any] = {}
        # the server's bounded cache of built meshes (set by the Registry, shared by all)
        self.mesh_cache = MeshCache([directory / layout.CACHE_DIR])
        # decoded row groups of the large tables (set by the Registry, one budget for all)
        self.row_groups = RowGroups()

    def attached(self, key: str, make: Callable[[], Any]) -> Any:
        """The object ``make()`` built once for this datastack under ``key``: the stores of
        modules this one cannot import (cells, level 2) hang here, built on first use."""
        with self._lock:
            if key not in self._attached:
                self._attached[key] = make()
            return self._attached[key]

    # ---- JSON metadata (lazy)
    def _json(self, name: str, default: Any) -> Any:
        path = self.dir / name
        if not path.exists():
            return default
        return json.loads(path.read_text())

    @cached_property
    def info(self) -> dict:
        return self._json(layout.DATASTACK_JSON, {})

    @property
    def name(self) -> str:
        return str(self.info.get("name") or self.dir.name)

    @cached_property
    def sessions(self) -> SessionFiles:
        """The two-photon session files of this datastack (verified before serving)."""
        return SessionFiles(self.dir, self.name)

    @cached_property
    def bulk(self) -> BulkFiles:
        """The bulk export files of this datastack (listed in ``bulk/index.json``)."""
        return BulkFiles(self.dir, self.name)

    @property
    def pcg_table(self) -> str:
        return str(self.info.get("pcg_table_name") or self.name)

    @property
    def aligned_volume(self) -> dict:
        av = dict(self.info.get("aligned_volume") or {})
        av.setdefault("name", self.name)
        av.setdefault("id", self.index)
        av.setdefault("display_name", av["name"])
        av.setdefault("description", "")
        return av

    @property
    def viewer_resolution(self) -> tuple[float, float, float]:
        res = self.info.get("viewer_resolution") or [4.0, 4.0, 40.0]
        return (float(res[0]), float(res[1]), float(res[2]))

    @cached_property
    def versions(self) -> list[VersionInfo]:
        out = []
        for rec in self._json(layout.VERSIONS_JSON, []):
            out.append(VersionInfo(
                version=int(rec["version"]),
                time_stamp=_naive_iso(rec.get("time_stamp")) or "1970-01-01T00:00:00.000000",
                expires_on=_naive_iso(rec.get("expires_on")),
                valid=bool(rec.get("valid", True)), status=str(rec.get("status", "AVAILABLE")),
                is_merged=bool(rec.get("is_merged", True)),
                materialized=bool(rec.get("materialized", False))))
        out.sort(key=lambda v: v.version)
        return out

    @cached_property
    def tables(self) -> dict[str, dict]:
        return self._json(layout.TABLES_JSON, {})

    @cached_property
    def views(self) -> dict[str, dict]:
        return self._json(layout.VIEWS_JSON, {})

    # ---- versions
    def version(self, version: Any) -> VersionInfo:
        """The record of ``version``, or :class:`MissingVersion` naming the available ones."""
        try:
            v = int(version)
        except (TypeError, ValueError):
            raise InvalidQuery(f"version must be an integer; got {version!r:.40}") from None
        for rec in self.versions:
            if rec.version == v:
                return rec
        listed = ", ".join(str(r.version) for r in self.versions)
        raise MissingVersion(f"version {v} does not exist in {self.name} (versions: {listed})")

    def materialized_versions(self) -> list[VersionInfo]:
        return [v for v in self.versions if v.materialized]

    def version_at(self, ts: float) -> VersionInfo | None:
        """The newest materialized version with ``time_stamp <= ts``."""
        best = None
        for v in self.materialized_versions():
            if v.timestamp <= ts:
                best = v
        return best

    def version_metadata(self, rec: VersionInfo) -> dict:
        return {"version": rec.version, "id": rec.version, "valid": rec.valid,
                "datastack": self.name, "status": rec.status, "is_merged": rec.is_merged,
                "time_stamp": rec.time_stamp,
                "expires_on": rec.expires_on or "2100-01-01T00:00:00.000000"}

    # ---- tables and views
    @staticmethod
    def _exists_at(meta: dict, version: int) -> bool:
        intro = meta.get("introduced")
        removed = meta.get("removed")
        if intro is not None and version < int(intro):
            return False
        return not (removed is not None and version >= int(removed))

    def table_names(self, version: int) -> list[str]:
        return sorted(t for t, m in self.tables.items() if self._exists_at(m, version))

    def view_names(self, version: int) -> list[str]:
        return sorted(t for t, m in self.views.items() if self._exists_at(m, version))

    def table_meta(self, table: str, version: VersionInfo) -> dict:
        """Stored metadata of a table at a version, or :class:`MissingTable` with a close match."""
        if not isinstance(table, str) or table not in self.tables or \
                not self._exists_at(self.tables[table], version.version):
            names = self.table_names(version.version)
            hint = suggest(str(table), names)
            extra = ""
            if isinstance(table, str) and table in self.tables:
                m = self.tables[table]
                extra = (f" (it exists from version {m.get('introduced')}"
                         + (f" until {m.get('removed')}" if m.get("removed") else "") + ")")
            raise MissingTable(f"table '{shown(table)}' does not exist in {self.name} version "
                               f"{version.version}{extra}{hint}")
        return self.tables[table]

    def view_meta(self, view: str, version: VersionInfo) -> dict:
        if not isinstance(view, str) or view not in self.views or \
                not self._exists_at(self.views[view], version.version):
            names = self.view_names(version.version)
            raise MissingView(f"view '{shown(view)}' does not exist in {self.name} version "
                              f"{version.version}{suggest(str(view), names)}")
        return self.views[view]

    def voxel_resolution(self, meta: dict) -> tuple[float, float, float]:
        res = meta.get("voxel_resolution") or list(self.viewer_resolution)
        return (float(res[0]), float(res[1]), float(res[2]))

    def table_metadata(self, table: str, version: VersionInfo) -> dict:
        """The materialize ``table/{t}/metadata`` dict."""
        meta = self.table_meta(table, version)
        vx, vy, vz = self.voxel_resolution(meta)
        ref = meta.get("reference_table") or None
        created = _naive_iso(meta.get("created")) or version.time_stamp
        return {
            "id": sorted(self.tables).index(table) + 1,
            "table_name": table, "annotation_table": table,
            "schema": meta.get("schema") or meta.get("schema_type"),
            "schema_type": meta.get("schema_type") or meta.get("schema"),
            "reference_table": ref,
            "description": meta.get("description") or "",
            "notice_text": meta.get("notice_text"),
            "aligned_volume": self.aligned_volume["name"],
            "voxel_resolution_x": vx, "voxel_resolution_y": vy, "voxel_resolution_z": vz,
            "created": created, "valid": True, "deleted": None,
            "read_permission": "PUBLIC", "write_permission": "PRIVATE",
            "user_id": "", "flat_segmentation_source": "", "segmentation_source": "",
            "pcg_table_name": self.pcg_table,
            "last_modified": created, "last_updated": version.time_stamp,
            "row_count": self.row_count(table, version),
        }

    def view_metadata(self, view: str, version: VersionInfo) -> dict:
        meta = self.view_meta(view, version)
        vx, vy, vz = self.voxel_resolution(meta)
        return {"id": sorted(self.views).index(view) + 1, "table_name": view,
                "datastack_name": self.name, "description": meta.get("description") or "",
                "notice_text": meta.get("notice_text"),
                "live_compatible": bool(meta.get("live_compatible", False)),
                "voxel_resolution_x": vx, "voxel_resolution_y": vy, "voxel_resolution_z": vz}

    # ---- parquet files
    def data_version(self, name: str, version: VersionInfo) -> VersionInfo:
        """The materialized version whose parquet file serves ``name`` at ``version``.

        The version itself when it is materialized; otherwise the newest earlier materialized
        version holding the file, else the oldest later one (root ids are then re-derived at the
        requested version's time by :meth:`source`).
        """
        mats = [v for v in self.materialized_versions()
                if (layout.version_dir(self.dir, v.version) / f"{name}.parquet").exists()]
        if not mats:
            raise MissingArtefact(f"'{name}' has no data files in the {self.name} sample")
        for v in mats:
            if v.version == version.version:
                return v
        earlier = [v for v in mats if v.version <= version.version]
        return earlier[-1] if earlier else mats[0]

    def schema_of(self, path: Path) -> pa.Schema:
        with self._lock:
            schema = self._schemas.get(path)
            if schema is None:
                schema = pq.read_schema(path)
                self._schemas[path] = schema
            return schema

    def parquet(self, rel: str) -> Path:
        return self.dir / rel

    def row_count(self, name: str, version: VersionInfo) -> int:
        meta = self.tables.get(name) or self.views.get(name) or {}
        counts = meta.get("row_counts") or {}
        try:
            dv = self.data_version(name, version)
        except MissingArtefact:
            return 0
        if str(dv.version) in counts:
            return int(counts[str(dv.version)])
        path = layout.version_dir(self.dir, dv.version) / f"{name}.parquet"
        return int(pq.read_metadata(path).num_rows)

    def source(self, name: str, version: VersionInfo, *, at_time: float | None = None,
               join_column: str | None = None, voxel_resolution=None,
               root_filters: dict[str, list[int]] | None = None) -> Source:
        """A query :class:`Source` for a table or view at ``version``.

        If the data come from another materialized version (or ``at_time`` asks for a live
        lookup), every bound point's ``*_root_id`` is recomputed from its supervoxel at the
        wanted time, so roots always agree with the chunkedgraph.
        ``root_filters`` ({root column: wanted root ids *at the wanted time*}) narrows the
        stored rows before the remap to the roots that share pieces with the wanted ones (a
        superset, so the caller's own filters still decide; this only buys filter pushdown).
        """
        dv = self.data_version(name, version)
        path = layout.version_dir(self.dir, dv.version) / f"{name}.parquet"
        if root_filters and set(root_filters) == {"pre_pt_root_id"}:
            # a filter on presynaptic roots only: the copy sorted by pre root lets DuckDB skip
            # all but a few row groups (the main file is sorted by post root)
            by_pre = path.with_name(f"{name}{layout.BY_PRE_SUFFIX}.parquet")
            if by_pre.exists():
                path = by_pre
        schema = self.schema_of(path)
        meta = self.tables.get(name) or self.views.get(name) or {}
        res = voxel_resolution or self.voxel_resolution(meta)
        base_sql = f"read_parquet({qstring(str(path))})"
        want_time = at_time if at_time is not None else version.timestamp
        if at_time is None and dv.version == version.version:
            for col, ids in (root_filters or {}).items():
                rows = self.row_groups.rows(path, col, ids)
                if rows is not None:  # the rows of these roots, decoded once (row_groups.py)
                    view = f"rows_{next(_ROWS_NAMES)}"
                    return Source(name=name, from_sql=view, schema=schema,
                                  voxel_resolution=res, join_column=join_column,
                                  register={view: rows}, file_sql=base_sql)
            return Source(name=name, from_sql=base_sql, schema=schema,
                          voxel_resolution=res, join_column=join_column)
        names = set(schema.names)
        points = [c[: -len("_root_id")] for c in schema.names
                  if c.endswith("_root_id") and c[: -len("_root_id")] + "_supervoxel_id" in names]
        if not points:
            return Source(name=name, from_sql=base_sql, schema=schema,
                          voxel_resolution=res, join_column=join_column)
        changed = self.segments.changed_roots(dv.timestamp, want_time)
        if len(changed) == 0:  # no edit between the two times touches any root
            return Source(name=name, from_sql=base_sql, schema=schema,
                          voxel_resolution=res, join_column=join_column)
        sql = self._remapped_sql(base_sql, points, names, changed, dv.timestamp, want_time,
                                 root_filters)
        return Source(name=name, from_sql=sql, schema=schema, voxel_resolution=res,
                      join_column=join_column)

    def _remapped_sql(self, base_sql: str, points: list[str], names: set[str],
                      changed: np.ndarray, stored_time: float, want_time: float,
                      root_filters: dict[str, list[int]] | None) -> str:
        """A subquery of ``base_sql`` with every point's root re-derived at ``want_time``.

        Only the supervoxels of the ``changed`` roots are looked up (the ``svmap``);
        ``root_filters`` narrow the stored rows first (see :meth:`source`).
        """
        segs = self.segments
        replace = []
        joins = []
        for i, p in enumerate(points):
            replace.append(f"coalesce(m{i}.root_id, b.{qident(p + '_root_id')}) AS "
                           f"{qident(p + '_root_id')}")
            joins.append(f"LEFT JOIN svmap AS m{i} "
                         f"ON b.{qident(p + '_supervoxel_id')} = m{i}.supervoxel_id")
        where = ""
        if root_filters:
            ands = []
            for col, ids in root_filters.items():
                if col not in names or not ids:
                    continue
                mapped = segs.overlapping_roots(sorted(set(ids)), stored_time)
                keep = sorted({r for rs in mapped.values() for r in rs} | {0})
                ands.append(f"b.{qident(col)} IN ({', '.join(str(int(i)) for i in keep)})")
            if ands:
                where = " WHERE " + " AND ".join(ands)
        return (f"(WITH svmap AS MATERIALIZED ({segs.changed_svmap_sql(changed, want_time)}) "
                f"SELECT b.* REPLACE ({', '.join(replace)}) FROM {base_sql} AS b "
                f"{' '.join(joins)}{where})")

    @cached_property
    def segments(self) -> SegmentStore:
        return SegmentStore(self.dir, self.db, self.info)


class Registry:
    """All datastacks served, found by name and by chunkedgraph table id.

    ``datastacks`` (directory names) restricts what is served; ``None`` serves every complete
    directory. Callers pass what ``offline_cave.prepare.prepare_data`` verified."""

    def __init__(self, data_dir: Path, datastacks: list[str] | None = None, *,
                 query_timeout: float | None = None,
                 mesh_cache_bytes: int = DEFAULT_MESH_CACHE_BYTES) -> None:
        self.data_dir = Path(data_dir)
        self.db = Database(query_timeout=query_timeout)
        self.datastacks: dict[str, Datastack] = {}
        found = layout.find_datastacks(self.data_dir)
        for i, d in enumerate(found, start=1):
            if datastacks is not None and d.name not in datastacks:
                continue
            ds = Datastack(d, self.db, i)
            self.datastacks[d.name] = ds
        # one cap for the meshes of every datastack served
        self.mesh_cache = MeshCache([ds.dir / layout.CACHE_DIR
                                     for ds in self.datastacks.values()], mesh_cache_bytes)
        self.row_groups = RowGroups()
        for ds in self.datastacks.values():
            ds.mesh_cache = self.mesh_cache
            ds.row_groups = self.row_groups

    def get(self, name: str) -> Datastack:
        ds = self.datastacks.get(name)
        if ds is None:
            names = sorted(self.datastacks)
            raise MissingDatastack(f"datastack '{shown(name)}' is not served here (served: "
                            f"{', '.join(names) or 'none'}){suggest(str(name), names)}")
        return ds

    def by_table_id(self, tid: str) -> Datastack:
        for ds in self.datastacks.values():
            if tid in (ds.pcg_table, ds.name):
                return ds
        ids = sorted({d.pcg_table for d in self.datastacks.values()})
        raise MissingDatastack(f"chunkedgraph table '{shown(tid)}' is not served here (tables: "
                        f"{', '.join(ids) or 'none'}){suggest(str(tid), ids)}")

    def by_aligned_volume(self, name: str) -> Datastack:
        for ds in self.datastacks.values():
            if ds.aligned_volume["name"] == name:
                return ds
        names = sorted(d.aligned_volume["name"] for d in self.datastacks.values())
        raise MissingDatastack(f"aligned volume '{shown(name)}' is not served here (aligned volumes: "
                        f"{', '.join(names) or 'none'}){suggest(str(name), names)}")
