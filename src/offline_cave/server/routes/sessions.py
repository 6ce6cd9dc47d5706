"""Two-photon session files (``/sessions``): the instructor's copy for an offline class.

The public V1DD sessions are files, not a CAVE service; this route only lets the students'
course package download the sample's files from the instructor's server
(``connectomics_book.sessions.session_path``). ``manifest`` lists them with size and SHA-256,
``file`` streams one (a zip of the session's asset: the Zarr store is a directory).
"""

from __future__ import annotations

from starlette.responses import Response, StreamingResponse

from offline_cave.contract.archive import iter_archive
from offline_cave.server.data.sessions import SessionFiles
from offline_cave.server.http import Req, endpoint, json_response


def _sessions(req: Req) -> SessionFiles:
    return req.registry.get(req.path_params["datastack"]).sessions


@endpoint
def manifest(req: Req) -> Response:
    """``{"sessions": [{column, volume, subject_id, session_id, file, store, bytes,
    sha256}]}``: ``file`` is the zip of the session's asset, ``store`` the Zarr NWB store's
    path inside it."""
    return json_response({"sessions": _sessions(req).listing()})


@endpoint
def session_file(req: Req) -> Response:
    """The zip of one session's asset, streamed, after its files matched the manifest."""
    name = req.path_params["file"]
    root, members, size = _sessions(req).archive(name)
    return StreamingResponse(iter_archive(root, members), media_type="application/zip",
                             headers={"Content-Length": str(size),
                                      "Content-Disposition": f'attachment; filename="{name}"'})


ROUTES = [
    ("sessions.manifest", manifest, ["GET"]),
    ("sessions.file", session_file, ["GET"]),
]
"""(endpoint name, handler, methods) of the session files."""
