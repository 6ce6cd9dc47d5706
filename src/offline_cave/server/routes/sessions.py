"""Two-photon session files (``/sessions``): the instructor's copy for an offline class.

The public V1DD sessions are files, not a CAVE service; this route only lets the students'
course package download the sample's files from the instructor's server
(``connectomics_book.sessions.session_path``). ``manifest`` lists them with size and SHA-256,
``file`` streams one.
"""

from __future__ import annotations

from starlette.responses import FileResponse, Response

from offline_cave.server.data.sessions import SessionFiles
from offline_cave.server.http import Req, endpoint, json_response


def _sessions(req: Req) -> SessionFiles:
    return req.registry.get(req.path_params["datastack"]).sessions


@endpoint
def manifest(req: Req) -> Response:
    """``{"sessions": [{column, volume, subject_id, session_id, file, bytes, sha256}]}``."""
    return json_response({"sessions": _sessions(req).listing()})


@endpoint
def session_file(req: Req) -> Response:
    """One session file, after its checksum matched the manifest."""
    path = _sessions(req).path(req.path_params["file"])
    return FileResponse(path, media_type="application/x-hdf5", filename=path.name)


ROUTES = [
    ("sessions.manifest", manifest, ["GET"]),
    ("sessions.file", session_file, ["GET"]),
]
"""(endpoint name, handler, methods) of the session files."""
