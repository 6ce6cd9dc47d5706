"""Every URL template the server answers, in one table (as caveclient's ``endpoints`` module).

:data:`ENDPOINTS` maps an endpoint name (``service.what``) to its Starlette path template.
Route modules never spell a URL: each lists ``ROUTES = [(endpoint name, handler, methods)]``
and :func:`offline_cave.server.app.build_routes` joins the two. The table's order is the
matching order (Starlette takes the first template that matches), so a literal segment such
as ``aligned_volume/id/{id}`` comes before ``aligned_volume/{name}``.

Materialization paths are served under both ``v2`` and ``v3`` (caveclient 8.2.1 mixes them);
their names carry the prefix: ``materialize.v2.tables``, ``materialize.v3.tables``.
"""

from __future__ import annotations

INFO = "/info/api/v2"
SCHEMA = "/schema/api/v2"
SEGMENTATION = "/segmentation/api/v1/table/{tid}"
L2CACHE = "/l2cache/api/v1"
SKELETONS = "/skeletoncache/api/v1/{datastack}"
ANNOTATION = "/annotation/api/v2/aligned_volume/{av}"
SESSIONS = "/sessions/api/v1/datastack/{datastack}"
NGLSTATE = "/nglstate/api/v1"
VIEWER = "/neuroglancer"
BULK = "/mat_dbs/public"


def _materialize(api: str) -> dict[str, str]:
    """The materialization templates under one API prefix (``v2`` or ``v3``)."""
    d = f"/materialize/api/{api}/datastack/{{datastack}}"
    v = f"{d}/version/{{version}}"
    names = {
        "versions": f"{d}/versions",
        "versions_metadata": f"{d}/metadata",
        "live_query": f"{d}/query",
        "unique_string_values": f"{d}/table/{{table}}/unique_string_values",
        "version": v,
        "tables": f"{v}/tables",
        "tables_metadata": f"{v}/tables/metadata",
        "table_count": f"{v}/table/{{table}}/count",
        "table_metadata": f"{v}/table/{{table}}/metadata",
        "table_query": f"{v}/table/{{table}}/query",
        "join_query": f"{v}/query",
        "views": f"{v}/views",
        "view_schemas": f"{v}/views/schemas",
        "view_metadata": f"{v}/views/{{view}}/metadata",
        "view_schema": f"{v}/views/{{view}}/schema",
        "view_query": f"{v}/views/{{view}}/query",
    }
    return {f"materialize.{api}.{name}": path for name, path in names.items()}


MATERIALIZE_APIS = ("v2", "v3")

