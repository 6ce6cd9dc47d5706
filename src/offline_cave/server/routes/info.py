"""Info service (global server): datastack list and the full datastack dict."""

from __future__ import annotations

from starlette.routing import Route

from offline_cave.server.data.store import Datastack, Registry
from offline_cave.server.http import Req, endpoint, json_response, parse_int

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
        "viewer_site": info.get("viewer_site"),
        "proofreading_status_table": None, "proofreading_review_table": None,
        "cell_identification_table": None,
    }


def aligned_volume_info(ds: Datastack, base: str) -> dict:
    return datastack_info(ds, base)["aligned_volume"]


def routes(registry: Registry) -> list[Route]:
    @endpoint
    def version(req: Req):
        return json_response(INFO_VERSION)

    @endpoint
    def api_versions(req: Req):
        return json_response([2])

    @endpoint
    def datastacks(req: Req):
        return json_response(sorted(registry.datastacks))

    @endpoint
    def full(req: Req):
        ds = registry.get(req.path_params["datastack"])
        return json_response(datastack_info(ds, req.base_url))

    @endpoint
    def image_sources(req: Req):
        ds = registry.get(req.path_params["datastack"])
        return json_response([aligned_volume_info(ds, req.base_url)])

    @endpoint
    def aligned_volumes(req: Req):
        return json_response([aligned_volume_info(d, req.base_url)
                              for d in registry.datastacks.values()])

    @endpoint
    def aligned_volume(req: Req):
        ds = registry.by_aligned_volume(req.path_params["name"])
        return json_response(aligned_volume_info(ds, req.base_url))

    @endpoint
    def aligned_volume_by_id(req: Req):
        wanted = parse_int(req.path_params["id"], "aligned volume id")
        for d in registry.datastacks.values():
            if d.aligned_volume["id"] == wanted:
                return json_response(aligned_volume_info(d, req.base_url))
        return registry.by_aligned_volume(f"id {wanted}")  # raises 404

    @endpoint
    def av_datastacks(req: Req):
        name = req.path_params["name"]
        registry.by_aligned_volume(name)
        return json_response(sorted(d.name for d in registry.datastacks.values()
                                    if d.aligned_volume["name"] == name))

    base = "/info/api/v2"
    return [
        Route("/info/version", version),
        Route("/info/api/versions", api_versions),
        Route(f"{base}/datastacks", datastacks),
        Route(f"{base}/datastack/full/{{datastack}}", full),
        Route(f"{base}/datastack/{{datastack}}", full),
        Route(f"{base}/datastack/{{datastack}}/image_sources", image_sources),
        Route(f"{base}/aligned_volume", aligned_volumes),
        Route(f"{base}/aligned_volume/id/{{id}}", aligned_volume_by_id),
        Route(f"{base}/aligned_volume/{{name}}", aligned_volume),
        Route(f"{base}/aligned_volume/{{name}}/datastacks", av_datastacks),
    ]
