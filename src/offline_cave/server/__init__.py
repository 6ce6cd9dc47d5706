"""The offline CAVE server: serves sample datastacks over loopback HTTP.

Entry points:

* :func:`cli_serve` -- ``python -m offline_cave serve [--host] [--port] [--data]``
* :func:`create_app` -- the Starlette app (see :mod:`offline_cave.server.app`)
* :class:`ServerThread` -- run the app on a free port in a background thread (tests, runner)
* :func:`prepare_data` -- make sure sample directories exist (generating missing ones)
"""

from __future__ import annotations

import errno
import json
import logging
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from offline_cave import layout
from offline_cave.server.app import create_app
from offline_cave.server.store import find_datastacks

__all__ = ["create_app", "cli_serve", "ServerThread", "prepare_data", "SampleMissingError",
           "bind_socket", "PortInUseError"]

log = logging.getLogger("offline_cave.server")


class SampleMissingError(RuntimeError):
    """No usable sample on disk, and none can be generated (no generator, bad parameters, not
    enough memory or disk)."""


class PortInUseError(OSError):
    """The requested port is taken."""


def prepare_data(data_dir: Path, seed: int = 0, scale: float = 1.0,
                 datastacks: list[str] | None = None, generate: bool = True) -> list[Path]:
    """Return the servable datastack directories under ``data_dir``, generating missing ones.

    A datastack is servable when its directory has ``MANIFEST.json`` (written last by the
    generator) and every file the manifest lists has its recorded size: a cheap check that
    finds missing and truncated files (``generate`` also compares checksums). With ``generate``
    (the default) the missing datastacks of ``datastacks`` (default every datastack in
    ``offline_cave.params.DATASTACKS``) are generated and damaged ones rebuilt with the seed and
    scale they were made with, so start-up stays fast when the sample is intact; with
    ``generate=False`` damaged ones are left out with a warning.
    """
    from offline_cave.params import DATASTACKS

    data_dir = Path(data_dir)
    usable: list[str] = []
    for ds in find_datastacks(data_dir):
        problem = damaged(ds)
        if problem is None:
            usable.append(ds.name)
            continue
        log.warning("%s under %s is damaged: %s", ds.name, data_dir, problem)
        if generate and ds.name in DATASTACKS:
            made = _manifest(ds)
            ensure_sample_stderr(data_dir, ds.name, int(made.get("seed", seed)),
                                 float(made.get("scale", scale)))
            usable.append(ds.name)
    if generate:
        for name in datastacks or list(DATASTACKS):
            if name not in usable:
                log.warning("generating the %s sample under %s (seed %s, scale %s)", name,
                            data_dir, seed, scale)
                ensure_sample_stderr(data_dir, name, seed, scale)
                usable.append(name)
    found = [p for p in find_datastacks(data_dir) if p.name in usable]
    if not found:
        raise SampleMissingError(f"no complete sample datastack under {data_dir}")
    return found


def _manifest(ds_dir: Path) -> dict:
    try:
        made = json.loads((ds_dir / layout.MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return made if isinstance(made, dict) else {}


def damaged(ds_dir: Path) -> str | None:
    """Why a datastack directory with a MANIFEST cannot be served (cheap: sizes only)."""
    from offline_cave.files import verify_files

    files = _manifest(ds_dir).get("files")
    if not isinstance(files, dict) or not files:
        return f"unreadable {layout.MANIFEST}"
    try:
        return verify_files(ds_dir, files, deep=False)
    except (OSError, KeyError, TypeError) as exc:
        return f"unreadable {layout.MANIFEST} ({exc})"


def ensure_sample_stderr(data_dir: Path, name: str, seed: int, scale: float) -> None:
    """Generate (or repair) a sample, reporting on stderr: stdout is serve's URL line."""
    try:
        from offline_cave.sample import SampleError, ensure_sample
    except ImportError as exc:
        raise SampleMissingError(
            f"no usable sample for {name} under {data_dir} and the generator "
            f"(offline_cave.sample) is not available: {exc}") from exc
    try:
        ensure_sample(data_dir, name, seed, scale,
                      log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except SampleError as exc:
        raise SampleMissingError(f"cannot generate the {name} sample under {data_dir}: "
                                 f"{exc}") from None


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


def _uvicorn_server(app, log_level: str = "warning"):
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=3, timeout_keep_alive=30,
                            server_header=False)
    return uvicorn.Server(config)


class ServerThread:
    """The app served by uvicorn in a daemon thread on ``host:port`` (0 = a free port)."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int = 0,
                 datastacks: list[str] | None = None) -> None:
        self.sock = bind_socket(host, port)
        self.port = self.sock.getsockname()[1]
        self.url = url_for(host, self.port)
        self.app = create_app(data_dir, public_url=self.url, datastacks=datastacks)
        self.server = _uvicorn_server(self.app)
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


def cli_serve(args) -> int:
    """``python -m offline_cave serve``: print one line with the URL, serve until stopped."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    data_dir = Path(args.data)
    try:
        found = prepare_data(data_dir, seed=args.seed, scale=args.scale)
    except SampleMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        sock = bind_socket(args.host, args.port)
    except PortInUseError:
        print(f"error: port {args.port} on {args.host} is already in use; pick another with "
              f"--port, or --port 0 for a free one", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    url = url_for(args.host, port)
    # On a wildcard address (an instructor serving a room) every client reaches the server
    # under its own name for it, so the URLs the info service hands out (local_server,
    # segmentation_source) are built from each request's Host header, not from `url`.
    wildcard = args.host in WILDCARD_HOSTS
    app = create_app(data_dir, public_url=None if wildcard else url)
    server = _uvicorn_server(app)
    names = ", ".join(p.name for p in found)

    def stop(*_: object) -> None:
        server.should_exit = True

    # Installed before the URL is printed, so a signal that arrives before uvicorn takes over
    # its own handlers still stops the server cleanly; uvicorn also re-raises the captured
    # signal after its graceful shutdown, which lands here too. Both end with exit status 0.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"offline CAVE server ({names}) listening on {url}", flush=True)
    if wildcard:
        print(f"listening on every interface: other machines use http://"
              f"{socket.gethostname()}:{port} (or this machine's IP address) with "
              f"`python -m offline_cave configure --server ...`", file=sys.stderr, flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return 0
