"""Materialization engine: versions, table/view metadata and the arrow query endpoints.

caveclient 8.2.1 with API v3 uses v3 paths except ``tables`` and ``count`` (v2); both
prefixes are served for every path. Query responses are Arrow IPC streams with
``Content-Type: data.arrow`` and always carry ``dataframe_resolution``.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from typing import Any

import duckdb
import pyarrow as pa
from starlette.responses import Response

from offline_cave.server.data.query import (
    QueryBuilder,
    QueryError,
    Source,
    column_kind,
    format_resolution,
    qident,
)
from offline_cave.server.data.store import Datastack, VersionInfo
from offline_cave.server.endpoints import MATERIALIZE_APIS
from offline_cave.server.http import (
    Req,
    arrow_response,
    bad_request,
    cached,
    endpoint,
    header_safe,
    json_response,
    not_found,
    parse_time,
)

log = logging.getLogger("offline_cave.server")

SERVER_VERSION = "5.13.0"
QUERY_ROW_LIMIT = 200_000
SYNAPSE_ROW_LIMIT = 500_000
_FILTER_KEYS = ("filter_in_dict", "filter_notin_dict", "filter_equal_dict",
                "filter_greater_dict", "filter_less_dict", "filter_greater_equal_dict",
                "filter_less_equal_dict", "filter_spatial_dict", "filter_regex_dict")


def _row_caps() -> tuple[int, int]:
    """The module's row caps (part of the response cache's key: they decide an answer)."""
    return QUERY_ROW_LIMIT, SYNAPSE_ROW_LIMIT


def _dict_body(req: Req) -> dict:
    """The JSON object body of a query (empty -> ``{}``)."""
    body = req.json_body(default={})
    if not isinstance(body, dict):
        raise bad_request(f"the query body must be a JSON object; got {type(body).__name__}")
    return body


def _row_cap(ds: Datastack, tables: list[str], max_rows: int) -> int:
    """The row limit of a query (higher when the synapse table takes part), at most the
    server's ``max_rows``."""
    cap = SYNAPSE_ROW_LIMIT if ds.info.get("synapse_table") in tables else QUERY_ROW_LIMIT
    return min(cap, max_rows)


def _root_filters(body: dict, table: str) -> dict[str, list[int]]:
    """``*_root_id`` in/equal filters of ``table`` (best effort; the builder validates)."""
    out: dict[str, list[int]] = {}
    for key in ("filter_in_dict", "filter_equal_dict"):
        outer = body.get(key)
        if not isinstance(outer, dict) or not isinstance(outer.get(table), dict):
            continue
        for col, value in outer[table].items():
            if not isinstance(col, str) or not col.endswith("_root_id"):
                continue
            vals = value if isinstance(value, list) else [value]
            ids = [v for v in vals if isinstance(v, int) and not isinstance(v, bool)
                   and -(2**63) <= v < 2**63]
            if len(ids) != len(vals):
                continue
            out[col] = sorted(set(out.get(col, [])) & set(ids)) if col in out else ids
    return out


def _jsonable(value: Any) -> Any:
    """A value of a JSON row (dates as ISO text)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _utc(table: pa.Table) -> pa.Table:
    """Label tz-aware timestamp columns as ``UTC`` (DuckDB names the session zone)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and f.type.tz and f.type.tz != "UTC":
            table = table.set_column(i, pa.field(f.name, pa.timestamp(f.type.unit, "UTC")),
                                     table.column(i).cast(pa.timestamp(f.type.unit, "UTC")))
    return table