ENDPOINTS: dict[str, str] = {
    "root": "/",
    # info service
    "info.version": "/info/version",
    "info.api_versions": "/info/api/versions",
    "info.datastacks": f"{INFO}/datastacks",
    "info.datastack_full": f"{INFO}/datastack/full/{{datastack}}",
    "info.datastack": f"{INFO}/datastack/{{datastack}}",
    "info.image_sources": f"{INFO}/datastack/{{datastack}}/image_sources",
    "info.aligned_volumes": f"{INFO}/aligned_volume",
    "info.aligned_volume_by_id": f"{INFO}/aligned_volume/id/{{id}}",
    "info.aligned_volume": f"{INFO}/aligned_volume/{{name}}",
    "info.aligned_volume_datastacks": f"{INFO}/aligned_volume/{{name}}/datastacks",
    # schema service
    "schema.versions": "/schema/versions",
    "schema.api_versions": "/schema/api/versions",
    "schema.type_list": f"{SCHEMA}/type",
    "schema.types_all": f"{SCHEMA}/types_all",
    "schema.types": f"{SCHEMA}/types",
    "schema.type": f"{SCHEMA}/type/{{name}}",
    # materialization engine
    "materialize.api_versions": "/materialize/api/versions",
    "materialize.server_version": "/materialize/version",
    **{name: path for api in MATERIALIZE_APIS for name, path in _materialize(api).items()},
    # chunkedgraph
    "chunkedgraph.api_versions": "/segmentation/api/versions",
    "chunkedgraph.version": "/segmentation/api/version",
    "chunkedgraph.graphene_info": "/segmentation/table/{tid}/info",
    "chunkedgraph.info": f"{SEGMENTATION}/info",
    "chunkedgraph.roots_binary": f"{SEGMENTATION}/roots_binary",
    "chunkedgraph.roots": f"{SEGMENTATION}/roots",
    "chunkedgraph.leaves_many": f"{SEGMENTATION}/node/leaves_many",
    "chunkedgraph.node_root": f"{SEGMENTATION}/node/{{node}}/root",
    "chunkedgraph.leaves": f"{SEGMENTATION}/node/{{node}}/leaves",
    "chunkedgraph.lvl2_graph": f"{SEGMENTATION}/node/{{node}}/lvl2_graph",
    "chunkedgraph.root_timestamps": f"{SEGMENTATION}/root_timestamps",
    "chunkedgraph.is_latest_roots": f"{SEGMENTATION}/is_latest_roots",
    "chunkedgraph.lineage_graph_multiple": f"{SEGMENTATION}/lineage_graph_multiple",
    "chunkedgraph.lineage_graph": f"{SEGMENTATION}/root/{{node}}/lineage_graph",
    "chunkedgraph.change_log": f"{SEGMENTATION}/root/{{node}}/change_log",
    "chunkedgraph.merge_log": f"{SEGMENTATION}/root/{{node}}/merge_log",
    "chunkedgraph.tabular_change_log": f"{SEGMENTATION}/root/{{node}}/tabular_change_log",
    "chunkedgraph.tabular_change_log_many": f"{SEGMENTATION}/tabular_change_log_many",
    "chunkedgraph.operation_details": f"{SEGMENTATION}/operation_details",
    "chunkedgraph.past_id_mapping": f"{SEGMENTATION}/past_id_mapping",
    "chunkedgraph.valid_nodes": f"{SEGMENTATION}/valid_nodes",
    "chunkedgraph.delta_roots": f"{SEGMENTATION}/delta_roots",
    "chunkedgraph.oldest_timestamp": f"{SEGMENTATION}/oldest_timestamp",
    # level-2 cache
    "l2cache.table_mapping": f"{L2CACHE}/table_mapping",
    "l2cache.attribute_metadata": f"{L2CACHE}/attribute_metadata",
    "l2cache.attributes": f"{L2CACHE}/table/{{tid}}/attributes",
    # skeleton service
    "skeleton.version": "/skeletoncache/api/version",
    "skeleton.versions": "/skeletoncache/api/versions",
    "skeleton.async_skeleton": f"{SKELETONS}/async/get_skeleton/{{skvn}}/{{root}}/{{fmt}}",
    "skeleton.exists": f"{SKELETONS}/precomputed/skeleton/exists",
    "skeleton.precomputed_info": f"{SKELETONS}/precomputed/skeleton/info",
    "skeleton.precomputed_version_info": f"{SKELETONS}/precomputed/skeleton/{{skvn}}/info",
    "skeleton.skeleton": f"{SKELETONS}/precomputed/skeleton/{{skvn}}/{{root}}/{{fmt}}",
    "skeleton.precomputed_skeleton": f"{SKELETONS}/precomputed/skeleton/{{root}}",
    "skeleton.bulk": f"{SKELETONS}/bulk/get_skeletons/{{skvn}}/{{fmt}}/{{gen}}/{{ids}}",
    "skeleton.cached_bulk": f"{SKELETONS}/bulk/get_cached_skeletons/{{skvn}}/{{fmt}}",
    # meshes and the precomputed trees
    "meshing.manifest": "/meshing/api/v1/table/{tid}/manifest/{seg}",
    "meshing.seg_tree": "/seg/{datastack}/{path:path}",
    "meshing.em_tree": "/em/{datastack}/{path:path}",
    "meshing.static_tree": "/static/{datastack}/{path:path}",
    # annotation engine (read-only)
    "annotation.tables": f"{ANNOTATION}/table",
    "annotation.table": f"{ANNOTATION}/table/{{table}}",
    "annotation.count": f"{ANNOTATION}/table/{{table}}/count",
    "annotation.annotations": f"{ANNOTATION}/table/{{table}}/annotations",
    # two-photon session files of the sample (no CAVE service: see routes/sessions.py)
    "sessions.manifest": f"{SESSIONS}/manifest",
    "sessions.file": f"{SESSIONS}/file/{{file}}",
    # JSON state service (client.state; literal segments before {state_id})
    "state.version": f"{NGLSTATE}/version",
    "state.upload": f"{NGLSTATE}/post",
    "state.upload_with_id": f"{NGLSTATE}/post/{{state_id}}",
    "state.raw": f"{NGLSTATE}/raw/{{state_id}}",
    "state.upload_property": f"{NGLSTATE}/property/post",
    "state.upload_property_with_id": f"{NGLSTATE}/property/post/{{state_id}}",
    "state.property_info": f"{NGLSTATE}/property/{{state_id}}/info",
    "state.property_raw": f"{NGLSTATE}/property/raw/{{state_id}}",
    "state.get": f"{NGLSTATE}/{{state_id}}",
    # the Neuroglancer client of the neuroglancer wheel (see routes/viewer.py)
    "viewer.client": f"{VIEWER}/v/{{session}}/{{path:path}}",
    # bulk export files of the sample, as the public bucket lays them out (routes/bulk.py)
    "bulk.file": f"{BULK}/{{datastack}}/{{version}}/{{file:path}}",
}
"""Endpoint name -> Starlette path template, in matching order."""
