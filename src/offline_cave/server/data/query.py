"""Translate materialization-engine query bodies into DuckDB SQL.

The request bodies are the ones caveclient 8.2.1 sends (see the protocol notes, section 4.2):
filter dicts keyed by table name, then by column (``filter_in_dict``, ``filter_notin_dict``,
``filter_equal_dict``, ``filter_greater_dict``, ``filter_less_dict``,
``filter_greater_equal_dict``, ``filter_less_equal_dict``, ``filter_spatial_dict``,
``filter_regex_dict``), ``select_columns`` / ``select_column_map``, ``suffix_map`` /
``suffixes``, ``offset``, ``limit`` and ``desired_resolution``.

Everything a user can get wrong raises :class:`QueryError` (the domain error
:class:`~offline_cave.server.data.errors.InvalidQuery`, answered as HTTP 400) with a message
written for that user. Values never reach the SQL text except as validated Python
ints/floats; strings travel as bound parameters. Column names are checked against the stored
schema and quoted.

Units: positions are stored as int64 voxels at the table's ``voxel_resolution`` (nm/voxel).
Spatial filters are in those voxels. With ``desired_resolution`` the position columns are
returned as float64 in units of ``desired_resolution`` (value * voxel_res / desired).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from offline_cave.server.data.errors import InvalidQuery, TooMany, shown

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_FILTER_VALUES = 500_000
"""Default bound on the distinct values of one in/notin filter column (the route passes the
server's ``max_ids``)."""
MAX_OFFSET = 10**15

FILTER_KINDS = {
    "filter_in_dict": "in",
    "filter_notin_dict": "notin",
    "filter_out_dict": "notin",  # accepted alias (the client's argument name)
    "filter_equal_dict": "equal",
    "filter_greater_dict": "greater",
    "filter_less_dict": "less",
    "filter_greater_equal_dict": "greater_equal",
    "filter_less_equal_dict": "less_equal",
    "filter_spatial_dict": "spatial",
    "filter_regex_dict": "regex",
}
_COMPARE = {"greater": ">", "less": "<", "greater_equal": ">=", "less_equal": "<="}
_TRUE_STRINGS = {"t", "true", "True", "TRUE", "1", "yes"}
_FALSE_STRINGS = {"f", "false", "False", "FALSE", "0", "no"}


QueryError = InvalidQuery
"""The name the query builder has always used for :class:`InvalidQuery` (HTTP 400)."""


def suggest(name: str, candidates: Sequence[str]) -> str:
    """A ``; did you mean 'x'?`` suffix for ``name`` (empty string if nothing is close)."""
    if len(str(name)) > 200:  # nothing served is that long; never compare megabytes of text
        return ""
    close = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def column_kind(dtype: pa.DataType) -> str:
    """Coarse kind of an arrow type: int, float, str, bool, ts or other."""
    if pa.types.is_integer(dtype):
        return "int"
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "float"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "str"
    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return "ts"
    return "other"


def qident(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def qstring(text: str) -> str:
    """Quote an SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


@dataclass
class Source:
    """One table (or view) taking part in a query.

    ``from_sql`` is a DuckDB FROM expression (``read_parquet('...')`` or a subquery);
    ``schema`` the stored arrow schema (positions split into ``_x/_y/_z``).
    """

    name: str
    from_sql: str
    schema: pa.Schema
    voxel_resolution: tuple[float, float, float]
    join_column: str | None = None
    alias: str = "t0"
    register: dict[str, pa.Table] = field(default_factory=dict)
    """Arrow tables ``from_sql`` reads by name (rows taken from the file ahead, see
    :mod:`offline_cave.server.data.row_groups`); empty when it reads the file itself."""
    file_sql: str | None = None
    """With ``register``: the FROM expression of the whole file (random samples use it)."""

    def __post_init__(self) -> None:
        self.types = {f.name: f.type for f in self.schema}
        self.column_order = [f.name for f in self.schema]
        self.points: list[str] = []
        for name in self.column_order:
            m = re.fullmatch(r"(.+)_position_x", name)
            if m and f"{m.group(1)}_position_y" in self.types and \
                    f"{m.group(1)}_position_z" in self.types:
                self.points.append(f"{m.group(1)}_position")

    def logical_columns(self) -> list[str]:
        """Stored columns with each split position folded back into ``<p>_position``."""
        out = []
        for name in self.column_order:
            m = re.fullmatch(r"(.+_position)_([xyz])", name)
            if m and m.group(1) in self.points:
                if m.group(2) == "x":
                    out.append(m.group(1))
                continue
            out.append(name)
        return out

    def has(self, logical: str) -> bool:
        return logical in self.types or logical in self.points


@dataclass
class BuiltQuery:
    """SQL ready to run plus the response metadata the route needs."""

    sql: str
    params: list[Any]
    dataframe_resolution: tuple[float, float, float]
    limit: int | None
    offset: int
    row_cap: int
    count_only: bool = False
    column_names: list[str] = field(default_factory=list)
    register: dict[str, pa.Table] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# value coercion


def _coerce(value: Any, kind: str, column: str, table: str) -> Any:
    where = f"column '{column}' of '{table}'"
    if kind == "int":
        if isinstance(value, bool):
            raise QueryError(f"{where} holds integers; got the boolean {value!r}")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,20}\s*", value):
            value = int(value)
        if not isinstance(value, int):
            raise QueryError(f"{where} holds integers; got {type(value).__name__} {value!r:.80}")
        if not INT64_MIN <= value <= INT64_MAX:
            raise QueryError(f"{where} holds 64-bit integers; {value} is out of range")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise QueryError(f"{where} holds numbers; got {type(value).__name__} {value!r:.80}")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise QueryError(f"{where} holds strings; got {type(value).__name__} {value!r:.80}")
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value in _TRUE_STRINGS:
            return True
        if isinstance(value, str) and value in _FALSE_STRINGS:
            return False
        raise QueryError(f"{where} holds booleans; got {value!r:.80}")
    if kind == "ts":
        if isinstance(value, bool):
            raise QueryError(f"{where} holds timestamps; got {value!r}")
        if isinstance(value, int | float):
            if not math.isfinite(value) or abs(value) > 1e11:
                raise QueryError(f"{where} holds timestamps; {value!r} is not a unix time")
            return datetime.fromtimestamp(value, tz=UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise QueryError(f"{where} holds timestamps; cannot parse {value!r:.80}") from None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        raise QueryError(f"{where} holds timestamps; got {type(value).__name__}")
    raise QueryError(f"{where} cannot be filtered (type not supported)")


def _clamp_int(value: int) -> int:
    return max(INT64_MIN, min(INT64_MAX, int(value)))


def _literal(value: Any, params: list[Any]) -> str:
    """SQL text for one coerced value; ints/floats inline, everything else a parameter."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "'NaN'::DOUBLE"
        if math.isinf(value):
            return "'Infinity'::DOUBLE" if value > 0 else "'-Infinity'::DOUBLE"
        return repr(float(value))
    params.append(value)
    return "?"


# ---------------------------------------------------------------------------------------------
# body parsing


def _as_dict(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise QueryError(f"'{what}' must be a JSON object; got {type(value).__name__}")
    return value


def _int_arg(body: dict, key: str, minimum: int, maximum: int | None = None,
             why: str = "") -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and re.fullmatch(r"\d{1,18}", value):
            value = int(value)
        else:
            raise QueryError(f"'{key}' must be an integer; got {shown(repr(value), 80)}")
    if value < minimum:
        raise QueryError(f"'{key}' must be >= {minimum}; got {shown(value, 40)}")
    if maximum is not None and value > maximum:
        raise TooMany(f"'{key}' must be <= {maximum}{why}; got {shown(value, 40)}")
    return value


def parse_resolution(value: Any, what: str = "desired_resolution") -> tuple[float, float, float]:
    """Validate a 3-vector of positive finite numbers."""
    if isinstance(value, str):
        try:
            value = [float(v) for v in value.replace(",", " ").split()]
        except ValueError:
            raise QueryError(f"'{what}' must be three positive numbers; got {value!r:.80}") from None
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise QueryError(f"'{what}' must be a list of three numbers [x, y, z]; got {value!r:.80}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise QueryError(f"'{what}' must hold three positive numbers; got {value!r:.80}")
        out.append(float(v))
    return (out[0], out[1], out[2])


def format_resolution(res: Sequence[float]) -> str:
    """``dataframe_resolution`` header text: ``"4.0, 4.0, 40.0"`` (split by the client on ', ')."""
    return ", ".join(repr(float(r)) for r in res)


class QueryBuilder:
    """Build one SELECT over one source or an inner join of several sources."""

    def __init__(self, sources: list[Source], body: dict, *, row_cap: int,
                 suffixes: dict[str, str] | None = None, count_only: bool = False,
                 random_sample: int | None = None, order_by_id: bool = False,
                 max_values: int = MAX_FILTER_VALUES, max_limit: int | None = None) -> None:
        if not sources:
            raise QueryError("no table given")
        self.sources = sources
        for i, src in enumerate(sources):
            src.alias = f"t{i}"
        self.by_name = {s.name: s for s in sources}
        self.body = body
        self.row_cap = row_cap
        self.count_only = count_only
        self.random_sample = random_sample
        self.order_by_id = order_by_id
        self.max_values = max_values
        self.max_limit = max_limit
        self.params: list[Any] = []
        self.suffixes = self._parse_suffixes(suffixes)

    # -- helpers
    def _source_for(self, table_key: Any, column: str, filter_name: str) -> Source:
        if not isinstance(table_key, str):
            raise QueryError(f"'{filter_name}' must be keyed by table name; got {table_key!r:.80}")
        src = self.by_name.get(table_key)
        if src is None:
            names = list(self.by_name)
            raise QueryError(f"'{filter_name}' refers to table '{shown(table_key)}', which is not part "
                             f"of this query (tables: {', '.join(names)})"
                             f"{suggest(table_key, names)}")
        if filter_name == "filter_spatial_dict" and not column.endswith("_position"):
            column = f"{column}_position"  # a bare point name such as 'pt'
        if src.has(column) or column == src.join_column:
            return src
        # be forgiving: a column of the joined (reference) table filtered under the other name
        owners = [s for s in self.sources if s.has(column)]
        if len(owners) == 1:
            return owners[0]
        candidates = sorted({c for s in self.sources for c in s.logical_columns()})
        raise QueryError(f"'{filter_name}': column '{shown(column)}' does not exist in table "
                         f"'{shown(table_key)}'{suggest(column, candidates)}")

    def _parse_suffixes(self, given: dict[str, str] | None) -> dict[str, str]:
        names = [s.name for s in self.sources]
        if len(names) == 1:
            return {names[0]: ""}
        raw = self.body.get("suffix_map")
        if raw is None:
            raw = self.body.get("suffixes")
        if raw is None:
            raw = given
        if raw is None:
            raw = ["_x", "_y", *[f"_{i}" for i in range(2, len(names))]]
        if isinstance(raw, list):
            if len(raw) != len(names) or not all(isinstance(s, str) for s in raw):
                raise QueryError(f"'suffixes' must list one string per table ({len(names)}); "
                                 f"got {raw!r:.80}")
            out = dict(zip(names, raw, strict=True))
        elif isinstance(raw, dict):
            unknown = [k for k in raw if k not in self.by_name]
            if unknown:
                raise QueryError(f"'suffix_map' names table '{unknown[0]}', which is not part of "
                                 f"this query (tables: {', '.join(names)})")
            if not all(isinstance(v, str) for v in raw.values()):
                raise QueryError("'suffix_map' values must be strings")
            out = {n: raw.get(n, "" if i == 0 else f"_{n}") for i, n in enumerate(names)}
        else:
            raise QueryError(f"'suffixes' must be a list or an object; got {type(raw).__name__}")
        if len(set(out.values())) != len(out):
            raise QueryError(f"suffixes must differ between tables; got {out}")
        return out

    # -- filters
    def _where(self) -> list[str]:
        clauses: list[str] = []
        for key, kind in FILTER_KINDS.items():
            outer = _as_dict(self.body.get(key), key)
            for table_key, inner in outer.items():
                inner = _as_dict(inner, f"{key}.{table_key}")
                for column, value in inner.items():
                    if not isinstance(column, str):
                        raise QueryError(f"'{key}': column names must be strings")
                    src = self._source_for(table_key, column, key)
                    clauses.append(self._clause(kind, src, column, value, key))
        return clauses

    def _scalar_col(self, src: Source, column: str, filter_name: str) -> tuple[str, str]:
        if column in src.points:
            raise QueryError(f"'{filter_name}': '{column}' is a position; filter it with "
                             f"filter_spatial_dict or use '{column}_x'/'_y'/'_z'")
        if column not in src.types:
            raise QueryError(f"'{filter_name}': column '{shown(column)}' does not exist in table "
                             f"'{src.name}'{suggest(column, src.logical_columns())}")
        return f"{src.alias}.{qident(column)}", column_kind(src.types[column])

    def _clause(self, kind: str, src: Source, column: str, value: Any, fname: str) -> str:
        if kind == "spatial":
            return self._spatial(src, column, value, fname)
        col_sql, ckind = self._scalar_col(src, column, fname)
        if kind in ("in", "notin"):
            if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
                raise QueryError(f"'{fname}': the value for '{column}' must be a list; "
                                 f"got {type(value).__name__}")
            # repeats are dropped before the bound (and before they reach the SQL text)
            vals = list(dict.fromkeys(_coerce(v, ckind, column, src.name)
                                      for v in value if v is not None))
            if len(vals) > self.max_values:
                raise TooMany(f"'{fname}': {len(vals)} distinct values for '{column}'; this "
                              f"server takes at most {self.max_values} per column (serve "
                              f"--max-ids); split the query")
            has_null = any(v is None for v in value)
            if not vals:
                inner = "FALSE"
            else:
                inner = f"{col_sql} IN ({', '.join(_literal(v, self.params) for v in vals)})"
            if has_null:
                inner = f"({inner} OR {col_sql} IS NULL)"
            return inner if kind == "in" else f"NOT coalesce({inner}, FALSE)"
        if kind == "equal":
            if value is None:
                return f"{col_sql} IS NULL"
            if isinstance(value, list | dict):
                raise QueryError(f"'{fname}': the value for '{column}' must be a single value; "
                                 f"use filter_in_dict for lists")
            return f"{col_sql} = {_literal(_coerce(value, ckind, column, src.name), self.params)}"
        if kind in _COMPARE:
            if ckind not in ("int", "float", "ts"):
                raise QueryError(f"'{fname}': '{column}' is not numeric; inequality filters need "
                                 f"a number or time column")
            if value is None or isinstance(value, list | dict):
                raise QueryError(f"'{fname}': the value for '{column}' must be a single value")
            if ckind == "int" and isinstance(value, float) and math.isfinite(value) \
                    and not value.is_integer():
                # compare an integer column with a fractional bound exactly, in integers
                value = math.floor(value) if kind in ("greater", "less_equal") else \
                    math.ceil(value)
                value = _clamp_int(value)
            lit = _literal(_coerce(value, ckind, column, src.name), self.params)
            return f"{col_sql} {_COMPARE[kind]} {lit}"
        if kind == "regex":
            if ckind != "str":
                raise QueryError(f"'{fname}': '{column}' is not a string column")
            if not isinstance(value, str):
                raise QueryError(f"'{fname}': the pattern for '{column}' must be a string")
            if len(value) > 10_000:
                raise QueryError(f"'{fname}': pattern too long")
            self.params.append(value)
            return f"regexp_matches({col_sql}, ?)"
        raise QueryError(f"unknown filter kind {kind}")  # pragma: no cover

    def _spatial(self, src: Source, column: str, value: Any, fname: str) -> str:
        point = column if column.endswith("_position") else f"{column}_position"
        if point not in src.points:
            raise QueryError(f"'{fname}': '{column}' is not a position column of '{src.name}'"
                             f"{suggest(column, src.points)}")
        ok = (isinstance(value, list | tuple) and len(value) == 2
              and all(isinstance(c, list | tuple) and len(c) == 3 for c in value))
        if ok:
            nums = [v for c in value for v in c]
            ok = all(not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)
                     for v in nums)
        if not ok:
            raise QueryError(f"'{fname}': the bounding box for '{column}' must be "
                             f"[[min_x, min_y, min_z], [max_x, max_y, max_z]] in voxels; "
                             f"got {value!r:.120}")
        lo, hi = value
        parts = []
        for axis, a, b in zip("xyz", lo, hi, strict=True):
            name = f"{point}_{axis}"
            col = f"{src.alias}.{qident(name)}"
            if column_kind(src.types[name]) == "int":
                # integer bounds keep the comparison on the stored type (parquet pushdown):
                # x >= a  <=>  x >= ceil(a),  x < b  <=>  x < ceil(b)
                a_lit, b_lit = str(_clamp_int(math.ceil(a))), str(_clamp_int(math.ceil(b)))
            else:
                a_lit, b_lit = _literal(float(a), self.params), _literal(float(b), self.params)
            parts.append(f"{col} >= {a_lit} AND {col} < {b_lit}")
        return "(" + " AND ".join(parts) + ")"

    # -- select list
    def _selected(self) -> dict[str, list[str]]:
        """Logical columns to return per table, in output order within the table."""
        chosen = {s.name: s.logical_columns() for s in self.sources}
        cmap = self.body.get("select_column_map")
        clist = self.body.get("select_columns")
        if isinstance(clist, dict) and cmap is None:
            cmap, clist = clist, None
        if cmap is not None:
            cmap = _as_dict(cmap, "select_column_map")
            picked: dict[str, list[str]] = {s.name: [] for s in self.sources}
            for tname, cols in cmap.items():
                if tname not in self.by_name:
                    raise QueryError(f"'select_columns' names table '{shown(tname)}', which is not part "
                                     f"of this query{suggest(tname, list(self.by_name))}")
                if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
                    raise QueryError("'select_columns' must map table names to lists of names")
                src = self.by_name[tname]
                for c in cols:
                    if not src.has(c):
                        raise QueryError(f"select_columns: column '{shown(c)}' does not exist in table "
                                         f"'{tname}'{suggest(c, src.logical_columns())}")
                    if c not in picked[tname]:
                        picked[tname].append(c)
            for s in self.sources:  # tables not named in the map keep all their columns
                if s.name not in cmap:
                    picked[s.name] = chosen[s.name]
            return picked
        if clist is not None:
            if not isinstance(clist, list) or not all(isinstance(c, str) for c in clist):
                raise QueryError("'select_columns' must be a list of column names")
            if not clist:
                raise QueryError("'select_columns' is empty")
            picked = {s.name: [] for s in self.sources}
            for c in clist:
                owners = [s for s in self.sources if s.has(c)]
                if not owners:
                    all_cols = sorted({x for s in self.sources for x in s.logical_columns()})
                    raise QueryError(f"select_columns: column '{shown(c)}' does not exist in "
                                     f"{' or '.join(s.name for s in self.sources)}"
                                     f"{suggest(c, all_cols)}")
                for s in owners:
                    if c not in picked[s.name]:
                        picked[s.name].append(c)
            return picked
        return chosen

    def _select_list(self, selected: dict[str, list[str]],
                     desired_res: tuple[float, float, float] | None,
                     out_res: tuple[float, float, float]) -> tuple[str, list[str]]:
        """The SELECT expressions and output column names.

        Joins put the unsuffixed table first and all positions last; positions are scaled
        to ``out_res`` when it differs from a table's voxel resolution.
        """
        order = list(self.sources)
        if len(order) > 1:
            order.sort(key=lambda s: self.suffixes[s.name] != "")
        logical_names: dict[str, int] = {}
        for s in self.sources:
            for c in selected[s.name]:
                logical_names[c] = logical_names.get(c, 0) + 1
        scalar_parts: list[str] = []
        point_parts: list[str] = []
        out_names: list[str] = []
        for s in order:
            suffix = self.suffixes[s.name]
            scale = None
            if desired_res is not None or s.voxel_resolution != out_res:
                scale = [vr / dr for vr, dr in zip(s.voxel_resolution, out_res, strict=True)]
            for c in selected[s.name]:
                name = c + suffix if logical_names[c] > 1 else c
                if c in s.points:
                    for i, axis in enumerate("xyz"):
                        col = f"{s.alias}.{qident(f'{c}_{axis}')}"
                        expr = col if scale is None else f"({col} * {scale[i]!r})::DOUBLE"
                        part = f"{expr} AS {qident(f'{name}_{axis}')}"
                        (point_parts if len(order) > 1 else scalar_parts).append(part)
                        out_names.append(f"{name}_{axis}")
                else:
                    scalar_parts.append(f"{s.alias}.{qident(c)} AS {qident(name)}")
                    out_names.append(name)
        if len(set(out_names)) != len(out_names):
            raise QueryError("the suffixes leave duplicate column names in the result")
        return ", ".join(scalar_parts + point_parts), out_names

    def _from_clause(self) -> str:
        """The FROM expression: the first source, sampled if asked, joined with the others."""
        first = self.sources[0]
        if self.random_sample and first.register:
            # a sample is drawn from the whole table before the filters: read the file
            first.from_sql, first.register = first.file_sql or first.from_sql, {}
        from_sql = f"{first.from_sql} AS {first.alias}"
        if self.random_sample:
            from_sql += f" TABLESAMPLE reservoir({int(self.random_sample)} ROWS) REPEATABLE (42)"
        for s in self.sources[1:]:
            if not first.join_column or not s.join_column:
                raise QueryError("join queries need a join column for every table")
            for t, col in ((first, first.join_column), (s, s.join_column)):
                if col not in t.types:
                    raise QueryError(f"join column '{col}' does not exist in table '{t.name}'"
                                     f"{suggest(col, t.column_order)}")
            from_sql += (f" JOIN {s.from_sql} AS {s.alias} ON {first.alias}."
                         f"{qident(first.join_column)} = {s.alias}.{qident(s.join_column)}")
        return from_sql

    def build(self) -> BuiltQuery:
        """The SQL of the query, with what the response needs to know about it."""
        body = self.body
        page = ""
        if self.max_limit is not None:
            page = (f" (the server's most rows per response, serve --max-rows; page through "
                    f"larger results with limit={self.max_limit} and offset=0, "
                    f"{self.max_limit}, {2 * self.max_limit}, ...)")
        limit = _int_arg(body, "limit", 1, self.max_limit, page)
        offset = _int_arg(body, "offset", 0, MAX_OFFSET) or 0
        desired = body.get("desired_resolution")
        desired_res = parse_resolution(desired) if desired is not None else None
        out_res = desired_res or self.sources[0].voxel_resolution
        where = self._where()
        selected = self._selected()
        select_sql, out_names = self._select_list(selected, desired_res, out_res)
        from_sql = self._from_clause()
        first = self.sources[0]
        where_sql = f" WHERE {' AND '.join(where)}" if where else ""
        register = {k: v for s in self.sources for k, v in s.register.items()}
        if self.count_only:
            sql = f"SELECT count(*)::BIGINT AS count FROM {from_sql}{where_sql}"
            return BuiltQuery(sql, self.params, out_res, None, 0, self.row_cap, True, ["count"],
                              register)
        order_sql = ""
        if self.order_by_id and "id" in first.types:
            order_sql = f" ORDER BY {first.alias}.{qident('id')}"
        cap = self.row_cap if limit is None else min(limit, self.row_cap)
        # fetch one row more than the cap to know whether the result was truncated
        fetch = cap + 1 if (limit is None or limit > self.row_cap) else cap
        sql = (f"SELECT {select_sql} FROM {from_sql}{where_sql}{order_sql} "
               f"LIMIT {fetch} OFFSET {offset}")
        return BuiltQuery(sql, self.params, out_res, limit, offset, self.row_cap, False, out_names,
                          register)
