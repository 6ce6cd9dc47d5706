"""Schema service (global server): annotation schema names and JSON definitions."""

from __future__ import annotations

import threading

from starlette.routing import Route

from offline_cave.server.data import schemas
from offline_cave.server.data.query import suggest
from offline_cave.server.data.store import Registry
from offline_cave.server.http import Req, endpoint, json_response, not_found


class SchemaCatalog:
    """Built-in schema definitions plus definitions derived for unknown schema names."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._all: dict[str, dict] | None = None

    def all(self) -> dict[str, dict]:
        with self._lock:
            if self._all is None:
                out = {name: schemas.schema_definition(name) for name in schemas.known_schema_names()}
                for ds in self.registry.datastacks.values():
                    for meta in ds.tables.values():
                        name = meta.get("schema") or meta.get("schema_type")
                        if name and name not in out:
                            out[name] = schemas.definition_from_columns(
                                name, meta.get("columns") or [])
                self._all = dict(sorted(out.items()))
            return self._all

    def get(self, name: str) -> dict:
        catalog = self.all()
        if name not in catalog:
            raise not_found(f"schema '{name}' does not exist{suggest(name, list(catalog))}")
        return catalog[name]


def routes(registry: Registry) -> list[Route]:
    catalog = SchemaCatalog(registry)
    registry.schema_catalog = catalog  # type: ignore[attr-defined]

    @endpoint
    def versions(req: Req):
        return json_response([1, 2])

    @endpoint
    def type_list(req: Req):
        return json_response(list(catalog.all()))

    @endpoint
    def type_one(req: Req):
        return json_response(catalog.get(req.path_params["name"]))

    @endpoint
    def types_all(req: Req):
        return json_response(catalog.all())

    @endpoint
    def types_multi(req: Req):
        names = [n for n in req.query.get("schema_names", "").split(",") if n]
        return json_response({n: catalog.get(n) for n in names})

    base = "/schema/api/v2"
    return [
        Route("/schema/versions", versions),
        Route("/schema/api/versions", versions),
        Route(f"{base}/type", type_list),
        Route(f"{base}/types_all", types_all),
        Route(f"{base}/types", types_multi, methods=["GET", "POST"]),
        Route(f"{base}/type/{{name}}", type_one),
    ]
