"""Info service (global server): datastack list and the full datastack dict."""

from __future__ import annotations

from starlette.responses import Response

from offline_cave.server.data.store import Datastack
from offline_cave.server.http import Req, endpoint, json_response, parse_int
from offline_cave.server.routes.viewer import VIEWER_PATH

INFO_VERSION = "4.5.0"


def datastack_info(ds: Datastack, base: str) -> dict:
    """The ``datastack/full/{ds}`` dict with every service pointing at this server."""
    vx, vy, vz = ds.viewer_resolution
    av = ds.aligned_volume
    aligned = {"id": av["id"], "name": av["name"], "display_name": av["display_name"],
               "description": av["description"],
               "image_source": f"precomputed://{base}/em/{ds.name}"}
    info = ds.info
    return {
        "aligned_volume": aligned,
        "analysis_database": None, "base_link_id": None,
        "description": info.get("description", ""),
        "id": ds.index, "name": ds.name,
        "local_server": base,
        "segmentation_source": f"graphene://{base}/segmentation/table/{ds.pcg_table}",
        "skeleton_source": (f"precomputed://{base}/skeletoncache/api/v1/{ds.name}/precomputed/"
                            f"skeleton"),
        "soma_table": info.get("soma_table"),
        "synapse_table": info.get("synapse_table"),
        "synapse_segmentation_source": None,
        "viewer_resolution_x": vx, "viewer_resolution_y": vy, "viewer_resolution_z": vz,
        # the public viewer in the files; here the wheel's client this server serves
        "viewer_site": f"{base}{VIEWER_PATH}" if info.get("viewer_site") else None,
        "proofreading_status_table": None, "proofreading_review_table": None,
        "cell_identification_table": None,
    }


def aligned_volume_info(ds: Datastack, base: str) -> dict:
    """The aligned-volume part of :func:`datastack_info`."""
    return datastack_info(ds, base)["aligned_volume"]


@endpoint
def version(req: Req) -> Response:
    """The info service's version string."""
    return json_response(INFO_VERSION)


@endpoint
def api_versions(req: Req) -> Response:
    """The info API versions served."""
    return json_response([2])


@endpoint
def datastacks(req: Req) -> Response:
    """Names of the served datastacks."""
    return json_response(sorted(req.registry.datastacks))


@endpoint
def full(req: Req) -> Response:
    """The full datastack dict, every service pointing at this server."""
    ds = req.registry.get(req.path_params["datastack"])
    return json_response(datastack_info(ds, req.base_url))


@endpoint
def image_sources(req: Req) -> Response:
    """The datastack's aligned volume as its one image source."""
    ds = req.registry.get(req.path_params["datastack"])
    return json_response([aligned_volume_info(ds, req.base_url)])


@endpoint
def aligned_volumes(req: Req) -> Response:
    """Every served datastack's aligned volume."""
    return json_response([aligned_volume_info(d, req.base_url)
                          for d in req.registry.datastacks.values()])


@endpoint
def aligned_volume(req: Req) -> Response:
    """One aligned volume by name."""
    ds = req.registry.by_aligned_volume(req.path_params["name"])
    return json_response(aligned_volume_info(ds, req.base_url))


@endpoint
def aligned_volume_by_id(req: Req) -> Response:
    """One aligned volume by numeric id (404 naming the served ones otherwise)."""
    wanted = parse_int(req.path_params["id"], "aligned volume id")
    for d in req.registry.datastacks.values():
        if d.aligned_volume["id"] == wanted:
            return json_response(aligned_volume_info(d, req.base_url))
    req.registry.by_aligned_volume(f"id {wanted}")  # raises MissingDatastack
    raise AssertionError("unreachable")  # pragma: no cover


@endpoint
def av_datastacks(req: Req) -> Response:
    """Names of the datastacks on one aligned volume."""
    name = req.path_params["name"]
    req.registry.by_aligned_volume(name)
    return json_response(sorted(d.name for d in req.registry.datastacks.values()
                                if d.aligned_volume["name"] == name))


ROUTES = [
    ("info.version", version, ["GET"]),
    ("info.api_versions", api_versions, ["GET"]),
    ("info.datastacks", datastacks, ["GET"]),
    ("info.datastack_full", full, ["GET"]),
    ("info.datastack", full, ["GET"]),
    ("info.image_sources", image_sources, ["GET"]),
    ("info.aligned_volumes", aligned_volumes, ["GET"]),
    ("info.aligned_volume_by_id", aligned_volume_by_id, ["GET"]),
    ("info.aligned_volume", aligned_volume, ["GET"]),
    ("info.aligned_volume_datastacks", av_datastacks, ["GET"]),
]
"""(endpoint name, handler, methods) of the info service."""
