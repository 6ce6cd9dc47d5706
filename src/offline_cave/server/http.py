"""Small HTTP helpers shared by the route modules: errors, request parsing, responses.

This is the only module that maps errors to HTTP status codes: :class:`ApiError` carries its
own (request-level problems found by the routes), and the data layer's domain errors
(:mod:`offline_cave.server.data.errors`) get theirs from :data:`DATA_ERROR_STATUS`.

Every handler is a plain synchronous function ``handler(req: Req) -> Response``; the
:func:`endpoint` wrapper reads the raw body in the event loop (several caveclient GETs carry a
JSON body, several POSTs have no Content-Type) and runs the handler in the thread pool, so
DuckDB work never blocks the loop and requests are served concurrently.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from offline_cave.server.data import errors
from offline_cave.server.data.errors import shown
from offline_cave.server.limits import MAX_JSON_DEPTH, Limits
from offline_cave.server.response_cache import CachedResponse, request_key

if TYPE_CHECKING:
    from offline_cave.server.data.schemas import SchemaCatalog
    from offline_cave.server.data.store import Registry

log = logging.getLogger("offline_cave.server")

INT64_MAX = 2**63 - 1
ARROW_CONTENT_TYPE = "data.arrow"


class ApiError(Exception):
    """An error answered as JSON ``{"message": ...}`` with the given HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


DATA_ERROR_STATUS: dict[type[errors.DataError], int] = {
    errors.DataError: 400,
    errors.InvalidQuery: 400,
    errors.MissingDatastack: 404,
    errors.MissingVersion: 404,
    errors.MissingTable: 404,
    errors.MissingView: 404,
    errors.MissingSchema: 404,
    errors.MissingRoot: 404,
    errors.MissingArtefact: 404,
    errors.TooMany: 400,
    errors.QueryTimeout: 503,
    errors.OutOfResources: 503,
    errors.StateTooLarge: 413,
    errors.StateStoreFull: 429,
}
"""HTTP status of every domain error (the nearest listed class of its MRO decides)."""


def status_of(exc: errors.DataError) -> int:
    """The HTTP status a domain error is answered with."""
    for cls in type(exc).__mro__:
        if cls in DATA_ERROR_STATUS:
            return DATA_ERROR_STATUS[cls]
    raise TypeError(f"{type(exc).__name__} is not a DataError")  # pragma: no cover


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


