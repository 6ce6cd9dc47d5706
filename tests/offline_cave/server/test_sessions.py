"""The V1DD session files over HTTP: an offline class has one copy, on the instructor's server,
and ``connectomics_book.sessions.session_path`` downloads it once into the student's cache.

Runs on the generated default sample (``OFFLINE_CAVE_DATA``, default ``sample-data``), whose
``v1dd_public/sessions/`` holds the NWB files and their manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from connectomics_book import sessions, sources
from offline_cave.client.runner import offline_server
from offline_cave.generator.pipeline import ensure_sample
from offline_cave.server.data.errors import MissingArtefact
from offline_cave.server.data.sessions import SessionFiles
from tests.fixtures.paths import REPO_ROOT

DATA = Path(os.environ.get("OFFLINE_CAVE_DATA", REPO_ROOT / "sample-data"))
AUTH = {"Authorization": "Bearer 0123456789abcdef0123456789abcdef"}


@pytest.fixture(scope="module")
def ds_dir() -> Path:
    return ensure_sample(DATA, "v1dd_public", deep=False, log=lambda *_: None)


@pytest.fixture(scope="module")
def served(ds_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("home-sessions")
    with offline_server(ds_dir.parent, home=home, datastacks=["v1dd_public"],
                        generate=False) as (url, home_path):
        yield url, home_path


@pytest.fixture
def student(served: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> str:
    """This process as a student whose HOME `configure` pointed at the server."""
    url, home = served
    monkeypatch.setenv("HOME", str(home))
    for name in (sessions.ENV_NWB_DIR, sessions.ENV_SAMPLE_DIR, sources.ENV_SOURCES_FILE,
                 sources.ENV_CACHE_DIR):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(home)  # no sample-data directory to fall back on
    return url


def manifest_of(ds_dir: Path) -> dict:
    return json.loads((ds_dir / "sessions" / "MANIFEST.json").read_text())


def test_the_manifest_lists_the_sample_sessions(served: tuple[str, Path], ds_dir: Path) -> None:
    url = served[0]
    r = requests.get(f"{url}/sessions/api/v1/datastack/v1dd_public/manifest", headers=AUTH,
                     timeout=30)
    assert r.status_code == 200
    listed = {(s["column"], s["volume"]): s for s in r.json()["sessions"]}
    truth = manifest_of(ds_dir)
    assert set(listed) == {(s["column"], s["volume"]) for s in truth["sessions"]}
    for s in listed.values():
        assert s["sha256"] == truth["files"][s["file"]]["sha256"]
    assert requests.get(f"{url}/sessions/api/v1/datastack/v1dd_public/manifest",
                        timeout=30).status_code == 401


@pytest.mark.parametrize("name", ["MANIFEST.json", "rois_truth.parquet", "..%2F..%2Fx.nwb",
                                  "x" * 300 + ".nwb", "%2e%2e"])
def test_only_listed_session_files_are_served(served: tuple[str, Path], name: str) -> None:
    r = requests.get(f"{served[0]}/sessions/api/v1/datastack/v1dd_public/file/{name}",
                     headers=AUTH, timeout=30)
    assert r.status_code == 404, r.text
    assert "message" in r.json()


def test_session_path_downloads_once_and_reuses(student: str, ds_dir: Path) -> None:
    path = sessions.session_path(2, 3)
    home = Path(os.environ["HOME"])
    assert home / ".cache" / "connectomics_book" / "v1dd_sessions" in path.parents
    truth = next(s for s in manifest_of(ds_dir)["sessions"] if (s["column"], s["volume"]) == (2, 3))
    assert path.name == truth["file"]
    assert path.read_bytes() == (ds_dir / "sessions" / truth["file"]).read_bytes()
    stamp = path.stat().st_mtime_ns
    assert sessions.session_path(2, 3) == path and path.stat().st_mtime_ns == stamp
    # a damaged cached copy (same size) is replaced by a fresh download
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert sessions.session_path(2, 3).read_bytes() == (ds_dir / "sessions" / truth["file"]).read_bytes()
    with pytest.raises(FileNotFoundError, match="Sessions there"):
        sessions.session_path(5, 1)


def test_a_damaged_session_file_is_refused(tmp_path: Path) -> None:
    sdir = tmp_path / "sessions"
    sdir.mkdir()
    good, bad = b"intact bytes", b"damaged bytes"
    (sdir / "a.nwb").write_bytes(good)
    (sdir / "b.nwb").write_bytes(bad)
    import hashlib

    digest = hashlib.sha256(good).hexdigest()
    (sdir / "MANIFEST.json").write_text(json.dumps({
        "sessions": [{"column": 1, "volume": 1, "file": "a.nwb"},
                     {"column": 1, "volume": 2, "file": "b.nwb"}],
        "files": {"a.nwb": {"bytes": len(good), "sha256": digest},
                  "b.nwb": {"bytes": len(bad), "sha256": digest}}}))
    files = SessionFiles(tmp_path, "test")
    assert files.path("a.nwb").read_bytes() == good
    with pytest.raises(MissingArtefact, match="damaged"):
        files.path("b.nwb")