def run_query(ds: Datastack, builder: QueryBuilder, notices: list[str],
              as_json: bool = False) -> Response:
    """Execute a built query and answer with arrow (or JSON) plus the protocol headers."""
    built = builder.build()
    try:
        table = ds.db.arrow(built.sql, built.params, register=built.register)
    except (duckdb.InvalidInputException, duckdb.ConversionException,
            duckdb.OutOfRangeException, duckdb.BinderException) as exc:
        raise QueryError(f"query could not be run: {str(exc).splitlines()[0][:300]}") from None
    table = _utc(table)
    warnings = [n for n in notices if n]
    if not built.count_only and table.num_rows > built.row_cap:
        table = table.slice(0, built.row_cap)
        warnings.append(f"query result truncated to {built.row_cap} rows (the server limit); "
                        f"use filters, or limit and offset, to page through the rest")
    headers = {"dataframe_resolution": format_resolution(built.dataframe_resolution)}
    if warnings:
        headers["Warning"] = header_safe("; ".join(warnings))
    if as_json:
        rows = [{k: _jsonable(v) for k, v in r.items()} for r in table.to_pylist()]
        return Response(json.dumps(rows), headers=headers, media_type="application/json")
    return arrow_response(table, headers)


def _view_schema(src: Source) -> dict[str, dict]:
    """Column -> ``{"type": ...}`` of a view, as the materialization engine describes it."""
    out: dict[str, dict] = {}
    for c in src.logical_columns():
        if c in src.points:
            out[c] = {"type": "SpatialPoint"}
            continue
        kind = column_kind(src.types[c])
        out[c] = {"type": {"int": "integer", "float": "float", "str": "string",
                           "bool": "boolean", "ts": "datetime"}.get(kind, "string")}
    return out


def ds_version(req: Req) -> tuple[Datastack, VersionInfo]:
    """The datastack and version of the ``{datastack}`` and ``{version}`` path parameters."""
    ds = req.registry.get(req.path_params["datastack"])
    return ds, ds.version(req.path_params["version"])


def query_options(req: Req) -> dict:
    """The builder options: ``count`` and ``random_sample`` from the query string, and the
    server's limits (distinct values per filter column, largest ``limit``)."""
    limits = req.limits
    sample = req.qint("random_sample", minimum=1)
    if sample is not None and sample > limits.max_rows:
        raise bad_request(f"query parameter 'random_sample' must be <= {limits.max_rows} (the "
                          f"server's most rows per response, serve --max-rows); got {sample}")
    return {"count_only": req.qbool("count"), "random_sample": sample,
            "max_values": limits.max_ids, "max_limit": limits.max_rows}


def wants_json(req: Req) -> bool:
    """Whether the client asked for JSON rows instead of Arrow."""
    return not req.qbool("arrow_format", True) and not req.qbool("return_pyarrow", True)


# ---- service discovery
@endpoint
def api_versions(req: Req) -> Response:
    """The materialization API versions served."""
    return json_response([2, 3])


@endpoint
def server_version(req: Req) -> Response:
    """The emulated materialization engine version."""
    return json_response(SERVER_VERSION)


# ---- versions
@endpoint
def versions(req: Req) -> Response:
    """Version numbers (valid ones, or all with ``expired``)."""
    ds = req.registry.get(req.path_params["datastack"])
    expired = req.qbool("expired", False)
    return json_response([v.version for v in ds.versions if expired or v.valid])


@endpoint
def version_meta(req: Req) -> Response:
    """One version's metadata."""
    ds, rec = ds_version(req)
    return json_response(ds.version_metadata(rec))


@endpoint
def versions_metadata(req: Req) -> Response:
    """The metadata of every version (valid ones, or all with ``expired``)."""
    ds = req.registry.get(req.path_params["datastack"])
    expired = req.qbool("expired", False)
    return json_response([ds.version_metadata(v) for v in ds.versions if expired or v.valid])


# ---- tables
@endpoint
def tables(req: Req) -> Response:
    """Table names at a version."""
    ds, rec = ds_version(req)
    return json_response(ds.table_names(rec.version))


@endpoint
def table_count(req: Req) -> Response:
    """One table's row count at a version."""
    ds, rec = ds_version(req)
    table = req.path_params["table"]
    ds.table_meta(table, rec)
    return json_response(ds.row_count(table, rec))


@endpoint
def table_metadata(req: Req) -> Response:
    """One table's metadata at a version."""
    ds, rec = ds_version(req)
    return json_response(ds.table_metadata(req.path_params["table"], rec))


