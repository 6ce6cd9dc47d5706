"""Annotation engine, read-only (``/annotation/api/v2``): tables, metadata, counts, rows.

Answers from the newest materialized version of the datastack owning the aligned volume.
"""

from __future__ import annotations

from starlette.responses import Response

from offline_cave.server.data.query import QueryBuilder, Source
from offline_cave.server.data.store import Datastack, VersionInfo
from offline_cave.server.http import Req, bad_request, endpoint, json_response, parse_int


def ds_latest(req: Req) -> tuple[Datastack, VersionInfo]:
    """The datastack of the ``{av}`` path parameter and its newest materialized version."""
    ds = req.registry.by_aligned_volume(req.path_params["av"])
    mats = ds.materialized_versions()
    rec = mats[-1] if mats else ds.versions[-1]
    return ds, rec


def annotation_record(src: Source, row: dict) -> dict:
    """One stored row as the annotation engine returns it (points as ``[x, y, z]``)."""
    out: dict = {}
    for col in src.logical_columns():
        if col in src.points:
            out[col] = [row[f"{col}_{a}"] for a in "xyz"]
        else:
            value = row[col]
            out[col] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


@endpoint
def tables(req: Req) -> Response:
    """Table names at the newest materialized version."""
    ds, rec = ds_latest(req)
    return json_response(ds.table_names(rec.version))


@endpoint
def table_info(req: Req) -> Response:
    """One table's metadata."""
    ds, rec = ds_latest(req)
    return json_response(ds.table_metadata(req.path_params["table"], rec))


@endpoint
def count(req: Req) -> Response:
    """One table's row count."""
    ds, rec = ds_latest(req)
    table = req.path_params["table"]
    ds.table_meta(table, rec)
    return json_response(ds.row_count(table, rec))


@endpoint
def annotations(req: Req) -> Response:
    """The rows with ``annotation_ids=1,2,...``."""
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
    return json_response([annotation_record(src, row) for row in rows])


ROUTES = [
    ("annotation.tables", tables, ["GET"]),
    ("annotation.table", table_info, ["GET"]),
    ("annotation.count", count, ["GET"]),
    ("annotation.annotations", annotations, ["GET"]),
]
"""(endpoint name, handler, methods) of the annotation engine."""
