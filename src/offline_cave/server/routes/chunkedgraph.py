"""PyChunkedGraph emulation (``/segmentation``): roots, leaves, timestamps, lineage.

Times in query strings are unix seconds (floats); the client also sends ISO strings in a few
places, both are accepted. Ids are int64 with the layer in the top byte
(``id >> 56``: 1 supervoxel, ``N_LAYERS`` root).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

import numpy as np
from starlette.responses import Response

from offline_cave.contract import layout
from offline_cave.server.data.chunkedgraph import MAX_LOG_ROOTS, SegmentStore
from offline_cave.server.data.errors import shown
from offline_cave.server.data.imagery import imagery_of
from offline_cave.server.data.store import Datastack
from offline_cave.server.http import (
    Req,
    bad_request,
    check_id_count,
    endpoint,
    json_response,
    not_found,
    parse_id_list,
    parse_int,
)
from offline_cave.server.routes.level2 import level2_leaves, level2_of, resolve_roots

PCG_VERSION = "2.21.0"
SPATIAL_BIT_MASKS = {"1": 10, "2": 10, "3": 9, "4": 8, "5": 7, "6": 6, "7": 5, "8": 4, "9": 3,
                     "10": 2, "11": 1, "12": 1}


def layer_of(node_id: int) -> int:
    """The chunkedgraph layer of an id (its top byte)."""
    return (int(node_id) >> layout.ROOT_LAYER_SHIFT) & 0xFF


def graphene_info(ds: Datastack, base: str) -> dict:
    """The graphene segmentation info (also read by cloud-volume's graphene:// source)."""
    info = ds.info
    base_res = [int(v) for v in (info.get("base_resolution") or [8, 8, 40])]
    chunk = [int(v) for v in (info.get("chunk_size") or [256, 256, 512])]
    # the supervoxel chunks on disk (the sample's imaged region), else the graph's chunks
    stored = imagery_of(ds).chunk_size("ws") or chunk
    offset = [int(v) for v in (info.get("chunk_offset_vx") or [0, 0, 0])]
    vres = ds.viewer_resolution
    bounds = info.get("segmentation_bounds_vx") or [[0, 0, 0], [offset[0] * 4, offset[1] * 4,
                                                                offset[2] + 1024]]
    end = [int(bounds[1][i] * vres[i] / base_res[i]) for i in range(3)]
    size = [max(1, end[i] - offset[i]) for i in range(3)]
    return {
        "app": {"supported_api_versions": [0, 1]},
        "chunks_start_at_voxel_offset": True,
        "data_dir": f"{base}/seg/{ds.name}",
        "data_type": "uint64", "num_channels": 1, "type": "segmentation",
        "graph": {"bounding_box": [2048, 2048, 512], "chunk_size": chunk, "cv_mip": 0,
                  "n_bits_for_layer_id": 8, "n_layers": layout.N_LAYERS, "fan_out": 2,
                  "spatial_bit_masks": SPATIAL_BIT_MASKS},
        "mesh": "mesh", "skeletons": "skeletons",
        "mesh_metadata": {"uniform_draco_grid_size": 21, "unsharded_mesh_dir": "dynamic",
                          "max_meshed_layer": layout.N_LAYERS},
        "scales": _ws_scales({"key": "_".join(str(v) for v in base_res),
                              "resolution": base_res, "size": size, "voxel_offset": offset,
                              "chunk_sizes": [stored], "encoding": "raw"}, ds),
        "verify_mesh": False,
    }


def _ws_scales(base: dict, ds: Datastack) -> list[dict]:
    """The watershed scales: the sample's imagery mips where it has imagery (mip 0 first),
    else the one base scale."""
    return imagery_of(ds).info_scales(base, "raw") or [base]


def _node_ids(req: Req, key: str = "node_ids") -> list[int]:
    """The id list of a required JSON body: ``{key: [...]}`` or a bare list."""
    body = req.json_body(required=True)
    if isinstance(body, dict):
        if key not in body:
            raise bad_request(f"the body must be a JSON object with '{key}'")
        return parse_id_list(body[key], f"'{key}'", req.limits.max_ids)
    if isinstance(body, list):
        return parse_id_list(body, "the id list", req.limits.max_ids)
    raise bad_request(f"the body must be a JSON object with '{key}'")


def _bounds(req: Req) -> tuple | None:
    """The ``bounds=x0-x1_y0-y1_z0-z1`` query parameter (base voxels), or None."""
    text = req.query.get("bounds")
    if not text:
        return None
    m = re.fullmatch(r"(-?\d+)-(-?\d+)_(-?\d+)-(-?\d+)_(-?\d+)-(-?\d+)", text.strip())
    if not m:
        raise bad_request("'bounds' must look like x0-x1_y0-y1_z0-z1 (base voxels)")
    v = [int(g) for g in m.groups()]
    return ((v[0], v[1]), (v[2], v[3]), (v[4], v[5]))


def _now_or(req: Req, key: str) -> float:
    """A time query parameter, now when absent."""
    value = req.qtime(key)
    return time.time() if value is None else value


def store(req: Req) -> tuple[Datastack, SegmentStore]:
    """The datastack of the ``{tid}`` path parameter and its chunkedgraph."""
    ds = req.registry.by_table_id(req.path_params["tid"])
    return ds, ds.segments


def check_stop_layer(req: Req) -> int | None:
    """The ``stop_layer`` asked for: 2 (level-2 nodes) or none; 400 for the other layers
    between supervoxels and roots (the sample has no such layer)."""
    stop = req.qint("stop_layer")
    if stop is not None and stop < layout.N_LAYERS and stop not in (1, 2):
        raise bad_request(f"stop_layer={stop}: intermediate chunkedgraph layers above 2 are "
                          f"not part of the offline sample (only supervoxels, level-2 nodes "
                          f"and roots exist)")
    return 2 if stop == 2 else None


def _root_ids_body(req: Req) -> list[int]:
    """The ``root_ids`` list of a required JSON object body."""
    body = req.json_body(required=True)
    if not isinstance(body, dict) or "root_ids" not in body:
        raise bad_request("the body must be a JSON object with 'root_ids'")
    return list(dict.fromkeys(parse_id_list(body["root_ids"], "'root_ids'",
                                            req.limits.max_ids)))


def _required_past(req: Req) -> float:
    """The required ``timestamp_past`` query parameter."""
    t_past = req.qtime("timestamp_past")
    if t_past is None:
        raise bad_request("'timestamp_past' is required")
    return t_past


def _require_root(ds: Datastack, seg: SegmentStore, root: int) -> None:
    """404 unless ``root`` is a root of the chunkedgraph."""
    if not seg.exists(np.array([root]))[0]:
        raise not_found(f"root id {root} does not exist in {ds.pcg_table}")


def _window(req: Req) -> tuple[float | None, float | None]:
    """``timestamp_past`` and ``timestamp_future`` (either may be absent); 400 if the past is
    after the future."""
    past, future = req.qtime("timestamp_past"), req.qtime("timestamp_future")
    if past is not None and future is not None and past > future:
        raise bad_request(f"timestamp_past ({datetime.fromtimestamp(past, UTC).isoformat()}) "
                          f"is after timestamp_future "
                          f"({datetime.fromtimestamp(future, UTC).isoformat()})")
    return past, future


def _log_roots(req: Req, seg: SegmentStore, ids: list[int]) -> list[int]:
    """The roots of a change-log request: at most MAX_LOG_ROOTS, each a root of the graph."""
    check_id_count(len(set(ids)), "'root_ids' of a change log",
                   min(req.limits.max_ids, MAX_LOG_ROOTS))
    seg.require_roots(ids)
    return ids


@endpoint
def api_versions(req: Req) -> Response:
    """The chunkedgraph API versions served."""
    return json_response([0, 1])


@endpoint
def version(req: Req) -> Response:
    """The emulated PyChunkedGraph version."""
    return json_response(PCG_VERSION)


@endpoint
def info(req: Req) -> Response:
    """The graphene segmentation info."""
    ds = req.registry.by_table_id(req.path_params["tid"])
    return json_response(graphene_info(ds, req.base_url))


@endpoint
def roots_binary(req: Req) -> Response:
    """Roots of little-endian uint64 ids at ``timestamp`` (now by default), as uint64 bytes."""
    ds, seg = store(req)
    stop = check_stop_layer(req)
    if len(req.body) % 8:
        raise bad_request(f"roots_binary needs little-endian uint64 ids; got {len(req.body)} "
                          f"bytes (not a multiple of 8)")
    svids = np.frombuffer(req.body, dtype="<u8").astype(np.int64)
    unique, inverse = np.unique(svids, return_inverse=True)
    check_id_count(len(unique), "roots_binary", req.limits.max_ids)
    if stop == 2:
        roots = level2_of(ds, unique, _now_or(req, "timestamp"))[inverse]
    else:
        roots = resolve_roots(ds, unique, _now_or(req, "timestamp"))[inverse]
    return Response(roots.astype("<u8").tobytes(), media_type="application/octet-stream")


@endpoint
def roots_json(req: Req) -> Response:
    """Roots of a JSON id list at ``timestamp`` (now by default)."""
    ds, seg = store(req)
    stop = check_stop_layer(req)
    ids = np.asarray(_node_ids(req), dtype=np.int64)
    unique, inverse = np.unique(ids, return_inverse=True)  # repeats are looked up once
    resolve = level2_of if stop == 2 else resolve_roots
    roots = resolve(ds, unique, _now_or(req, "timestamp"))[inverse]
    return json_response({"root_ids": roots.tolist()})


@endpoint
def node_root(req: Req) -> Response:
    """The root of one node at ``timestamp`` (404 if it has none then)."""
    ds, seg = store(req)
    stop = check_stop_layer(req)
    node = parse_int(req.path_params["node"], "node id")
    t = _now_or(req, "timestamp")
    resolve = level2_of if stop == 2 else resolve_roots
    root = int(resolve(ds, np.array([node], np.int64), t)[0])
    if root == 0:
        raise not_found(f"node {node} is not a supervoxel or root of {ds.pcg_table} at "
                        f"{datetime.fromtimestamp(t, UTC).isoformat()}")
    return json_response({"root_id": root})


@endpoint
def root_timestamps(req: Req) -> Response:
    """Creation times of roots, or with ``latest`` the last time each was current."""
    ds, seg = store(req)
    ids = np.asarray(_node_ids(req), dtype=np.int64)
    seg.require_roots(ids.tolist())
    created = seg.created_of(ids)
    if req.qbool("latest"):
        t = _now_or(req, "timestamp")
        bad = ids[created > t]
        if len(bad):
            raise bad_request(f"root id(s) did not exist yet at the timestamp: "
                              f"{', '.join(str(i) for i in bad[:10])}")
        out = np.minimum(seg.expired_of(ids), t)
    else:
        out = created
    return json_response({"timestamp": [float(x) for x in out]})


@endpoint
def is_latest_roots(req: Req) -> Response:
    """Whether each root is current at ``timestamp`` (now by default)."""
    ds, seg = store(req)
    ids = np.asarray(_node_ids(req), dtype=np.int64)
    return json_response({"is_latest": seg.is_latest(ids, req.qtime("timestamp")).tolist()})


@endpoint
def leaves(req: Req) -> Response:
    """Supervoxels of one root, optionally within ``bounds``."""
    ds, seg = store(req)
    root = parse_int(req.path_params["node"], "root id")
    _require_root(ds, seg, root)
    if req.qint("stop_layer") == 2:  # other layers: supervoxels (suggest_latest_roots)
        return json_response({"leaf_ids": level2_leaves(ds, [root], _bounds(req))[root]})
    return json_response({"leaf_ids": seg.leaves([root], _bounds(req))[root].tolist()})


@endpoint
def leaves_many(req: Req) -> Response:
    """Supervoxels of several roots, optionally within ``bounds``."""
    ds, seg = store(req)
    ids = list(dict.fromkeys(_node_ids(req)))  # the answer is keyed by root: repeats add nothing
    missing = [i for i, ok in zip(ids, seg.exists(np.asarray(ids, np.int64)), strict=True)
               if not ok]
    if missing:
        raise not_found(f"root id(s) not found in {ds.pcg_table}: {missing[:10]}")
    if req.qint("stop_layer") == 2:
        return json_response({str(k): v for k, v in level2_leaves(ds, ids, _bounds(req)).items()})
    out = seg.leaves(ids, _bounds(req))
    return json_response({str(k): v.tolist() for k, v in out.items()})


@endpoint
def lineage_graph(req: Req) -> Response:
    """The lineage graph around several roots (``timestamp`` stands in for the future end)."""
    ds, seg = store(req)
    ids = _root_ids_body(req)
    seg.require_roots(ids)
    past, future = _window(req)
    if future is None:
        future = req.qtime("timestamp")
    return json_response(seg.lineage_graph(ids, past, future))


@endpoint
def lineage_graph_single(req: Req) -> Response:
    """The lineage graph around one root."""
    ds, seg = store(req)
    root = parse_int(req.path_params["node"], "root id")
    seg.require_roots([root])
    return json_response(seg.lineage_graph([root], *_window(req)))


@endpoint
def past_id_mapping(req: Req) -> Response:
    """Each root's ancestors valid at ``timestamp_past``, and the inverse map."""
    ds, seg = store(req)
    ids = _root_ids_body(req)
    seg.require_roots(ids)
    t_past, _ = _window(req)
    past = seg.past_ids(ids, t_past)
    future: dict[str, list[int]] = {}
    for r, ps in past.items():
        for p in ps:
            future.setdefault(str(p), []).append(r)
    return json_response({"past_id_map": {str(k): v for k, v in past.items()},
                          "future_id_map": future})


@endpoint
def valid_nodes(req: Req) -> Response:
    """The ids that are roots created between ``start_timestamp`` and ``end_timestamp``."""
    ds, seg = store(req)
    ids = np.asarray(_node_ids(req), dtype=np.int64)
    start = req.qtime("start_timestamp", -np.inf)
    end = _now_or(req, "end_timestamp")
    created = seg.created_of(ids)
    ok = seg.exists(ids) & (created >= start) & (created <= end)
    return json_response({"valid_roots": ids[ok].tolist()})


@endpoint
def delta_roots(req: Req) -> Response:
    """Roots retired and created between ``timestamp_past`` and ``timestamp_future``."""
    ds, seg = store(req)
    t_past = _required_past(req)
    t_future = _now_or(req, "timestamp_future")
    if t_past > t_future:
        raise bad_request("timestamp_past is after timestamp_future")
    old, new = seg.delta_roots(t_past, t_future)
    return json_response({"old_roots": old, "new_roots": new})


@endpoint
def oldest_timestamp(req: Req) -> Response:
    """The creation time of the oldest root."""
    ds, seg = store(req)
    ts = seg.oldest_timestamp()
    return json_response({"iso": datetime.fromtimestamp(ts, UTC).isoformat()})


@endpoint
def change_log(req: Req) -> Response:
    """The edit summary of one root: merges, splits, per-user counts, operations, past ids."""
    ds, seg = store(req)
    root = parse_int(req.path_params["node"], "root id")
    seg.require_roots([root])
    return json_response(seg.change_log_summary(root, req.qbool("filtered", False)))


@endpoint
def merge_log(req: Req) -> Response:
    """The merges in the history of one root: added edges and the points the user placed."""
    ds, seg = store(req)
    root = parse_int(req.path_params["node"], "root id")
    seg.require_roots([root])
    return json_response(seg.merge_log(root))


@endpoint
def tabular_change_log(req: Req) -> Response:
    """The tabular change log of one root (pandas ``to_json`` of the table)."""
    ds, seg = store(req)
    root = parse_int(req.path_params["node"], "root id")
    seg.require_roots([root])
    return json_response(seg.tabular_change_logs([root], req.qbool("filtered", True))[root])


@endpoint
def tabular_change_log_many(req: Req) -> Response:
    """The tabular change logs of several roots: ``{root: json text of its table}``."""
    ds, seg = store(req)
    ids = _log_roots(req, seg, _root_ids_body(req))
    logs = seg.tabular_change_logs(ids, req.qbool("filtered", True))
    return json_response({str(k): json.dumps(v, separators=(",", ":"))
                          for k, v in logs.items()})


@endpoint
def operation_details(req: Req) -> Response:
    """The log entries of operations given as a JSON list in ``operation_ids``."""
    ds, seg = store(req)
    text = req.query.get("operation_ids", "[]")
    try:
        value = json.loads(text)
    except ValueError:
        raise bad_request(f"'operation_ids' must be a JSON list of integers; got "
                          f"{shown(text, 60)}") from None
    ops = list(dict.fromkeys(parse_id_list(value, "'operation_ids'", req.limits.max_ids)))
    return json_response({str(k): v for k, v in seg.operation_details(ops).items()})


ROUTES = [
    ("chunkedgraph.api_versions", api_versions, ["GET"]),
    ("chunkedgraph.version", version, ["GET"]),
    ("chunkedgraph.graphene_info", info, ["GET"]),
    ("chunkedgraph.info", info, ["GET"]),
    ("chunkedgraph.roots_binary", roots_binary, ["POST"]),
    ("chunkedgraph.roots", roots_json, ["POST"]),
    ("chunkedgraph.leaves_many", leaves_many, ["POST"]),
    ("chunkedgraph.node_root", node_root, ["GET"]),
    ("chunkedgraph.leaves", leaves, ["GET"]),
    ("chunkedgraph.root_timestamps", root_timestamps, ["POST"]),
    ("chunkedgraph.is_latest_roots", is_latest_roots, ["POST"]),
    ("chunkedgraph.lineage_graph_multiple", lineage_graph, ["POST"]),
    ("chunkedgraph.lineage_graph", lineage_graph_single, ["GET"]),
    ("chunkedgraph.change_log", change_log, ["GET"]),
    ("chunkedgraph.merge_log", merge_log, ["GET"]),
    ("chunkedgraph.tabular_change_log", tabular_change_log, ["GET"]),
    ("chunkedgraph.tabular_change_log_many", tabular_change_log_many, ["GET", "POST"]),
    ("chunkedgraph.operation_details", operation_details, ["GET"]),
    ("chunkedgraph.past_id_mapping", past_id_mapping, ["GET", "POST"]),
    ("chunkedgraph.valid_nodes", valid_nodes, ["GET", "POST"]),
    ("chunkedgraph.delta_roots", delta_roots, ["GET"]),
    ("chunkedgraph.oldest_timestamp", oldest_timestamp, ["GET"]),
]
"""(endpoint name, handler, methods) of the chunkedgraph."""
