"""Annotation engine, read-only (``/annotation/api/v2``): tables, metadata, counts, rows.

Answers from the newest materialized version of the datastack owning the aligned volume.
"""

from __future__ import annotations

from starlette.routing import Route

from offline_cave.server.data.query import QueryBuilder
from offline_cave.server.data.store import Datastack, Registry, VersionInfo
from offline_cave.server.http import Req, bad_request, endpoint, json_response, parse_int


def routes(registry: Registry) -> list[Route]:
    def ds_latest(req: Req) -> tuple[Datastack, VersionInfo]:
        ds = registry.by_aligned_volume(req.path_params["av"])
        mats = ds.materialized_versions()
        rec = mats[-1] if mats else ds.versions[-1]
        return ds, rec

    @endpoint
    def tables(req: Req):
        ds, rec = ds_latest(req)
        return json_response(ds.table_names(rec.version))

    @endpoint
    def table_info(req: Req):
        ds, rec = ds_latest(req)
        return json_response(ds.table_metadata(req.path_params["table"], rec))

    @endpoint
    def count(req: Req):
        ds, rec = ds_latest(req)
        table = req.path_params["table"]
        ds.table_meta(table, rec)
        return json_response(ds.row_count(table, rec))

    @endpoint
    def annotations(req: Req):
        ds, rec = ds_latest(req)
        table = req.path_params["table"]
        ds.table_meta(table, rec)
        raw = req.query.get("annotation_ids", "")
        ids = [parse_int(s, "annotation id") for s in raw.split(",") if s.strip()]
        if not ids:
            raise bad_request("give annotation_ids=1,2,...")
        src = ds.source(table, rec)
        built = QueryBuilder([src], {"filter_in_dict": {table: {"id": ids}}},
                             row_cap=10_000).build()
        rows = ds.db.arrow(built.sql, built.params).to_pylist()
        out = []
        for row in rows:
            rec_out: dict = {}
            for col in src.logical_columns():
                if col in src.points:
                    rec_out[col] = [row[f"{col}_{a}"] for a in "xyz"]
                else:
                    value = row[col]
                    rec_out[col] = value.isoformat() if hasattr(value, "isoformat") else value
            out.append(rec_out)
        return json_response(out)

    base = "/annotation/api/v2/aligned_volume/{av}"
    return [
        Route(f"{base}/table", tables),
        Route(f"{base}/table/{{table}}", table_info),
        Route(f"{base}/table/{{table}}/count", count),
        Route(f"{base}/table/{{table}}/annotations", annotations),
    ]
