"""Meshes, supervoxels and imagery: the graphene manifest endpoint, the precomputed tree
``/seg/{datastack}/...`` and the image tree ``/em/{datastack}/...``.

Both the graphene source (``segmentation_source``, whose ``data_dir`` is
``{base}/seg/{datastack}``) and a plain ``precomputed://{base}/seg/{datastack}`` CloudVolume
read the same legacy fragments ``mesh/{root}:0:1``, generated from the cell's skeleton on first
request and cached. ``<scale key>/<chunk>`` are the supervoxel chunks of the sample's imaged
region (``data/imagery.py``; cloud-volume's graphene source reads them with ``agglomerate``
and asks the chunkedgraph for their roots). Any other path under ``/seg/{datastack}/`` is served from
``<datastack>/cache/seg/`` if such a file exists; paths are resolved and must stay inside that
directory (no ``..``, no absolute paths, no symlink escapes).

The flat segmentations ``/static/{datastack}/seg_m{N}/...`` (``seg_m943``, ``seg_m1300``: the
static multi-resolution meshes the generator wrote, see ``generator/static_meshes.py``) are
served read only from ``<datastack>/static/``, with the same path checks, and answer byte
ranges (cloud-volume's shard reader asks for the shard index, a minishard index and one
level of detail at a time).
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.responses import Response

from offline_cave.contract import layout
from offline_cave.server.data.artefacts import cell_store
from offline_cave.server.data.imagery import imagery_of
from offline_cave.server.data.mesh import legacy_to_draco
from offline_cave.server.data.store import Datastack
from offline_cave.server.http import (
    ApiError,
    Req,
    endpoint,
    json_response,
    not_found,
    parse_int,
)
from offline_cave.server.routes.chunkedgraph import graphene_info

_MANIFEST = re.compile(r"(\d{1,20}):0")
_FRAGMENT = re.compile(r"(\d{1,20}):0:1")
_SCALE_KEY = re.compile(r"\d{1,6}_\d{1,6}_\d{1,6}")


def safe_path(base: Path, rel: str) -> Path | None:
    """``base / rel`` if it resolves to a file-system path inside ``base``, else None."""
    if not rel or "\x00" in rel or "\\" in rel or rel.startswith(("/", "~")):
        return None
    parts = rel.split("/")
    if any(part in ("..", ".") for part in parts):
        return None
    if len(rel) > 1024 or any(len(part.encode("utf-8", "replace")) > 255 for part in parts):
        return None  # longer than a file name can be (the OS would refuse it)
    try:
        base_resolved = base.resolve()
        candidate = (base_resolved / rel).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if not candidate.is_relative_to(base_resolved):
        return None
    return candidate


SKELETON_INFO = {
    "@type": "neuroglancer_skeletons",
    "transform": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0],
    "vertex_attributes": [
        {"id": "radius", "data_type": "float32", "num_components": 1},
        {"id": "compartment", "data_type": "float32", "num_components": 1}],
}
"""The precomputed skeleton info. Every vertex attribute is float32: the Neuroglancer build
of the ``neuroglancer`` wheel refuses a skeleton source with any other attribute type (its
skeleton layer stays empty with an error; google/neuroglancer issue 572), and caveclient reads
the skeleton service's precomputed skeletons with float32 compartments too. cloud-volume
decodes whatever type the info names."""
_SKELETON = re.compile(r"\d{1,20}")


def precomputed_info(info: dict) -> dict:
    """The plain precomputed segmentation info (the graphene info without graph/app keys)."""
    return {"type": "segmentation", "data_type": "uint64", "num_channels": 1,
            "mesh": "mesh", "skeletons": "skeletons", "scales": info["scales"]}


def manifest_for(ds: Datastack, root: int, with_ids: bool) -> dict:
    """The legacy mesh manifest of a root (a domain error for unknown roots and fragments)."""
    store = cell_store(ds)
    store.nucleus_for_root(root)
    out: dict = {"fragments": [f"{root}:0:1"]}
    if with_ids:
        out["seg_ids"] = [root]
    return out


def octet_stream(data: bytes) -> Response:
    """Binary file contents."""
    return Response(data, media_type="application/octet-stream")


@endpoint
def manifest(req: Req) -> Response:
    """The graphene mesh manifest ``{root}:0``."""
    ds = req.registry.by_table_id(req.path_params["tid"])
    m = _MANIFEST.fullmatch(req.path_params["seg"])
    if not m:
        raise not_found(f"manifest names look like '<root_id>:0'; got "
                        f"{req.path_params['seg']!r:.60}")
    root = parse_int(m.group(1), "root id")
    return json_response(manifest_for(ds, root, req.qbool("return_seg_ids")))


def _mesh_file(ds: Datastack, name: str) -> Response | None:
    """``mesh/<name>`` of the segmentation tree: a fragment, a manifest, or None."""
    m = _FRAGMENT.fullmatch(name)
    if m:
        root = parse_int(m.group(1), "root id")
        store = cell_store(ds)
        return octet_stream(store.mesh_fragment(store.nucleus_for_root(root)))
    m = _MANIFEST.fullmatch(name)
    if m:
        root = parse_int(m.group(1), "root id")
        return json_response(manifest_for(ds, root, False))
    return None


def _skeleton_file(ds: Datastack, root_text: str) -> Response:
    """``skeletons/<root>`` of the segmentation tree: the precomputed skeleton."""
    root = parse_int(root_text, "root id")
    store = cell_store(ds)
    return octet_stream(store.precomputed(store.skeleton(store.nucleus_for_root(root))))


@endpoint
def seg_tree(req: Req) -> Response:
    """A file of the precomputed segmentation tree (info, meshes, skeletons, cached files)."""
    ds = req.registry.get(req.path_params["datastack"])
    rel = req.path_params["path"]
    if rel == "info":
        return json_response(precomputed_info(graphene_info(ds, req.base_url)))
    if rel == "mesh/info":
        return json_response({"@type": "neuroglancer_legacy_mesh"})
    if rel.startswith("mesh//") and _FRAGMENT.fullmatch(rel[len("mesh//"):]):
        # Neuroglancer's graphene source asks for a dynamic fragment as ``mesh//<name>`` and
        # decodes it as Draco, the encoding of the real graphene meshes
        legacy = _mesh_file(ds, rel[len("mesh//"):])
        return octet_stream(legacy_to_draco(legacy.body))
    if rel.startswith("mesh/"):
        answer = _mesh_file(ds, rel[len("mesh/"):])
        if answer is not None:
            return answer
    if rel == "skeletons/info":
        return json_response(SKELETON_INFO)
    if rel.startswith("skeletons/") and _SKELETON.fullmatch(rel[len("skeletons/"):]):
        return _skeleton_file(ds, rel[len("skeletons/"):])
    chunk = _chunk_path(rel)
    if chunk is not None and imagery_of(ds).meta is not None:
        # the supervoxel (watershed) chunks graphene's data_dir holds
        return gzip_stream(imagery_of(ds).chunk("ws", *chunk))
    path = safe_path(ds.dir / layout.CACHE_DIR / "seg", rel)
    try:
        if path is not None and path.is_file():
            return octet_stream(path.read_bytes())
    except OSError:  # unreadable or unnameable: as good as absent
        pass
    raise not_found(f"no such file in the {ds.name} segmentation tree: {rel[:200]!r}")


def gzip_stream(data: bytes) -> Response:
    """A gzipped file served as the identity content with ``Content-Encoding: gzip`` (what
    cloud-volume and Neuroglancer read from the real buckets)."""
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Encoding": "gzip"})


def _chunk_path(rel: str) -> tuple[str, str] | None:
    """(scale key, chunk name) of ``<key>/<chunk>``, or None."""
    parts = rel.split("/")
    if len(parts) == 2 and _SCALE_KEY.fullmatch(parts[0]):
        return parts[0], parts[1]
    return None


def em_info(ds: Datastack, base: str) -> dict:
    """The precomputed image info over the segmentation bounds: 8 x 8 x 40 nm (the real
    image's finest stored level) and the coarser mips the sample stores (x and y halved
    each), JPEG chunks where the sample has imagery."""
    info = graphene_info(ds, base)
    scale = dict(info["scales"][0])
    scales = imagery_of(ds).info_scales(scale, "jpeg") or [scale]
    return {"type": "image", "data_type": "uint8", "num_channels": 1, "scales": scales}


@endpoint
def em_tree(req: Req) -> Response:
    """The EM image tree: its info and the JPEG chunks of the sample's imaged region."""
    ds = req.registry.get(req.path_params["datastack"])
    rel = req.path_params["path"]
    if rel == "info":
        return json_response(em_info(ds, req.base_url))
    chunk = _chunk_path(rel)
    if chunk is not None:
        return octet_stream(imagery_of(ds).chunk("em", *chunk))
    raise not_found(f"no such file in the {ds.name} image tree: {rel[:200]!r} (files are "
                    "'info' and '<scale key>/<x0-x1_y0-y1_z0-z1>')")