@endpoint
def tables_metadata(req: Req) -> Response:
    """The metadata of every table at a version."""
    ds, rec = ds_version(req)
    return json_response([ds.table_metadata(t, rec) for t in ds.table_names(rec.version)])


@endpoint
def unique_string_values(req: Req) -> Response:
    """The distinct values of every string column at the newest materialized version."""
    ds = req.registry.get(req.path_params["datastack"])
    table = req.path_params["table"]
    mats = ds.materialized_versions()
    if not mats:
        raise not_found(f"{ds.name} has no materialized version")
    rec = mats[-1]
    ds.table_meta(table, rec)
    src = ds.source(table, rec)
    out = {}
    for c in src.column_order:
        if column_kind(src.types[c]) == "str":
            col = ds.db.arrow(f"SELECT DISTINCT {qident(c)} AS v FROM {src.from_sql} "
                              f"ORDER BY 1")
            out[c] = [v for v in col.column("v").to_pylist() if v is not None]
    return json_response(out)


# ---- queries
@endpoint
@cached(_row_caps)
def table_query(req: Req) -> Response:
    """Rows of one table at a version (Arrow, or JSON on request)."""
    ds, rec = ds_version(req)
    table = req.path_params["table"]
    meta = ds.table_meta(table, rec)
    body = _dict_body(req)
    src = ds.source(table, rec, root_filters=_root_filters(body, table))
    builder = QueryBuilder([src], body, row_cap=_row_cap(ds, [table], req.limits.max_rows), **query_options(req))
    return run_query(ds, builder, [meta.get("notice_text")], wants_json(req))


def _join_sources(ds: Datastack, rec: VersionInfo, pairs: Any, body: dict,
                  at_time: float | None = None) -> tuple[list[Source], list[str]]:
    """Sources (and notices) of ``[[table, join column], ...]`` pairs, validated."""
    ok = isinstance(pairs, list) and len(pairs) >= 2 and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
        for p in pairs)
    if not ok:
        raise bad_request("'tables' must be a list of [table_name, join_column] pairs, "
                          "e.g. [[\"cell_types\", \"target_id\"], [\"nuclei\", \"id\"]]; "
                          f"got {pairs!r:.120}")
    names = [p[0] for p in pairs]
    if len(set(names)) != len(names):
        raise bad_request(f"a table may appear only once in a join; got {names}")
    sources, notices = [], []
    for name, col in pairs:
        meta = ds.table_meta(name, rec)
        notices.append(meta.get("notice_text"))
        sources.append(ds.source(name, rec, at_time=at_time, join_column=col,
                                 root_filters=_root_filters(body, name)))
    return sources, notices


@endpoint
@cached(_row_caps)
def join_query(req: Req) -> Response:
    """Rows of an inner join of tables at a version."""
    ds, rec = ds_version(req)
    body = _dict_body(req)
    sources, notices = _join_sources(ds, rec, body.get("tables"), body)
    builder = QueryBuilder(sources, body, row_cap=_row_cap(ds, [s.name for s in sources],
                                                    req.limits.max_rows),
                           order_by_id=True, **query_options(req))
    return run_query(ds, builder, notices, wants_json(req))


def _live_join_pairs(joins: Any, table: str) -> list[list[str]]:
    """``[[table, column, table, column], ...]`` as join pairs, ``table`` first."""
    ok = isinstance(joins, list) and all(
        isinstance(j, list) and len(j) == 4 and all(isinstance(x, str) for x in j)
        for j in joins)
    if not ok:
        raise bad_request("'join_tables' must be a list of [table, column, table, "
                          f"column] lists; got {joins!r:.120}")
    pairs = [[joins[0][0], joins[0][1]], [joins[0][2], joins[0][3]]]
    for j in joins[1:]:
        pairs.append([j[2], j[3]])
    if pairs[0][0] != table and pairs[1][0] == table:
        pairs[0], pairs[1] = pairs[1], pairs[0]
    return pairs


