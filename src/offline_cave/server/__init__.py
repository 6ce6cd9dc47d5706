"""The offline CAVE server: serves sample datastacks over loopback HTTP.

It serves what is on disk and nothing else: it never imports the generator (checking and
repairing a sample before serving it is :mod:`offline_cave.prepare`'s job).

* :func:`create_app` -- the Starlette app (see :mod:`offline_cave.server.app`)
* :class:`ServerThread` -- run the app on a free port in a background thread (tests, runner)
* :func:`bind_socket`, :func:`url_for`, :func:`uvicorn_server` -- the pieces ``serve`` uses
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from pathlib import Path

from offline_cave.server.limits import Limits

__all__ = ["create_app", "Limits", "ServerThread", "bind_socket", "url_for", "uvicorn_server",
           "PortInUseError", "WILDCARD_HOSTS"]

log = logging.getLogger("offline_cave.server")


def __getattr__(name: str):
    # The app (Starlette, DuckDB, pyarrow, every route) is imported on first use, so
    # `serve` can check its port with bind_socket before it pays for that, or for a rebuild.
    if name == "create_app":
        from offline_cave.server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PortInUseError(OSError):
    """The requested port is taken."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; :class:`PortInUseError` if the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(exc.errno, f"port {port} on {host} is already in use") from None
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


WILDCARD_HOSTS = ("0.0.0.0", "", "::")


def url_for(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def uvicorn_server(app, log_level: str = "warning"):
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=3, timeout_keep_alive=30,
                            server_header=False)
    return uvicorn.Server(config)


class ServerThread:
    """The app served by uvicorn in a daemon thread on ``host:port`` (0 = a free port)."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int = 0,
                 datastacks: list[str] | None = None, limits: Limits | None = None,
                 mesh_cache_bytes: int | None = None) -> None:
        self.sock = bind_socket(host, port)
        self.port = self.sock.getsockname()[1]
        self.url = url_for(host, self.port)
        from offline_cave.server.app import create_app

        extra = {} if mesh_cache_bytes is None else {"mesh_cache_bytes": mesh_cache_bytes}
        self.app = create_app(data_dir, public_url=self.url, datastacks=datastacks,
                              limits=limits, **extra)
        self.server = uvicorn_server(self.app)
        self.thread = threading.Thread(target=self._run, name="offline-cave-server",
                                       daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # pragma: no cover - reported by start()
            self.error = exc

    def start(self, timeout: float = 20.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if self.error is not None or not self.thread.is_alive():
                raise RuntimeError(f"offline server failed to start: {self.error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("offline server did not start in time")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        try:
            self.sock.close()
        except OSError:  # pragma: no cover
            pass

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