@dataclass
class Req:
    """What a synchronous handler sees of a request."""

    method: str
    path: str
    path_params: dict[str, Any]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    base_url: str
    app_state: Any

    @property
    def registry(self) -> Registry:
        """The served datastacks (``app.state.registry``)."""
        return self.app_state.registry

    @property
    def limits(self) -> Limits:
        """The per-request limits (``app.state.limits``)."""
        return getattr(self.app_state, "limits", None) or Limits()

    @property
    def schema_catalog(self) -> SchemaCatalog:
        """The schema definitions (``app.state.schema_catalog``)."""
        return self.app_state.schema_catalog

    def json_body(self, *, required: bool = False, default: Any = None) -> Any:
        """Parse the raw body as JSON whatever the Content-Type (empty -> ``default``)."""
        if not self.body or not self.body.strip():
            if required:
                raise bad_request("this endpoint needs a JSON request body")
            return default
        depth = json_depth(self.body)
        if depth > MAX_JSON_DEPTH:
            raise bad_request(f"request body is nested {depth} levels deep; at most "
                              f"{MAX_JSON_DEPTH} levels of [ and {{ are accepted")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise bad_request(f"request body is not valid JSON: {shown(exc)}") from None

    def qbool(self, key: str, default: bool = False) -> bool:
        """A query-string boolean as sent by caveclient (``True``/``False``)."""
        value = self.query.get(key)
        if value is None or value == "":
            return default
        low = value.strip().lower()
        if low in ("true", "1", "t", "yes"):
            return True
        if low in ("false", "0", "f", "no", "none"):
            return False
        raise bad_request(f"query parameter '{key}' must be True or False; got {value!r:.40}")

    def qint(self, key: str, default: int | None = None, minimum: int | None = None) -> int | None:
        value = self.query.get(key)
        if value is None or value == "":
            return default
        out = parse_int(value, f"query parameter '{key}'")
        if minimum is not None and out < minimum:
            raise bad_request(f"query parameter '{key}' must be >= {minimum}; got {out}")
        return out

    def qtime(self, key: str, default: float | None = None) -> float | None:
        value = self.query.get(key)
        if value is None or value == "" or value == "None":
            return default
        return parse_time(value, f"query parameter '{key}'")


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def json_depth(body: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in JSON text (strings skipped), without recursion."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return 0  # cannot be deeper than the limit: skip the scan
    text = np.frombuffer(_JSON_STRING.sub(b'""', body), dtype=np.uint8)
    steps = (np.isin(text, (ord("["), ord("{"))).astype(np.int32)
             - np.isin(text, (ord("]"), ord("}"))))
    return int(np.cumsum(steps).max()) if len(steps) else 0


def parse_int(value: Any, what: str, *, allow_negative: bool = True) -> int:
    """An int64 from JSON/URL text; 400 on anything else."""
    if isinstance(value, bool):
        raise bad_request(f"{what} must be an integer; got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        if not re.fullmatch(r"\s*[-+]?\d{1,25}\s*", value):
            raise bad_request(f"{what} must be an integer; got {value!r:.60}")
        value = int(value)
    if not isinstance(value, int):
        raise bad_request(f"{what} must be an integer; got {type(value).__name__}")
    if not -(2**63) <= value <= INT64_MAX or (not allow_negative and value < 0):
        raise bad_request(f"{what} must be a 64-bit id; {value} is out of range")
    return value


def parse_id_list(value: Any, what: str, max_ids: int | None = None) -> list[int]:
    """A JSON list of int64 ids (a single id is accepted as a one-element list).

    With ``max_ids``, more than that many *distinct* ids is a 400 (repeats are free).
    """
    if isinstance(value, int | str) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list):
        raise bad_request(f"{what} must be a list of integer ids; got {type(value).__name__}")
    ids = [parse_int(v, what) for v in value]
    check_id_count(len(set(ids)), what, max_ids)
    return ids


def check_id_count(n_distinct: int, what: str, max_ids: int | None) -> None:
    """400 when a request holds more than ``max_ids`` distinct ids."""
    if max_ids is not None and n_distinct > max_ids:
        raise bad_request(f"{what}: {n_distinct} distinct ids; this server answers at most "
                          f"{max_ids} per request (serve --max-ids); split the request")


def parse_time(value: Any, what: str) -> float:
    """Unix seconds from a float/int or an ISO string (naive means UTC)."""
    if isinstance(value, bool):
        raise bad_request(f"{what} must be a time; got {value!r}")
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                raise bad_request(f"{what} must be unix seconds or an ISO time; got "
                                  f"{value!r:.60}") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            out = parsed.timestamp()
    else:
        raise bad_request(f"{what} must be a time; got {type(value).__name__}")
    if not math.isfinite(out) or abs(out) > 1e11:
        raise bad_request(f"{what} is not a plausible unix time: {value!r:.60}")
    return out


def iso_naive(ts: float) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffff`` naive UTC (what caveclient parses)."""
    return datetime.fromtimestamp(ts, tz=UTC).replace(tzinfo=None).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")


def header_safe(text: str, limit: int = 1000) -> str:
    """Make text usable as an HTTP header value (latin-1, one line)."""
    text = " ".join(str(text).split())[:limit]
    return text.encode("latin-1", "replace").decode("latin-1")


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(obj, status_code=status, headers=headers)


MAX_MESSAGE_CHARS = 1000


def error_response(status: int, message: str) -> Response:
    """A JSON error; the message is made safe to send (escaped, at most 1,000 characters)."""
    message = shown(message, MAX_MESSAGE_CHARS)
    return JSONResponse({"message": message, "error": message, "code": status},
                        status_code=status)


def arrow_response(table: pa.Table, headers: dict[str, str]) -> Response:
    """An Arrow IPC *stream* with ``Content-Type: data.arrow`` exactly."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    body = sink.getvalue().to_pybytes()
    resp = Response(body, status_code=200, headers=headers)
    resp.headers["content-type"] = ARROW_CONTENT_TYPE
    return resp


def cached(settings: Callable[[], object]) -> Callable[[Callable[[Req], Response]],
                                                       Callable[[Req], Response]]:
    """Answer identical requests from ``app.state.response_cache`` (see
    :mod:`offline_cave.server.response_cache`): only for handlers whose answer depends on the
    request, the served files, the server's limits and ``settings()`` (the route module's own
    constants that decide an answer, e.g. its row caps) alone. Errors and non-200 answers are
    never kept."""
    return functools.partial(_cached, settings=settings)


def _cached(handler: Callable[[Req], Response], settings: Callable[[], object]
            ) -> Callable[[Req], Response]:
    @functools.wraps(handler)
    def wrapped(req: Req) -> Response:
        cache = getattr(req.app_state, "response_cache", None)
        if cache is None:
            return handler(req)
        key = request_key(req.path, req.query, req.body, (req.limits, settings()))

        def compute() -> tuple[CachedResponse | None, Response]:
            resp = handler(req)
            if resp.status_code != 200 or not isinstance(resp.body, bytes):
                return None, resp
            headers = tuple((k, v) for k, v in resp.raw_headers if k != b"content-length")
            return CachedResponse(resp.body, headers), resp

        entry, resp = cache.get_or_compute(key, compute)
        if resp is not None:
            return resp
        out = Response(entry.body, status_code=200)
        out.raw_headers = [*entry.headers,
                           (b"content-length", str(len(entry.body)).encode("latin-1"))]
        return out

    return wrapped


def endpoint(handler: Callable[[Req], Response]) -> Callable[[Request], Any]:
    """Wrap a synchronous handler as a Starlette endpoint (body read first, thread pool)."""

    async def wrapped(request: Request) -> Response:
        body = await request.body()  # bounded in size and time by app.BodyLimits
        state = request.app.state
        base = getattr(state, "public_url", None) or str(request.base_url).rstrip("/")
        req = Req(method=request.method, path=request.url.path,
                  path_params=dict(request.path_params), query=dict(request.query_params),
                  headers={k.lower(): v for k, v in request.headers.items()}, body=body,
                  base_url=base, app_state=state)
        try:
            return await run_in_threadpool(handler, req)
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        except errors.DataError as exc:
            return error_response(status_of(exc), exc.message)

    wrapped.__name__ = getattr(handler, "__name__", "endpoint")
    wrapped.__qualname__ = getattr(handler, "__qualname__", wrapped.__name__)
    wrapped.sync_handler = handler  # type: ignore[attr-defined]  # read by the tests
    wrapped.__doc__ = handler.__doc__
    return wrapped
