"""The Starlette application: routes of every service, JSON errors, no redirects.

Protocol traps handled here (see the protocol notes, section 0): no slash redirects
(``redirect_slashes=False``), unknown paths and methods answer JSON errors, and any unexpected
exception is logged and answered as a JSON 500 (the robustness tests assert that malformed input
never reaches that handler).

Like the public services, every request must carry a token (``Authorization: Bearer``, the
``middle_auth_token`` cookie or query parameter); without one the answer is a 401 that says how
to get one. Any token is accepted, and tokens are never logged. Open, as their real
counterparts are public buckets read without a token: the landing page ``/`` and the
precomputed trees ``/seg/...`` (mesh fragments) and ``/em/...``, the flat segmentations
``/static/...``, the bulk export files ``/mat_dbs/...``, and the viewer's files
``/neuroglancer/...`` (its page sets the token cookie, see ``routes/viewer.py``).

Request bodies are bounded while they arrive (:class:`BodyLimits`): past ``max_body_bytes``
the answer is a 413 at once (a chunked body is never buffered whole), and a body that stops
arriving for ``read_timeout`` seconds is a 408 (see :mod:`offline_cave.server.limits`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import traceback
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offline_cave.server.data.mesh_cache import DEFAULT_MESH_CACHE_BYTES
from offline_cave.server.data.schemas import SchemaCatalog
from offline_cave.server.data.states import StateStore
from offline_cave.server.data.store import Registry
from offline_cave.server.data.warm import warm_in_background
from offline_cave.server.endpoints import ENDPOINTS
from offline_cave.server.http import Req, endpoint, error_response, json_response
from offline_cave.server.limits import Limits
from offline_cave.server.response_cache import DEFAULT_RESPONSE_CACHE_BYTES, ResponseCache
from offline_cave.server.routes import (
    annotation,
    bulk,
    chunkedgraph,
    info,
    l2cache,
    level2,
    materialize,
    meshing,
    schema,
    sessions,
    skeleton,
    state,
    viewer,
)

log = logging.getLogger("offline_cave.server")


class EscapeUnencodable(logging.Filter):
    """Log records with lone surrogates (quoted from a request) written as escapes.

    A traceback can quote request text; unescaped, a UTF-8 console or pytest-xdist's channel
    fails on it. Attached to this server's logger and to uvicorn's error logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            record.exc_text = _loggable("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        record.msg, record.args = _loggable(record.getMessage()), ()
        return True


def _install_log_filter() -> None:
    for name in ("offline_cave.server", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, EscapeUnencodable) for f in logger.filters):
            logger.addFilter(EscapeUnencodable())


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


NO_TOKEN_MESSAGE = (
    "Unauthorized: this request carried no CAVE token. Save one with "
    "CAVEclient().auth.save_token(token=...), or, for this offline server, run "
    "`python -m offline_cave configure --server URL`, which writes a token file for it.")
OPEN_PATHS = frozenset({"/"})
OPEN_PREFIXES = ("/seg/", "/em/", "/mat_dbs/", "/neuroglancer/", "/static/")


def carries_token(scope: dict) -> bool:
    """Whether an HTTP request has a non-empty token where CAVE services look for one."""
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return True
        elif key == b"cookie":
            try:
                cookie = SimpleCookie(value.decode("latin-1"))
            except CookieError:
                continue
            if "middle_auth_token" in cookie and cookie["middle_auth_token"].value.strip():
                return True
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return any(v.strip() for v in query.get("middle_auth_token", []))


