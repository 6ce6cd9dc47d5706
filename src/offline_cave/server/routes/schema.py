"""Schema service (global server): annotation schema names and JSON definitions.

The definitions come from :class:`offline_cave.server.data.schemas.SchemaCatalog`
(``app.state.schema_catalog``).
"""

from __future__ import annotations

from starlette.responses import Response

from offline_cave.server.http import Req, endpoint, json_response


@endpoint
def versions(req: Req) -> Response:
    """The schema API versions served."""
    return json_response([1, 2])


@endpoint
def type_list(req: Req) -> Response:
    """Every schema name."""
    return json_response(list(req.schema_catalog.all()))


@endpoint
def type_one(req: Req) -> Response:
    """One schema's JSON definition."""
    return json_response(req.schema_catalog.get(req.path_params["name"]))


@endpoint
def types_all(req: Req) -> Response:
    """Every schema name -> definition."""
    return json_response(req.schema_catalog.all())


@endpoint
def types_multi(req: Req) -> Response:
    """The definitions of ``schema_names=a,b,...``."""
    names = [n for n in req.query.get("schema_names", "").split(",") if n]
    return json_response({n: req.schema_catalog.get(n) for n in names})


ROUTES = [
    ("schema.versions", versions, ["GET"]),
    ("schema.api_versions", versions, ["GET"]),
    ("schema.type_list", type_list, ["GET"]),
    ("schema.types_all", types_all, ["GET"]),
    ("schema.types", types_multi, ["GET", "POST"]),
    ("schema.type", type_one, ["GET"]),
]
"""(endpoint name, handler, methods) of the schema service."""
