"""Run code against a temporary offline server with an isolated, configured HOME.

* :func:`offline_server` -- context manager: server on a free port (background thread), a
  HOME configured for it, both torn down afterwards; yields ``(url, home)``.
* :func:`child_env` -- the environment of a subprocess that should use that server and HOME
  (``python -m offline_cave exec`` runs its command with it).

cloud-volume reads ``HOME`` (and ``CLOUD_VOLUME_DIR``) when it is *imported*, so a process
must get the environment before importing it: subprocesses get it from :func:`child_env`;
in-process users pass ``set_environ=True`` before importing cloudvolume.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from offline_cave.client.configure import configure_home

ACTIVE: dict[str, object] = {}
"""URL -> ServerThread of every server started by :func:`offline_server` and still running."""


def child_env(url: str, home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a process that should talk to the offline server."""
    env = dict(os.environ if base is None else base)
    env["HOME"] = str(home)
    env["CLOUD_VOLUME_DIR"] = str(Path(home) / ".cloudvolume")
    env["OFFLINE_CAVE_URL"] = url
    return env


@contextmanager
def offline_server(data_dir: str | Path, *, home: str | Path | None = None,
                   datastacks: list[str] | None = None, seed: int = 0, scale: float = 1.0,
                   generate: bool = True, set_environ: bool = False,
                   host: str = "127.0.0.1",
                   mesh_cache_bytes: int | None = None) -> Iterator[tuple[str, Path]]:
    """Serve ``data_dir`` on a free port with a configured HOME; yield ``(url, home)``.

    ``home`` defaults to a new temporary directory (removed afterwards); a given directory is
    configured but kept. ``generate`` generates missing samples first (see
    :func:`offline_cave.prepare.prepare_data`). ``set_environ`` also points this process's
    ``HOME``/``CLOUD_VOLUME_DIR`` at the home for the duration (restored afterwards).
    ``mesh_cache_bytes`` caps the server's on-disk cache of built meshes (default 1 GiB).
    """
    from offline_cave.prepare import prepare_data
    from offline_cave.server import ServerThread

    found = prepare_data(Path(data_dir), seed=seed, scale=scale, datastacks=datastacks,
                         generate=generate)
    own_home = home is None
    home_path = Path(tempfile.mkdtemp(prefix="offline-cave-home-")) if own_home else Path(home)
    # only what prepare_data verified: a damaged datastack it left out is never served
    server = ServerThread(Path(data_dir), host=host, port=0,
                          datastacks=[p.name for p in found],
                          mesh_cache_bytes=mesh_cache_bytes).start()
    saved = {k: os.environ.get(k) for k in ("HOME", "CLOUD_VOLUME_DIR", "OFFLINE_CAVE_URL")}
    ACTIVE[server.url] = server
    try:
        names = sorted(server.app.state.registry.datastacks)
        configure_home(server.url, home_path, names)
        if set_environ:
            os.environ.update({k: v for k, v in child_env(server.url, home_path, {}).items()})
        yield server.url, home_path
    finally:
        if set_environ:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        ACTIVE.pop(server.url, None)
        server.stop()
        if own_home:
            shutil.rmtree(home_path, ignore_errors=True)
