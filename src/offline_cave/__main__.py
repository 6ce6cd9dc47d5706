"""Command line: ``python -m offline_cave {generate,serve,configure,exec} ...``.

* ``generate``  write (or reuse) the cached synthetic sample of a datastack
* ``serve``     serve every sample datastack over HTTP speaking the CAVE protocol
* ``configure`` point caveclient / cloud-volume in a HOME at a server (map file + token)
* ``exec``      start a server on a free port with an isolated HOME, run a command, tear down
"""

from __future__ import annotations

import argparse
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

    cfg = sub.add_parser("configure", help="point caveclient/cloud-volume at a server")
    cfg.add_argument("--server", required=True, help="e.g. http://127.0.0.1:8765")
    cfg.add_argument("--home", type=Path, default=None, help="HOME to write into (default $HOME)")
    cfg.add_argument("--force", action="store_true",
                     help="replace a server-specific token file this tool did not write, or "
                          "an unreadable server map (the old file is kept as a backup)")

    exe = sub.add_parser("exec", help="run a command against a temporary server and HOME")
    exe.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    exe.add_argument("--seed", type=int, default=0)
    exe.add_argument("--scale", type=_positive_float, default=1.0)
    exe.add_argument("cmd", nargs=argparse.REMAINDER, help="command after --")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "generate":
        from offline_cave.sample import cli_generate

        return cli_generate(args)
    if args.command == "serve":
        from offline_cave.server import cli_serve

        return cli_serve(args)
    if args.command == "configure":
        from offline_cave.configure import cli_configure

        return cli_configure(args)
    if args.command == "exec":
        from offline_cave.runner import cli_exec

        return cli_exec(args)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
