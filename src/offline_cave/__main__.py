"""Command line: ``python -m offline_cave {generate,serve,configure,unconfigure,exec} ...``.

* ``generate``  write (or reuse) the cached synthetic sample of a datastack
* ``serve``     serve every sample datastack over HTTP speaking the CAVE protocol
* ``configure`` point caveclient / cloud-volume in a HOME at a server (map file + token)
* ``unconfigure`` put back every file ``configure`` changed in a HOME, byte for byte
* ``exec``      start a server on a free port with an isolated HOME, run a command, tear down
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import subprocess
import sys
from pathlib import Path

DEFAULT_DATA_DIR = Path("sample-data")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


_BYTE_UNITS = {"": 1, "K": 1 << 10, "KB": 1000, "KIB": 1 << 10, "M": 1 << 20, "MB": 10**6,
               "MIB": 1 << 20, "G": 1 << 30, "GB": 10**9, "GIB": 1 << 30}


def _bytes(text: str) -> int:
    """A size in bytes: ``1073741824``, ``1_000_000``, ``512M``/``512MiB``, ``1G``, ``2GB``."""
    raw = text.strip().replace("_", "")
    number = raw.rstrip("bBkKmMgGiI")
    unit = raw[len(number):].upper()
    try:
        value = float(number) * _BYTE_UNITS[unit]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (bytes, or with K, M, G, "
                                         f"MiB, GiB, MB, GB)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return int(value)


def _add_mesh_cache_flag(parser: argparse.ArgumentParser) -> None:
    from offline_cave.server.data.mesh_cache import DEFAULT_MESH_CACHE_BYTES

    parser.add_argument("--mesh-cache-bytes", type=_bytes, default=DEFAULT_MESH_CACHE_BYTES,
                        help="disk kept for built meshes, least recently served evicted "
                             "first (default 1GiB; 0 caches none); nor is one cached that would "
                             "leave less free disk than 2 GiB or 5 %% of the disk, if smaller")


def _add_response_cache_flag(parser: argparse.ArgumentParser) -> None:
    from offline_cave.server.response_cache import DEFAULT_RESPONSE_CACHE_BYTES

    parser.add_argument("--response-cache-bytes", type=_bytes,
                        default=DEFAULT_RESPONSE_CACHE_BYTES,
                        help="memory kept for answers to repeated identical queries (a class "
                             "running one page), least recently used evicted first (default "
                             "256MiB; 0 keeps none)")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m offline_cave", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write (or reuse) the cached synthetic sample")
    gen.add_argument("--datastack", action="append", default=None,
                     help="datastack to generate (repeatable; default: all)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--scale", type=_positive_float, default=1.0,
                     help="grow the slab (cells and synapses) by this factor (default 1)")
    gen.add_argument("--out", type=Path, default=DEFAULT_DATA_DIR, help="data directory")
    gen.add_argument("--force", action="store_true", help="regenerate even if cached")
    gen.add_argument("--skip-resource-check", action="store_true",
                     help="generate even when the memory or disk estimate does not fit")

    srv = sub.add_parser("serve", help="serve the sample datastacks (CAVE REST protocol)")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=_port, default=8765, help="0 picks a free port")
    srv.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    srv.add_argument("--seed", type=int, default=0)
    srv.add_argument("--scale", type=_positive_float, default=1.0)
    from offline_cave.server.limits import Limits

    d = Limits()
    lim = srv.add_argument_group("per-request limits (each answers a 4xx naming the limit)")
    lim.add_argument("--max-ids", type=_positive_int, default=d.max_ids,
                     help=f"distinct ids in one request or filter column (default {d.max_ids})")
    lim.add_argument("--max-body-bytes", type=_positive_int, default=d.max_body_bytes,
                     help=f"request body size, counted as it arrives (default "
                          f"{d.max_body_bytes})")
    lim.add_argument("--max-rows", type=_positive_int, default=d.max_rows,
                     help=f"rows of one query response; the largest limit and random_sample "
                          f"(default {d.max_rows})")
    lim.add_argument("--read-timeout", type=_positive_float, default=d.read_timeout,
                     help=f"seconds to wait for more of a request body (default "
                          f"{d.read_timeout:g})")
    lim.add_argument("--query-timeout", type=_positive_float, default=d.query_timeout,
                     help=f"seconds one database query may run (default {d.query_timeout:g})")

    _add_mesh_cache_flag(srv)
    _add_response_cache_flag(srv)

    cfg = sub.add_parser("configure", help="point caveclient/cloud-volume at a server")
    cfg.add_argument("--server", required=True, help="e.g. http://127.0.0.1:8765")
    cfg.add_argument("--home", type=Path, default=None, help="HOME to write into (default $HOME)")
    cfg.add_argument("--force", action="store_true",
                     help="replace a server-specific token file this tool did not write, or "
                          "an unreadable server map (the old file is kept for unconfigure)")

    unc = sub.add_parser("unconfigure", help="undo configure: restore the HOME as it was")
    unc.add_argument("--home", type=Path, default=None, help="HOME to restore (default $HOME)")

    exe = sub.add_parser("exec", help="run a command against a temporary server and HOME")
    exe.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    exe.add_argument("--seed", type=int, default=0)
    exe.add_argument("--scale", type=_positive_float, default=1.0)
    _add_mesh_cache_flag(exe)
    exe.add_argument("cmd", nargs=argparse.REMAINDER, help="command after --")
    return parser


# ---------------------------------------------------------------------- commands
def cmd_generate(args: argparse.Namespace) -> int:
    """Entry point of ``python -m offline_cave generate``."""
    from offline_cave.contract.params import DATASTACKS
    from offline_cave.generator.pipeline import SampleError, ensure_sample


    names = args.datastack or sorted(DATASTACKS)
    try:
        for name in names:
            ensure_sample(args.out, name, seed=args.seed, scale=args.scale, force=args.force,
                          check_resources=not args.skip_resource_check)
    except SampleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


# long but linear: bind the port, check the data, build the app, announce the URL, run
def cmd_serve(args: argparse.Namespace) -> int:
    """``python -m offline_cave serve``: print one line with the URL, serve until stopped."""
    from offline_cave.server import PortInUseError, bind_socket

    # The port first: a port in use is a one-line error at once, before the sample is
    # checked or rebuilt (a rebuild takes a minute) and before the app's imports.
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
    try:
        return _serve_on(sock, args)
    finally:
        sock.close()


def _serve_on(sock: socket.socket, args: argparse.Namespace) -> int:
    """``serve`` once its socket is bound: prepare the data, build the app, run it."""
    from offline_cave.prepare import SampleMissingError, prepare_data
    from offline_cave.server import WILDCARD_HOSTS, Limits, create_app, url_for, uvicorn_server

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    data_dir = Path(args.data)
    try:
        found = prepare_data(data_dir, seed=args.seed, scale=args.scale)
    except SampleMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    url = url_for(args.host, port)
    # On a wildcard address (an instructor serving a room) every client reaches the server
    # under its own name for it, so the URLs the info service hands out (local_server,
    # segmentation_source) are built from each request's Host header, not from `url`.
    wildcard = args.host in WILDCARD_HOSTS
    limits = Limits(max_ids=args.max_ids, max_body_bytes=args.max_body_bytes,
                    max_rows=args.max_rows, read_timeout=args.read_timeout,
                    query_timeout=args.query_timeout)
    app = create_app(data_dir, public_url=None if wildcard else url, limits=limits,
                     datastacks=[p.name for p in found],  # only what prepare_data verified
                     mesh_cache_bytes=args.mesh_cache_bytes,
                     response_cache_bytes=args.response_cache_bytes)
    server = uvicorn_server(app)
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
    return 0


def cmd_configure(args: argparse.Namespace) -> int:
    """``python -m offline_cave configure --server URL [--home DIR] [--force]``."""
    from offline_cave.client.configure import (
        TOKEN_FILE,
        ConfigureError,
        configure_home,
        normalize_server_url,
        served_datastacks,
    )


    home = Path(args.home) if args.home else Path.home()
    try:
        url = normalize_server_url(args.server)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        names = served_datastacks(url)
    except (OSError, ValueError) as exc:
        from offline_cave.contract.params import DATASTACKS

        names = sorted(DATASTACKS)
        print(f"warning: could not ask {url} for its datastacks ({exc}); configuring "
              f"{', '.join(names)}", file=sys.stderr)
    try:
        result = configure_home(url, home, names, force=args.force)
    except ConfigureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result.map_path in result.changed:
        print(f"{result.map_path}: {', '.join(result.datastacks)} -> {url}")
    else:
        print(f"{result.map_path}: already points {', '.join(result.datastacks)} at {url}")
    if result.token_backup is not None:
        print(f"{result.token_path}: replaced (the previous file is saved in "
              f"{result.token_backup})")
    elif result.token_written:
        print(f"{result.token_path}: dummy token written (used for this server only)")
    else:
        print(f"{result.token_path}: existing offline dummy token kept")
    default = result.token_path.with_name(TOKEN_FILE)
    if result.default_token == "kept (real)":
        print(f"{default}: your own token is kept unchanged (it is used for the public "
              f"services, never sent to {url})")
    else:
        print(f"{default}: not created (save your own token there later as usual)")
    print(f"undo all of this with: python -m offline_cave unconfigure"
          f"{'' if args.home is None else f' --home {args.home}'}")
    return 0


def cmd_unconfigure(args: argparse.Namespace) -> int:
    """``python -m offline_cave unconfigure [--home DIR]``."""
    from offline_cave.client.configure import ConfigureError, unconfigure_home

    home = Path(args.home) if args.home else Path.home()
    try:
        result = unconfigure_home(home)
    except (ConfigureError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result.nothing_to_do:
        print(f"{home}: nothing to undo (no record of `configure` in this HOME)")
        return 0
    for path in result.restored:
        print(f"{path}: restored as it was before configure")
    for path in result.removed:
        print(f"{path}: removed (configure had created it)")
    for path in result.kept:
        print(f"{path}: changed since configure, so kept as it is", file=sys.stderr)
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    """``python -m offline_cave exec --data DIR -- cmd args...``; returns cmd's exit code."""
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print("error: give a command after --, e.g. python -m offline_cave exec -- "
              "python script.py", file=sys.stderr)
        return 2
    from offline_cave.client.runner import child_env, offline_server
    from offline_cave.prepare import SampleMissingError

    try:
        with offline_server(args.data, seed=args.seed, scale=args.scale,
                            mesh_cache_bytes=args.mesh_cache_bytes) as (url, home):
            print(f"offline CAVE server at {url} (HOME={home})", file=sys.stderr, flush=True)
            try:
                return subprocess.call(cmd, env=child_env(url, home))
            except FileNotFoundError:
                print(f"error: command not found: {cmd[0]}", file=sys.stderr)
                return 127
            except KeyboardInterrupt:
                return 130
    except SampleMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


COMMANDS = {"generate": "cmd_generate", "serve": "cmd_serve", "configure": "cmd_configure",
            "unconfigure": "cmd_unconfigure", "exec": "cmd_exec"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return globals()[COMMANDS[args.command]](args)


if __name__ == "__main__":
    sys.exit(main())