_RANGE = re.compile(r"bytes=(\d{1,15})-(\d{0,15})")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a one-range ``Range: bytes=a-b`` header, None when
    there is none; a malformed or unsatisfiable range is a 416 with the file's size."""
    if header is None:
        return None
    m = _RANGE.fullmatch(header.strip())
    if not m:
        raise ApiError(416, f"only one 'bytes=start-end' range is served; got {header[:60]!r}")
    start = int(m.group(1))
    end = int(m.group(2)) + 1 if m.group(2) else size
    if start >= size or end <= start:
        raise ApiError(416, f"range {header[:60]!r} outside the file's {size} bytes")
    return start, min(end, size)


@endpoint
def static_tree(req: Req) -> Response:
    """A file of a flat segmentation ``/static/{datastack}/seg_m{N}/...`` (its info and static
    multi-resolution mesh shards, written by the generator), read only, with byte ranges."""
    ds = req.registry.get(req.path_params["datastack"])
    rel = req.path_params["path"]
    path = safe_path(ds.dir / layout.STATIC_DIR, rel)
    try:
        if path is not None and path.is_file():
            size = path.stat().st_size
            span = byte_range(req.headers.get("range"), size)
            if span is None:
                data = path.read_bytes()
                if rel.endswith("info"):
                    return Response(data, media_type="application/json")
                return octet_stream(data)
            with path.open("rb") as fh:
                fh.seek(span[0])
                data = fh.read(span[1] - span[0])
            return Response(data, status_code=206, media_type="application/octet-stream",
                            headers={"content-range": f"bytes {span[0]}-{span[1] - 1}/{size}"})
    except OSError:  # unreadable or unnameable: as good as absent
        pass
    raise not_found(f"no such file in the {ds.name} flat segmentations (static meshes exist "
                    f"for the versions the sample lists in its static/ directory): {rel[:200]!r}")


ROUTES = [
    ("meshing.manifest", manifest, ["GET"]),
    ("meshing.seg_tree", seg_tree, ["GET"]),
    ("meshing.em_tree", em_tree, ["GET"]),
    ("meshing.static_tree", static_tree, ["GET"]),
]
"""(endpoint name, handler, methods) of the meshes and precomputed trees."""
