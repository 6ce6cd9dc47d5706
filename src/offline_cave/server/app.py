"""The Starlette application: routes of every service, JSON errors, no redirects.

Protocol traps handled here (see the protocol notes, section 0): no slash redirects
(``redirect_slashes=False``), unknown paths and methods answer JSON errors, and any unexpected
exception is logged and answered as a JSON 500 (the robustness tests assert that malformed input
never reaches that handler).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offline_cave.server.http import Req, endpoint, error_response, json_response
from offline_cave.server.routes import (
    annotation,
    chunkedgraph,
    info,
    l2cache,
    materialize,
    meshing,
    schema,
    skeleton,
)
from offline_cave.server.store import Registry

log = logging.getLogger("offline_cave.server")


class ErrorCounter:
    """Counts answers with status >= 500 (the robustness tests read it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.last: str | None = None

    def add(self, message: str) -> None:
        with self._lock:
            self.count += 1
            self.last = message


def create_app(data_dir: str | Path, *, public_url: str | None = None,
               datastacks: list[str] | None = None) -> Starlette:
    """Build the app serving every complete datastack directory under ``data_dir``.

    ``public_url`` (``http://127.0.0.1:PORT``) is what the info service advertises as
    ``local_server``; if None, each request's own base URL is used.
    """
    registry = Registry(Path(data_dir), datastacks)
    errors = ErrorCounter()

    @endpoint
    def root(req: Req):
        return json_response({"service": "offline_cave (synthetic CAVE sample)",
                              "datastacks": sorted(registry.datastacks),
                              "info": f"{req.base_url}/info/api/v2/datastacks"})

    routes: list[Route] = [Route("/", root)]
    for module in (info, schema, materialize, chunkedgraph, l2cache, skeleton, meshing,
                   annotation):
        routes += module.routes(registry)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(404, f"no such endpoint: {request.method} {request.url.path}")
        return error_response(exc.status_code, str(exc.detail))

    async def unexpected(request: Request, exc: Exception) -> Response:
        errors.add(f"{request.method} {request.url.path}: {type(exc).__name__}: {exc}")
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal server error ({type(exc).__name__}); "
                                   f"this is a bug in the offline server")

    app = Starlette(routes=routes,
                    exception_handlers={HTTPException: http_error, Exception: unexpected})
    app.router.redirect_slashes = False
    app.state.registry = registry
    app.state.public_url = public_url.rstrip("/") if public_url else None
    app.state.errors = errors
    return app
