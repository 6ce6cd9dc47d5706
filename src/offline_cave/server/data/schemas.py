"""EMAnnotationSchemas-like JSON definitions for the annotation schemas used by the samples.

The schema service (``{G}/schema/api/v2/type/{name}``) returns, for every schema, a JSON-schema
dict of the shape caveclient's TableManager parses::

    {"$ref": "#/definitions/<Name>",
     "definitions": {"<Name>": {"type": "object", "properties": {...}, "required": [...]},
                     "BoundSpatialPoint": {...}, "SpatialPoint": {...}}}

The fields of every schema are listed in :mod:`offline_cave.contract.catalog`; field kinds
follow EMAnnotationSchemas (datasets-facts §2.0): a *bound* spatial point ``P`` becomes
the columns ``P_position`` (voxels), ``P_supervoxel_id`` and ``P_root_id``; a plain spatial
point only ``P_position``; scalars keep their name. Floats are ``{"type": "number",
"format": "float"}`` (TableManager ignores a bare ``number``), integers ``{"type": "integer"}``.

Schemas that are not listed here are derived from a table's parquet columns by
:func:`definition_from_columns`, so an unknown schema name in ``tables.json`` still works.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from offline_cave.contract.catalog import BOOL, BOUND, FLOAT, INT, SCHEMA_FIELDS, SPATIAL, STR
from offline_cave.server.data.errors import MissingSchema
from offline_cave.server.data.query import suggest

if TYPE_CHECKING:
    from offline_cave.server.data.store import Registry

_SPATIAL_POINT = {"type": "object", "properties": {
    "position": {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3,
                 "description": "spatial position in voxels"}}}
_BOUND_SPATIAL_POINT = {"type": "object", "properties": {
    "position": {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3,
                 "description": "spatial position in voxels"},
    "supervoxel_id": {"type": ["integer", "null"]},
    "root_id": {"type": ["integer", "null"]}}}

_SCALAR = {INT: {"type": "integer"}, FLOAT: {"type": "number", "format": "float"},
           STR: {"type": "string"}, BOOL: {"type": "boolean"}}


def class_name(schema_name: str) -> str:
    """CamelCase definition name for a schema, e.g. ``cell_type_reference`` -> ``CellTypeReference``."""
    parts = re.split(r"[^0-9A-Za-z]+", schema_name)
    name = "".join(p[:1].upper() + p[1:] for p in parts if p)
    return name or "Annotation"


def build_definition(schema_name: str, fields: Iterable[tuple[str, str]]) -> dict:
    """JSON-schema dict for ``fields`` (ordered ``(name, kind)`` pairs)."""
    props: dict[str, dict] = {}
    required = []
    for name, kind in fields:
        if kind == BOUND:
            props[name] = {"type": "object", "$ref": "#/definitions/BoundSpatialPoint"}
            required.append(name)
        elif kind == SPATIAL:
            props[name] = {"type": "object", "$ref": "#/definitions/SpatialPoint"}
        else:
            props[name] = dict(_SCALAR[kind])
    props["valid"] = {"type": ["boolean", "null"], "default": True}
    cname = class_name(schema_name)
    return {"$schema": "http://json-schema.org/draft-07/schema#",
            "$ref": f"#/definitions/{cname}",
            "definitions": {
                cname: {"type": "object", "properties": props, "required": required,
                        "additionalProperties": True},
                "BoundSpatialPoint": _BOUND_SPATIAL_POINT,
                "SpatialPoint": _SPATIAL_POINT}}


_SKIP_COLUMNS = {"id", "created", "deleted", "superceded_id", "valid"}


def _kind_of_arrow(type_str: str) -> str | None:
    t = type_str.lower()
    if t.startswith(("int", "uint")):
        return INT
    if t in ("double", "float", "halffloat") or t.startswith(("float", "decimal")):
        return FLOAT
    if t in ("string", "large_string", "utf8", "large_utf8"):
        return STR
    if t in ("bool", "boolean"):
        return BOOL
    return None


def fields_from_columns(columns: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Recover schema fields from stored columns ``[(name, arrow_type_str), ...]``.

    ``P_position_x/_y/_z`` become a point ``P``; it is *bound* if ``P_root_id`` exists.
    """
    cols = [(str(n), str(t)) for n, t in columns]
    names = {n for n, _ in cols}
    out: list[tuple[str, str]] = []
    used: set[str] = set()
    for name, typ in cols:
        if name in used or name in _SKIP_COLUMNS:
            continue
        m = re.fullmatch(r"(.+)_position_[xyz]", name)
        if m:
            prefix = m.group(1)
            for a in "xyz":
                used.add(f"{prefix}_position_{a}")
            if f"{prefix}_root_id" in names:
                used.update({f"{prefix}_root_id", f"{prefix}_supervoxel_id"})
                out.append((prefix, BOUND))
            else:
                out.append((prefix, SPATIAL))
            continue
        m = re.fullmatch(r"(.+)_(root_id|supervoxel_id)", name)
        if m and f"{m.group(1)}_position_x" in names:
            continue
        kind = _kind_of_arrow(typ)
        if kind is not None:
            out.append((name, kind))
            used.add(name)
    return out


def definition_from_columns(schema_name: str, columns: Iterable[tuple[str, str]]) -> dict:
    """Schema definition derived from a table's stored columns (for unknown schema names)."""
    return build_definition(schema_name, fields_from_columns(columns))


def known_schema_names() -> list[str]:
    """Names of the built-in schemas, sorted."""
    return sorted(SCHEMA_FIELDS)


def schema_definition(schema_name: str) -> dict | None:
    """The built-in definition of ``schema_name`` or None if it is not built in."""
    fields = SCHEMA_FIELDS.get(schema_name)
    if fields is None:
        return None
    return build_definition(schema_name, fields)


class SchemaCatalog:
    """Built-in schema definitions plus definitions derived for unknown schema names."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._all: dict[str, dict] | None = None

    def all(self) -> dict[str, dict]:
        """Every schema name -> definition, sorted by name (built once)."""
        with self._lock:
            if self._all is None:
                out = {name: schema_definition(name) for name in known_schema_names()}
                for ds in self.registry.datastacks.values():
                    for meta in ds.tables.values():
                        name = meta.get("schema") or meta.get("schema_type")
                        if name and name not in out:
                            out[name] = definition_from_columns(name, meta.get("columns") or [])
                self._all = dict(sorted(out.items()))
            return self._all

    def get(self, name: str) -> dict:
        """One definition, or :class:`MissingSchema` with a close-match suggestion."""
        catalog = self.all()
        if name not in catalog:
            raise MissingSchema(f"schema '{name}' does not exist{suggest(name, list(catalog))}")
        return catalog[name]
