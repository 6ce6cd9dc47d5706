"""The Neuroglancer viewer for an offline class: the client built into the neuroglancer wheel.

The ``neuroglancer`` Python package (a dependency of nglui) ships a built Neuroglancer client
in ``neuroglancer/static/client``; this route serves those files, read only, at
``/neuroglancer/v/offline/`` (the datastack info's ``viewer_site`` when served offline, see
:mod:`offline_cave.server.routes.info`). That build is the one the package's own Python
server hosts, so it expects its page under ``.../v/<token>/``; it shows a "connection to
Python server" notice that this server never answers, and everything else of the viewer works
from the URL fragment as on the public deployment.

Two adaptations, both in ``index.html`` as served (the files themselves are unchanged):

- the page sets the ``middle_auth_token`` cookie (any token is accepted here), as the login
  of the public viewer does, so the viewer's requests to the segmentation, mesh, skeleton and
  state services of this server carry a token;
- nglui writes the segmentation source as ``graphene://middleauth+http://...`` and a link
  shortened by ``client.state`` reads ``#!middleauth+http://.../nglstate/api/v1/<id>``. This
  build knows ``middleauth+`` for ``https`` only, and its login would go through the Python
  server, so such a layer stays empty and such a link does not load. A short script
  (:data:`_FRAGMENT_SHIM`) runs before the viewer: it reads a state of the state service
  itself (same origin, so with the cookie), and in the state writes ``middleauth+http://`` as
  ``http://`` (the cookie carries the token instead). States with ``https`` sources, such as
  those for the public services, are left as they are.

``version.json`` answers what the public deployment's does in spirit (which build is served):
``client.state.build_neuroglancer_url`` asks for it to choose the link format.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from functools import cache
from pathlib import Path

from starlette.responses import Response

from offline_cave.server.http import Req, endpoint, json_response, not_found
from offline_cave.server.routes.meshing import safe_path

VIEWER_SESSION = "offline"
VIEWER_PATH = f"/neuroglancer/v/{VIEWER_SESSION}/"
"""Where the viewer's ``index.html`` is served (``viewer_site`` is the base URL + this)."""

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",
    ".map": "application/json",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
"""Content type of each file kind of the built client; other kinds are not served."""

VIEWER_COOKIE = "offline-viewer"
"""The token the viewer page sets as its ``middle_auth_token`` cookie (never a real token)."""

_FRAGMENT_SHIM = """<script>(function () {
  // offline_cave: this build reads no middleauth+http:// source (see routes/viewer.py)
  var h = location.hash, p = "middleauth+http://";
  function plain(text) {
    return text.split(p).join("http://").split("middleauth%2Bhttp").join("http");
  }
  if (h.indexOf("#!" + p) === 0) {  // a state of the state service: read it here
    var url = h.slice(2 + "middleauth+".length), x = new XMLHttpRequest();
    x.open("GET", url, false);
    x.send();
    h = x.status === 200 ? "#!" + encodeURIComponent(plain(x.responseText)) : "#!" + url;
  } else {
    h = plain(h);
  }
  if (h.length > 3) {
    // Restored during start-up, this build drops a layer of the state (it is not ready for
    // all of them yet); so it starts from an empty state and is given the link's state once
    // it has loaded, again (after 1, 2, 4, 8 s) until it holds every layer.
    var want = -1;
    try { want = JSON.parse(decodeURIComponent(h.slice(2))).layers.length; } catch (e) {}
    history.replaceState(null, "", location.pathname + location.search + "#!%7B%7D");
    var give = function (delay) {
      setTimeout(function () {
        location.hash = h;
        setTimeout(function () {
          var v = window.viewer, got = v ? v.layerManager.managedLayers.length : -1;
          if (delay < 16000 && got < want) {
            location.hash = "#!%7B%7D";
            give(2 * delay);
          }
        }, 1000);
      }, delay);
    };
    window.addEventListener("load", function () { give(1000); });
  }
})();</script>"""


@cache
def client_dir() -> Path | None:
    """The built client of the installed neuroglancer wheel (None when it is not installed)."""
    spec = importlib.util.find_spec("neuroglancer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "static" / "client"
    return path if (path / "index.html").is_file() else None


@cache
def _index_html(directory: Path) -> bytes:
    html = (directory / "index.html").read_text(encoding="utf-8")
    return html.replace("<head>", "<head>" + _FRAGMENT_SHIM, 1).encode("utf-8")


def _version() -> dict:
    try:
        version = importlib.metadata.version("neuroglancer")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - checked by client_dir
        version = None
    return {"neuroglancer": version, "build": "the client of the neuroglancer Python package"}


@endpoint
def client_file(req: Req) -> Response:
    """A file of the built client; the directory itself is its ``index.html``."""
    directory = client_dir()
    if directory is None:
        raise not_found("the neuroglancer package is not installed next to this server, so "
                        "it has no viewer to serve (pip install neuroglancer)")
    if req.path_params["session"] != VIEWER_SESSION:
        raise not_found(f"the viewer is served at {VIEWER_PATH}")
    # caveclient asks for ``{viewer_site}/version.json``, with two slashes
    rel = req.path_params["path"].lstrip("/")
    if rel in ("", "index.html"):
        response = Response(_index_html(directory), media_type=CONTENT_TYPES[".html"])
        response.set_cookie("middle_auth_token", VIEWER_COOKIE, path="/", httponly=True,
                            samesite="strict")
        return response
    if rel == "version.json":
        return json_response(_version())
    kind = Path(rel).suffix
    path = safe_path(directory, rel) if kind in CONTENT_TYPES else None
    try:
        if path is not None and path.is_file():
            return Response(path.read_bytes(), media_type=CONTENT_TYPES[kind],
                            headers={"cache-control": "max-age=3600"})
    except OSError:  # unreadable: as good as absent
        pass
    raise not_found(f"no such file in the viewer: {rel[:200]!r}")


ROUTES = [
    ("viewer.client", client_file, ["GET"]),
]
"""(endpoint name, handler, methods) of the viewer."""
