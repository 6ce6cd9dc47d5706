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
from starlette.routing import Route

from offline_cave.server.data.artefacts import cell_store
from offline_cave.server.data.store import Registry
from offline_cave.server.http import (
    ApiError,
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
    v = parse_int(value, "skeleton version")
    if v not in SKELETON_VERSIONS:
        raise bad_request(f"unknown skeleton version {v}; valid: {SKELETON_VERSIONS}")
    return v


def routes(registry: Registry) -> list[Route]:
    def one(req: Req, ds_name: str, root_text: str, skvn_text: str, fmt: str) -> Response:
        ds = registry.get(ds_name)
        skvn = _skvn(skvn_text)
        root = parse_int(root_text, "root id")
        store = cell_store(ds)
        sk = store.skeleton(store.nucleus_for_root(root))
        if fmt in _DICT_FORMATS:
            body = store.flatdict_gz(root, sk, skvn)
            if fmt == "json":
                return Response(gzip.decompress(body), media_type="application/json")
            return Response(body, media_type="application/octet-stream")
        if fmt in _SWC_FORMATS:
            text = store.swc(sk)
            if fmt == "swc":
                return Response(text, media_type="text/plain")
            return Response(gzip.compress(text.encode()), media_type="application/octet-stream")
        if fmt == "precomputed":
            return Response(store.precomputed(sk), media_type="application/octet-stream")
        raise bad_request(f"unknown skeleton format '{fmt}'; use flatdict, swccompressed, json, "
                          f"swc or precomputed")

    @endpoint
    def version(req: Req):
        return json_response(SKELETON_SERVICE_VERSION)

    @endpoint
    def versions(req: Req):
        return json_response(SKELETON_VERSIONS)

    @endpoint
    def get_skeleton(req: Req):
        p = req.path_params
        return one(req, p["datastack"], p["root"], p["skvn"], p["fmt"])

    def bulk_dict(req: Req, ds_name: str, skvn_text: str, fmt: str, ids: list[int]) -> dict:
        ds = registry.get(ds_name)
        skvn = _skvn(skvn_text)
        if fmt not in _DICT_FORMATS | _SWC_FORMATS:
            raise bad_request(f"unknown skeleton format '{fmt}'; use flatdict or swccompressed")
        store = cell_store(ds)
        out: dict[str, str] = {}
        for root in ids[:MAX_BULK]:
            try:
                sk = store.skeleton(store.nucleus_for_root(root))
            except ApiError:
                out[str(root)] = "invalid_rid"
                continue
            if fmt in _SWC_FORMATS:
                out[str(root)] = store.swc(sk).encode().hex()
            else:
                out[str(root)] = store.flatdict_gz(root, sk, skvn).hex()
        return out

    @endpoint
    def bulk(req: Req):
        p = req.path_params
        parts = [s for s in p["ids"].split(",") if s.strip()]
        if not parts:
            raise bad_request("no root ids given")
        ids = [parse_int(s, "root id") for s in parts]
        return json_response(bulk_dict(req, p["datastack"], p["skvn"], p["fmt"], ids))

    @endpoint
    def cached_bulk(req: Req):
        p = req.path_params
        body = req.json_body(required=True)
        if not isinstance(body, dict) or "root_ids" not in body:
            raise bad_request("the body must be a JSON object with 'root_ids'")
        ids = parse_id_list(body["root_ids"], "'root_ids'")
        return json_response(bulk_dict(req, p["datastack"], p["skvn"], p["fmt"], ids))

    @endpoint
    def exists(req: Req):
        ds = registry.get(req.path_params["datastack"])
        body = req.json_body(required=True)
        if not isinstance(body, dict) or "root_ids" not in body:
            raise bad_request("the body must be a JSON object with 'root_ids'")
        ids = parse_id_list(body["root_ids"], "'root_ids'")
        store = cell_store(ds)
        out = {}
        for root in ids:
            try:
                store.nucleus_for_root(root)
                out[str(root)] = True
            except ApiError:
                out[str(root)] = False
        return json_response(out)

    @endpoint
    def precomputed_info(req: Req):
        registry.get(req.path_params["datastack"])
        return json_response(SKELETON_INFO)

    @endpoint
    def precomputed_skeleton(req: Req):
        p = req.path_params
        ds = registry.get(p["datastack"])
        seg = p["root"]
        if not re.fullmatch(r"\d{1,20}", seg):
            raise not_found(f"no such skeleton file: {seg!r:.60}")
        root = parse_int(seg, "root id")
        store = cell_store(ds)
        sk = store.skeleton(store.nucleus_for_root(root))
        return Response(store.precomputed(sk), media_type="application/octet-stream")

    sk = "/skeletoncache/api/v1/{datastack}"
    return [
        Route("/skeletoncache/api/version", version),
        Route("/skeletoncache/api/versions", versions),
        Route(f"{sk}/async/get_skeleton/{{skvn}}/{{root}}/{{fmt}}", get_skeleton),
        Route(f"{sk}/precomputed/skeleton/exists", exists, methods=["POST"]),
        Route(f"{sk}/precomputed/skeleton/info", precomputed_info),
        Route(f"{sk}/precomputed/skeleton/{{skvn}}/info", precomputed_info),
        Route(f"{sk}/precomputed/skeleton/{{skvn}}/{{root}}/{{fmt}}", get_skeleton),
        Route(f"{sk}/precomputed/skeleton/{{root}}", precomputed_skeleton),
        Route(f"{sk}/bulk/get_skeletons/{{skvn}}/{{fmt}}/{{gen}}/{{ids}}", bulk),
        Route(f"{sk}/bulk/get_cached_skeletons/{{skvn}}/{{fmt}}", cached_bulk,
              methods=["POST"]),
    ]
