"""Skeleton service (``/skeletoncache``) serving the stored cell skeletons.

Formats as caveclient 8.2.1 expects them: ``flatdict`` is raw gzip(JSON) bytes and
``swccompressed`` raw gzip(SWC text) bytes, both *without* a Content-Encoding header (the
client gunzips itself); bulk responses are JSON ``{root: hex}`` where the hex is of gzip(JSON)
for flatdict and of plain SWC text for swccompressed. SWC is space separated, in um.
"""

from __future__ import annotations

import gzip
import re

from starlette.responses import Response

from offline_cave.server.data.artefacts import cell_store
from offline_cave.server.data.errors import DataError
from offline_cave.server.data.level2 import level2_skeleton
from offline_cave.server.data.store import Datastack
from offline_cave.server.http import (
    Req,
    bad_request,
    endpoint,
    json_response,
    not_found,
    parse_id_list,
    parse_int,
)
from offline_cave.server.routes.meshing import SKELETON_INFO

SKELETON_SERVICE_VERSION = "0.24.0"
SKELETON_VERSIONS = [-1, 0, 1, 2, 3, 4]
MAX_BULK = 10
_DICT_FORMATS = {"flatdict", "jsoncompressed", "json", "dict"}
_SWC_FORMATS = {"swccompressed", "swc"}


def _skvn(value: str) -> int:
    """A served skeleton version from its path text (400 otherwise)."""
    v = parse_int(value, "skeleton version")
    if v not in SKELETON_VERSIONS:
        raise bad_request(f"unknown skeleton version {v}; valid: {SKELETON_VERSIONS}")
    return v


def _root_ids_body(req: Req) -> list[int]:
    """The ``root_ids`` list of a required JSON object body."""
    body = req.json_body(required=True)
    if not isinstance(body, dict) or "root_ids" not in body:
        raise bad_request("the body must be a JSON object with 'root_ids'")
    # the answers are keyed by root: repeats add nothing
    return list(dict.fromkeys(parse_id_list(body["root_ids"], "'root_ids'",
                                            req.limits.max_ids)))


def cell_skeleton(ds: Datastack, root: int, skvn: int):
    """``(skeleton, lvl2_ids)`` of a root: version 4 (and -1, the latest) at level-2
    resolution where the cell has level-2 data, the stored skeleton otherwise (lvl2_ids
    None)."""
    store = cell_store(ds)
    sk = store.skeleton(store.nucleus_for_root(root))
    if skvn in (4, -1):
        return level2_skeleton(ds, sk)
    return sk, None


def skeleton_response(ds: Datastack, root: int, skvn: int, fmt: str) -> Response:
    """One cell's skeleton in format ``fmt`` (see the module docstring)."""
    store = cell_store(ds)
    if fmt in _DICT_FORMATS:
        body = store.cached_flatdict_gz(root, skvn, lambda: cell_skeleton(ds, root, skvn))
        if fmt == "json":
            return Response(gzip.decompress(body), media_type="application/json")
        return Response(body, media_type="application/octet-stream")
    sk, _ = cell_skeleton(ds, root, skvn)
    if fmt in _SWC_FORMATS:
        text = store.swc(sk)
        if fmt == "swc":
            return Response(text, media_type="text/plain")
        return Response(gzip.compress(text.encode()), media_type="application/octet-stream")
    if fmt == "precomputed":
        return Response(store.precomputed(sk), media_type="application/octet-stream")
    raise bad_request(f"unknown skeleton format '{fmt}'; use flatdict, swccompressed, json, "
                      f"swc or precomputed")


