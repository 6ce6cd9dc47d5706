"""Level-2 cache: only the table mapping (the skeleton client's precondition).

The sample has no level-2 chunk data, so attribute requests answer an explanatory 404 instead
of inventing values.
"""

from __future__ import annotations

from starlette.routing import Route

from offline_cave.server.data.store import Registry
from offline_cave.server.http import Req, endpoint, json_response, not_found


def routes(registry: Registry) -> list[Route]:
    @endpoint
    def table_mapping(req: Req):
        out = {}
        for ds in registry.datastacks.values():
            out[ds.pcg_table] = f"{ds.pcg_table}_l2"
            out.setdefault(ds.name, f"{ds.pcg_table}_l2")
        return json_response(out)

    @endpoint
    def attribute_metadata(req: Req):
        return json_response({})

    @endpoint
    def attributes(req: Req):
        registry.by_table_id(req.path_params["tid"])
        raise not_found("level-2 cache attributes are not part of the offline sample "
                        "(skeletons come from the skeleton service instead)")

    base = "/l2cache/api/v1"
    return [
        Route(f"{base}/table_mapping", table_mapping),
        Route(f"{base}/attribute_metadata", attribute_metadata),
        Route(f"{base}/table/{{tid}}/attributes", attributes, methods=["GET", "POST"]),
    ]
