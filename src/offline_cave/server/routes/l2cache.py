"""Level-2 cache: only the table mapping (the skeleton client's precondition).

The sample has no level-2 chunk data, so attribute requests answer an explanatory 404 instead
of inventing values.
"""

from __future__ import annotations

from starlette.responses import Response

from offline_cave.server.http import Req, endpoint, json_response, not_found


@endpoint
def table_mapping(req: Req) -> Response:
    """Chunkedgraph table (and datastack) name -> level-2 cache table name."""
    out = {}
    for ds in req.registry.datastacks.values():
        out[ds.pcg_table] = f"{ds.pcg_table}_l2"
        out.setdefault(ds.name, f"{ds.pcg_table}_l2")
    return json_response(out)


@endpoint
def attribute_metadata(req: Req) -> Response:
    """No level-2 attributes are described."""
    return json_response({})


@endpoint
def attributes(req: Req) -> Response:
    """Always 404: level-2 attributes are not part of the sample."""
    req.registry.by_table_id(req.path_params["tid"])
    raise not_found("level-2 cache attributes are not part of the offline sample "
                    "(skeletons come from the skeleton service instead)")


ROUTES = [
    ("l2cache.table_mapping", table_mapping, ["GET"]),
    ("l2cache.attribute_metadata", attribute_metadata, ["GET"]),
    ("l2cache.attributes", attributes, ["GET", "POST"]),
]
"""(endpoint name, handler, methods) of the level-2 cache."""
