"""Shared pytest fixtures for the offline-server tests.

``served`` builds the tiny fixture datastack (or uses ``$OFFLINE_CAVE_TEST_DATA``, a directory
of real generated samples), starts the server through :func:`offline_cave.runner.offline_server`
on a free port with an isolated, configured HOME, and points this process's caveclient
(``HOME``, read at call time) and cloud-volume (its secrets directory, read at import time, so it
is re-pointed here) at it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sample_fixture import Fixture, build_fixture

from offline_cave.runner import offline_server

DATASTACK = "minnie65_public"
AUTH = {"Authorization": "Bearer 0123456789abcdef0123456789abcdef"}
"""A token header for raw HTTP requests (the server answers 401 without one)."""


@dataclass
class Served:
    """A running server and where its data and HOME live."""

    url: str
    home: Path
    data_dir: Path
    ds_dir: Path
    fixture: Fixture | None
    app_state: object


def _point_cloudvolume_at(home: Path) -> None:
    import cloudvolume.secrets as cvs

    cvs.CLOUD_VOLUME_DIR = str(home / ".cloudvolume")
    cvs.CAVE_CREDENTIALS_CACHE.clear()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    real = os.environ.get("OFFLINE_CAVE_TEST_DATA")
    if real:
        data_dir = Path(real)
        fixture = None
    else:
        data_dir = tmp_path_factory.mktemp("sample")
        fixture = build_fixture(data_dir)
    home = tmp_path_factory.mktemp("home")
    old_home = os.environ.get("HOME")
    with offline_server(data_dir, home=home, generate=False) as (url, home_path):
        os.environ["HOME"] = str(home_path)
        _point_cloudvolume_at(home_path)
        from offline_cave.runner import ACTIVE

        state = ACTIVE[url].app.state
        try:
            yield Served(url=url, home=home_path, data_dir=data_dir,
                         ds_dir=data_dir / DATASTACK, fixture=fixture, app_state=state)
        finally:
            if old_home is None:
                os.environ.pop("HOME", None)
            else:
                os.environ["HOME"] = old_home


@pytest.fixture(scope="module")
def client(served: Served):
    from caveclient import CAVEclient

    return CAVEclient(DATASTACK)