class TokenRequired:
    """ASGI middleware: 401 for requests without a token (see the module docstring)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if (scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
                or carries_token(scope)):
            await self.app(scope, receive, send)
            return
        log.info("401 (no token): %s %s", scope.get("method"), path)
        body = json.dumps({"message": NO_TOKEN_MESSAGE, "error": "no token",
                           "code": 401}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b'Bearer error="invalid_token"')]})
        await send({"type": "http.response.body", "body": body})


class _BodyRefused(Exception):
    """Raised inside the app by :class:`BodyLimits`' receive; answered by the middleware."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _send_json(send, status: int, message: str) -> None:
    body = json.dumps({"message": message, "error": message, "code": status}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimits:
    """ASGI middleware: the request body's size and arrival time are bounded as it streams.

    A declared ``Content-Length`` over the limit is refused before anything is read; otherwise
    bytes are counted as they arrive, and the request is answered 413 as soon as the count
    passes ``max_body_bytes`` (so a chunked body of any size costs at most the limit), or 408
    when the next piece does not come within ``read_timeout`` seconds.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        app = scope.get("app")
        limits: Limits = getattr(getattr(app, "state", None), "limits", None) or Limits()
        too_large = (f"request body larger than {limits.max_body_bytes} bytes (the server's "
                     f"limit, serve --max-body-bytes)")
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() \
                    and int(value) > limits.max_body_bytes:
                await _send_json(send, 413, too_large)
                return
        received = 0
        complete = False
        started = False

        async def bounded_receive():
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), limits.read_timeout)
            except TimeoutError:
                raise _BodyRefused(408, f"the request body stopped arriving for "
                                        f"{limits.read_timeout:g} s (the server's read "
                                        f"timeout, serve --read-timeout)") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limits.max_body_bytes:
                    raise _BodyRefused(413, too_large)
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except _BodyRefused as exc:
            if started:  # pragma: no cover - a handler never answers before its body is read
                raise
            log.info("%d: %s %s: %s", exc.status, scope.get("method"), scope.get("path"),
                     exc.message)
            await _send_json(send, exc.status, exc.message)


@endpoint
def root(req: Req) -> Response:
    """The landing page: what this server is and where its datastacks are listed."""
    return json_response({"service": "offline_cave (synthetic CAVE sample)",
                          "datastacks": sorted(req.registry.datastacks),
                          "info": f"{req.base_url}/info/api/v2/datastacks"})


ROUTE_MODULES = (info, schema, materialize, chunkedgraph, level2, l2cache, skeleton, meshing,
                 annotation, sessions, bulk, state, viewer)
ROUTES = [("root", root, ["GET"])]
"""(endpoint name, handler, methods) of the app itself."""


def registered_routes() -> list[tuple[str, Callable, list[str]]]:
    """Every (endpoint name, handler, methods) the route modules (and the app) register."""
    out = list(ROUTES)
    for module in ROUTE_MODULES:
        out += module.ROUTES
    return out


def build_routes() -> list[Route]:
    """Starlette routes in the order of :data:`~offline_cave.server.endpoints.ENDPOINTS`.

    An endpoint registered twice, a registration of an unknown endpoint name, or an endpoint
    without a handler is a programming error and raises :class:`ValueError`.
    """
    by_name: dict[str, tuple[Callable, list[str]]] = {}
    for name, handler, methods in registered_routes():
        if name not in ENDPOINTS:
            raise ValueError(f"route for unknown endpoint {name!r}")
        if name in by_name:
            raise ValueError(f"endpoint {name!r} registered twice")
        by_name[name] = (handler, methods)
    missing = [name for name in ENDPOINTS if name not in by_name]
    if missing:
        raise ValueError(f"endpoints without a handler: {missing}")
    return [Route(path, by_name[name][0], methods=by_name[name][1])
            for name, path in ENDPOINTS.items()]


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own errors (unknown path, wrong method) as JSON."""
    if exc.status_code == 404:
        return error_response(404, f"no such endpoint: {request.method} {request.url.path}")
    return error_response(exc.status_code, str(exc.detail))


def _loggable(text: str) -> str:
    """``text`` with lone surrogates and other unencodable characters as backslash escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


async def unexpected(request: Request, exc: Exception) -> Response:
    """Any other exception: counted, logged and answered as a JSON 500."""
    request.app.state.errors.add(f"{request.method} {request.url.path}: "
                                 f"{type(exc).__name__}: {exc}")
    log.exception("internal error on %s %s", request.method, request.url.path)
    return error_response(500, f"internal server error ({type(exc).__name__}); "
                               f"this is a bug in the offline server")


def create_app(data_dir: str | Path, *, public_url: str | None = None,
               datastacks: list[str] | None = None, limits: Limits | None = None,
               mesh_cache_bytes: int = DEFAULT_MESH_CACHE_BYTES,
               response_cache_bytes: int = DEFAULT_RESPONSE_CACHE_BYTES,
               warm: bool = True) -> Starlette:
    """Build the app serving every complete datastack directory under ``data_dir``.

    ``public_url`` (``http://127.0.0.1:PORT``) is what the info service advertises as
    ``local_server``; if None, each request's own base URL is used. ``limits`` bound every
    request (default :class:`~offline_cave.server.limits.Limits`); ``mesh_cache_bytes`` caps
    the built meshes kept on disk (:mod:`~offline_cave.server.data.mesh_cache`);
    ``response_cache_bytes`` the memory for answers to repeated identical queries
    (:mod:`~offline_cave.server.response_cache`, 0 = none). ``warm``
    reads the datastacks' in-memory indexes in a background thread at once
    (:mod:`~offline_cave.server.data.warm`) instead of on the first requests.
    """
    limits = limits or Limits()
    _install_log_filter()
    registry = Registry(Path(data_dir), datastacks, query_timeout=limits.query_timeout,
                        mesh_cache_bytes=mesh_cache_bytes)
    app = Starlette(routes=build_routes(),
                    middleware=[Middleware(BodyLimits), Middleware(TokenRequired)],
                    exception_handlers={HTTPException: http_error, Exception: unexpected})
    app.router.redirect_slashes = False
    app.state.registry = registry
    app.state.limits = limits
    app.state.schema_catalog = SchemaCatalog(registry)
    app.state.public_url = public_url.rstrip("/") if public_url else None
    app.state.errors = ErrorCounter()
    app.state.states = StateStore()
    app.state.response_cache = ResponseCache(response_cache_bytes)
    app.state.warm_up = warm_in_background(registry) if warm else None
    return app
