"""The JSON state service (``client.state``): Neuroglancer states uploaded and read back.

caveclient 8.2.1's ``JSONService`` (``caveclient/jsonservice.py``, endpoint templates
``jsonservice_endpoints_v1`` in ``caveclient/endpoints.py``) posts a state's JSON to
``/nglstate/api/v1/post`` and gets back the URL of the stored state, whose number is the state
id; ``get_state_json(id)`` reads ``/nglstate/api/v1/{id}``. nglui 4.9.0 shortens long links
with it (``ViewerState.to_link_shortener``), and ``upload_property_json`` stores the segment
properties that ``add_segment_properties_source`` attaches to a layer. States live in the
server's memory only (:mod:`offline_cave.server.data.states`): bounded, never written to disk.
"""

from __future__ import annotations

from starlette.responses import Response

from offline_cave.server.data.states import StateStore
from offline_cave.server.http import ApiError, Req, endpoint, json_response, parse_int

STATE_SERVICE_VERSION = "0.4.0"
"""What ``/nglstate/api/v1/version`` answers: the oldest version for which caveclient 8.2.1
allows ``upload_property_json``/``get_property_json`` (``_check_version_compatibility``)."""

STATE_PREFIX = "/nglstate/api/v1"


def _store(req: Req) -> StateStore:
    store = getattr(req.app_state, "states", None)
    if store is None:  # an app built without one (tests of single routes)
        store = req.app_state.states = StateStore()
    return store


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _state_id(req: Req) -> int:
    return parse_int(req.path_params["state_id"], "state id", allow_negative=False)


@endpoint
def version(req: Req) -> Response:
    """The state service's version string."""
    return json_response(STATE_SERVICE_VERSION)


@endpoint
def upload(req: Req) -> Response:
    """Keep a posted state; answers the URL of the kept state (its last segment is the id)."""
    state_id = _store(req).add("state", req.body)
    return json_response(f"{req.base_url}{STATE_PREFIX}/{state_id}")


@endpoint
def upload_property(req: Req) -> Response:
    """Keep a posted segment-property file; answers its URL as :func:`upload` does."""
    state_id = _store(req).add("property", req.body)
    return json_response(f"{req.base_url}{STATE_PREFIX}/property/{state_id}")


@endpoint
def upload_with_id(req: Req) -> Response:
    """Writing a state under a chosen id is an administrator's feature of the real service."""
    raise ApiError(403, "uploading a state under a chosen id is reserved to administrators "
                        "of the state service; upload without state_id to get a new id")


@endpoint
def get_state(req: Req) -> Response:
    """A kept state's JSON, as uploaded."""
    return _json(_store(req).get("state", _state_id(req)))


@endpoint
def get_property(req: Req) -> Response:
    """A kept segment-property file's JSON (the ``info`` of its precomputed source)."""
    return _json(_store(req).get("property", _state_id(req)))


ROUTES = [
    ("state.version", version, ["GET"]),
    ("state.upload", upload, ["POST"]),
    ("state.upload_with_id", upload_with_id, ["POST"]),
    ("state.raw", get_state, ["GET"]),
    ("state.upload_property", upload_property, ["POST"]),
    ("state.upload_property_with_id", upload_with_id, ["POST"]),
    ("state.property_info", get_property, ["GET"]),
    ("state.property_raw", get_property, ["GET"]),
    ("state.get", get_state, ["GET"]),
]
"""(endpoint name, handler, methods) of the state service."""