def bulk_dict(ds: Datastack, skvn_text: str, fmt: str, ids: list[int]) -> dict[str, str]:
    """``{root: hex}`` for the first :data:`MAX_BULK` roots (``invalid_rid`` for the others)."""
    skvn = _skvn(skvn_text)
    if fmt not in _DICT_FORMATS | _SWC_FORMATS:
        raise bad_request(f"unknown skeleton format '{fmt}'; use flatdict or swccompressed")
    store = cell_store(ds)
    out: dict[str, str] = {}
    for root in ids[:MAX_BULK]:
        try:
            sk, lvl2_ids = cell_skeleton(ds, root, skvn)
        except DataError:
            out[str(root)] = "invalid_rid"
            continue
        if fmt in _SWC_FORMATS:
            out[str(root)] = store.swc(sk).encode().hex()
        else:
            out[str(root)] = store.flatdict_gz(root, sk, skvn, lvl2_ids).hex()
    return out


@endpoint
def version(req: Req) -> Response:
    """The emulated skeleton service version."""
    return json_response(SKELETON_SERVICE_VERSION)


@endpoint
def versions(req: Req) -> Response:
    """The skeleton versions served."""
    return json_response(SKELETON_VERSIONS)


@endpoint
def get_skeleton(req: Req) -> Response:
    """One skeleton: ``{skvn}/{root}/{fmt}``."""
    p = req.path_params
    ds = req.registry.get(p["datastack"])
    skvn = _skvn(p["skvn"])
    root = parse_int(p["root"], "root id")
    return skeleton_response(ds, root, skvn, p["fmt"])


@endpoint
def bulk(req: Req) -> Response:
    """Several skeletons, the roots comma-separated in the path."""
    p = req.path_params
    parts = [s for s in p["ids"].split(",") if s.strip()]
    if not parts:
        raise bad_request("no root ids given")
    ids = [parse_int(s, "root id") for s in parts]
    ds = req.registry.get(p["datastack"])
    return json_response(bulk_dict(ds, p["skvn"], p["fmt"], ids))


@endpoint
def cached_bulk(req: Req) -> Response:
    """Several skeletons, the roots in a JSON body."""
    p = req.path_params
    ids = _root_ids_body(req)
    ds = req.registry.get(p["datastack"])
    return json_response(bulk_dict(ds, p["skvn"], p["fmt"], ids))


@endpoint
def exists(req: Req) -> Response:
    """Whether each root of a JSON body has a skeleton."""
    ds = req.registry.get(req.path_params["datastack"])
    ids = _root_ids_body(req)
    store = cell_store(ds)
    out = {}
    for root in ids:
        try:
            store.nucleus_for_root(root)
            out[str(root)] = True
        except DataError:
            out[str(root)] = False
    return json_response(out)


@endpoint
def precomputed_info(req: Req) -> Response:
    """The precomputed skeleton info."""
    req.registry.get(req.path_params["datastack"])
    return json_response(SKELETON_INFO)


@endpoint
def precomputed_skeleton(req: Req) -> Response:
    """One skeleton in the precomputed format, by root."""
    p = req.path_params
    ds = req.registry.get(p["datastack"])
    seg = p["root"]
    if not re.fullmatch(r"\d{1,20}", seg):
        raise not_found(f"no such skeleton file: {seg!r:.60}")
    root = parse_int(seg, "root id")
    return skeleton_response(ds, root, 0, "precomputed")


ROUTES = [
    ("skeleton.version", version, ["GET"]),
    ("skeleton.versions", versions, ["GET"]),
    ("skeleton.async_skeleton", get_skeleton, ["GET"]),
    ("skeleton.exists", exists, ["POST"]),
    ("skeleton.precomputed_info", precomputed_info, ["GET"]),
    ("skeleton.precomputed_version_info", precomputed_info, ["GET"]),
    ("skeleton.skeleton", get_skeleton, ["GET"]),
    ("skeleton.precomputed_skeleton", precomputed_skeleton, ["GET"]),
    ("skeleton.bulk", bulk, ["GET"]),
    ("skeleton.cached_bulk", cached_bulk, ["POST"]),
]
"""(endpoint name, handler, methods) of the skeleton service."""
