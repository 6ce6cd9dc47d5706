"""Level-2 cache (``/l2cache``): the table mapping, the attribute list and per-node attributes.

``get_l2data`` POSTs ``{"l2_ids": [...]}`` (no Content-Type) with ``attribute_names=a,b`` and
``int64_as_str``; the answer is ``{"<l2 id>": {attribute: value}}``, ``{}`` for a level-2 node
without cache data (the sample has cache data for some cells only: see ``data/level2.py``).
"""

from __future__ import annotations

from starlette.responses import Response

from offline_cave.server.data.level2 import ATTRIBUTE_DTYPES, level2_store
from offline_cave.server.http import Req, bad_request, endpoint, json_response, parse_id_list


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
    """Attribute name -> data type."""
    return json_response(ATTRIBUTE_DTYPES)


def _names(req: Req) -> list[str] | None:
    text = req.query.get("attribute_names")
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise bad_request("'attribute_names' is empty")
    return list(dict.fromkeys(names))


@endpoint
def attributes(req: Req) -> Response:
    """The attributes of the level-2 ids of the body."""
    ds = req.registry.by_table_id(req.path_params["tid"])
    body = req.json_body(required=True)
    if not isinstance(body, dict) or "l2_ids" not in body:
        raise bad_request("the body must be a JSON object with 'l2_ids'")
    ids = list(dict.fromkeys(parse_id_list(body["l2_ids"], "'l2_ids'", req.limits.max_ids)))
    return json_response(level2_store(ds).attributes(ids, _names(req)))


ROUTES = [
    ("l2cache.table_mapping", table_mapping, ["GET"]),
    ("l2cache.attribute_metadata", attribute_metadata, ["GET"]),
    ("l2cache.attributes", attributes, ["GET", "POST"]),
]
"""(endpoint name, handler, methods) of the level-2 cache."""
