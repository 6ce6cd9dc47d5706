"""Level-2 answers of the chunkedgraph: the level-2 chunk graph of a root (pcg_skel's
``level2_chunk_graph``) and the ``stop_layer=2`` variants of root and leaf lookups, which
:mod:`offline_cave.server.routes.chunkedgraph` hands over here."""

from __future__ import annotations

import numpy as np
from starlette.responses import Response

from offline_cave.server.data.level2 import level2_store
from offline_cave.server.data.store import Datastack
from offline_cave.server.http import Req, bad_request, endpoint, json_response, parse_int


def level2_of(ds: Datastack, svids: np.ndarray, t: float) -> np.ndarray:
    """Level-2 node of each supervoxel (``get_roots(..., stop_layer=2)``); 0 where unknown."""
    return level2_store(ds).l2_of_supervoxels(svids, t)


def resolve_roots(ds: Datastack, ids: np.ndarray, t: float) -> np.ndarray:
    """Root at ``t`` of supervoxels, level-2 nodes and roots (0 where unknown)."""
    out = ds.segments.resolve_roots(ids, t)
    is_l2 = (np.asarray(ids, dtype=np.int64) >> 56) == 2
    if is_l2.any():
        out[is_l2] = level2_store(ds).roots_of(ids[is_l2], t)
    return out


def level2_leaves(ds: Datastack, roots: list[int], bounds: tuple | None) -> dict[int, list[int]]:
    """Level-2 nodes of each root (``get_leaves(root, stop_layer=2)``)."""
    if bounds is not None:
        raise bad_request("bounds with stop_layer=2 are not supported by the offline sample")
    store = level2_store(ds)
    return {int(r): store.leaves(int(r)).tolist() for r in roots}


@endpoint
def lvl2_graph(req: Req) -> Response:
    """``{"edge_graph": [[l2a, l2b], ...]}``: the level-2 chunk graph of a root."""
    ds = req.registry.by_table_id(req.path_params["tid"])
    root = parse_int(req.path_params["node"], "root id")
    if req.query.get("bounds"):
        raise bad_request("'bounds' is not supported by the offline sample's level-2 graph")
    edges = level2_store(ds).chunk_graph(root)
    return json_response({"edge_graph": edges.tolist()})


ROUTES = [
    ("chunkedgraph.lvl2_graph", lvl2_graph, ["GET"]),
]
"""(endpoint name, handler, methods) of the level-2 chunk graph."""