def _live_version(ds: Datastack, body: dict) -> tuple[float, VersionInfo]:
    """The body's required ``timestamp`` and the materialized version that serves it."""
    if "timestamp" not in body or body["timestamp"] is None:
        raise bad_request("'timestamp' is required in the body")
    ts = parse_time(body["timestamp"], "'timestamp'")
    rec = ds.version_at(ts) or (ds.materialized_versions() or [None])[0]
    if rec is None:
        raise not_found(f"{ds.name} has no materialized version")
    return ts, rec


@endpoint
@cached(_row_caps)
def live_live_query(req: Req) -> Response:
    """Rows of a table (or a join) at any time, roots re-derived at that time."""
    ds = req.registry.get(req.path_params["datastack"])
    body = _dict_body(req)
    table = body.get("table")
    if not isinstance(table, str):
        raise bad_request("'table' (the table name) is required in the body")
    ts, rec = _live_version(ds, body)
    joins = body.get("join_tables")
    if joins:
        pairs = _live_join_pairs(joins, table)
        sources, notices = _join_sources(ds, rec, pairs, body, at_time=ts)
    else:
        meta = ds.table_meta(table, rec)
        notices = [meta.get("notice_text")]
        sources = [ds.source(table, rec, at_time=ts, root_filters=_root_filters(body, table))]
    builder = QueryBuilder(sources, body, row_cap=_row_cap(ds, [s.name for s in sources],
                                                    req.limits.max_rows),
                           order_by_id=len(sources) > 1, **query_options(req))
    return run_query(ds, builder, notices, wants_json(req))


# ---- views
@endpoint
def views(req: Req) -> Response:
    """View name -> metadata at a version."""
    ds, rec = ds_version(req)
    return json_response({v: ds.view_metadata(v, rec) for v in ds.view_names(rec.version)})


@endpoint
def view_schemas(req: Req) -> Response:
    """View name -> column types at a version."""
    ds, rec = ds_version(req)
    return json_response({v: _view_schema(ds.source(v, rec))
                          for v in ds.view_names(rec.version)})


@endpoint
def view_metadata(req: Req) -> Response:
    """One view's metadata."""
    ds, rec = ds_version(req)
    return json_response(ds.view_metadata(req.path_params["view"], rec))


@endpoint
def view_schema(req: Req) -> Response:
    """One view's column types."""
    ds, rec = ds_version(req)
    view = req.path_params["view"]
    ds.view_meta(view, rec)
    return json_response(_view_schema(ds.source(view, rec)))


@endpoint
@cached(_row_caps)
def view_query(req: Req) -> Response:
    """Rows of one view at a version."""
    ds, rec = ds_version(req)
    view = req.path_params["view"]
    meta = ds.view_meta(view, rec)
    body = _dict_body(req)
    src = ds.source(view, rec, root_filters=_root_filters(body, view))
    builder = QueryBuilder([src], body, row_cap=min(QUERY_ROW_LIMIT, req.limits.max_rows),
                           **query_options(req))
    return run_query(ds, builder, [meta.get("notice_text")], wants_json(req))


_PER_API = [
    ("versions", versions, ["GET"]),
    ("versions_metadata", versions_metadata, ["GET"]),
    ("live_query", live_live_query, ["POST"]),
    ("unique_string_values", unique_string_values, ["GET"]),
    ("version", version_meta, ["GET"]),
    ("tables", tables, ["GET"]),
    ("tables_metadata", tables_metadata, ["GET"]),
    ("table_count", table_count, ["GET"]),
    ("table_metadata", table_metadata, ["GET"]),
    ("table_query", table_query, ["POST"]),
    ("join_query", join_query, ["POST"]),
    ("views", views, ["GET"]),
    ("view_schemas", view_schemas, ["GET"]),
    ("view_metadata", view_metadata, ["GET"]),
    ("view_schema", view_schema, ["GET"]),
    ("view_query", view_query, ["POST"]),
]

ROUTES = [
    ("materialize.api_versions", api_versions, ["GET"]),
    ("materialize.server_version", server_version, ["GET"]),
    *[(f"materialize.{api}.{name}", handler, methods)
      for api in MATERIALIZE_APIS for name, handler, methods in _PER_API],
]
"""(endpoint name, handler, methods) of the materialization engine (both API prefixes)."""
