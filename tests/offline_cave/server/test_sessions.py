"""The V1DD session files over HTTP: an offline class has one copy, on the instructor's server,
and ``connectomics_book.sessions.session_path`` downloads it once into the student's cache.

Runs on the generated default sample (``OFFLINE_CAVE_DATA``, default ``sample-data``), whose
``v1dd_public/sessions/`` holds the Zarr NWB stores (in their asset folders) and their
manifest. A store is a directory: it travels as the zip of its asset folder and is unpacked
into the cache, where ``pynwb.read_nwb`` opens it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pynwb
import pytest
import requests

from connectomics_book import sessions, sources
from offline_cave.client.runner import offline_server
from offline_cave.contract.archive import archive_entry, iter_archive
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
    stores = {s["archive"]: s["file"] for s in truth["sessions"]}
    for s in listed.values():
        assert s["file"].endswith(".zip") and s["store"] == stores[s["file"]]
        assert (s["bytes"], s["sha256"]) == (truth["archives"][s["file"]]["bytes"],
                                             truth["archives"][s["file"]]["sha256"])
    assert requests.get(f"{url}/sessions/api/v1/datastack/v1dd_public/manifest",
                        timeout=30).status_code == 401


def test_the_streamed_archive_is_the_listed_one(served: tuple[str, Path], ds_dir: Path) -> None:
    url = served[0]
    entry = requests.get(f"{url}/sessions/api/v1/datastack/v1dd_public/manifest",
                         headers=AUTH, timeout=30).json()["sessions"][0]
    r = requests.get(f"{url}/sessions/api/v1/datastack/v1dd_public/file/{entry['file']}",
                     headers=AUTH, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert int(r.headers["content-length"]) == len(r.content) == entry["bytes"]
    assert hashlib.sha256(r.content).hexdigest() == entry["sha256"]


@pytest.mark.parametrize("name", ["MANIFEST.json", "rois_truth.parquet", "..%2F..%2Fx.zip",
                                  "x" * 300 + ".zip", "%2e%2e", "imaged_cells.parquet",
                                  "409828_2018-11-27_12-29-05.nwb.zarr"])
def test_only_listed_session_files_are_served(served: tuple[str, Path], name: str) -> None:
    r = requests.get(f"{served[0]}/sessions/api/v1/datastack/v1dd_public/file/{name}",
                     headers=AUTH, timeout=30)
    assert r.status_code == 404, r.text
    assert "message" in r.json()


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_session_path_downloads_once_and_reuses(student: str, ds_dir: Path) -> None:
    path = sessions.session_path(2, 3)
    home = Path(os.environ["HOME"])
    cache = home / ".cache" / "connectomics_book" / "v1dd_sessions"
    assert cache in path.parents
    truth = next(s for s in manifest_of(ds_dir)["sessions"] if (s["column"], s["volume"]) == (2, 3))
    # the store in its asset folder, as the public data assets; every file as on the server
    assert path.relative_to(path.parent.parent).as_posix() == truth["file"]
    assert path.is_dir() and _tree(path) == _tree(ds_dir / "sessions" / truth["file"])
    nwb = pynwb.read_nwb(path)
    assert nwb.session_id == "786071018" and "plane-5" in nwb.processing
    nwb.get_read_io().close()
    assert not list(path.parent.parent.glob("*.zip"))  # the archive is not kept
    marker = path.parent / sessions.DOWNLOADED
    stamp = marker.stat().st_mtime_ns
    assert sessions.session_path(2, 3) == path and marker.stat().st_mtime_ns == stamp
    # an unpack that did not finish (no marker) or another archive's copy: downloaded again
    marker.unlink()
    (path / ".zattrs").write_text("{}")
    assert sessions.session_path(2, 3) == path
    assert _tree(path) == _tree(ds_dir / "sessions" / truth["file"])
    marker.write_text("0" * 64)
    assert sessions.session_path(2, 3) == path and marker.read_text() != "0" * 64
    with pytest.raises(FileNotFoundError, match="Sessions there"):
        sessions.session_path(5, 1)


def test_a_damaged_session_file_is_refused(tmp_path: Path) -> None:
    sdir = tmp_path / "sessions"
    files, sessions_list, archives = {}, [], {}
    for k, (asset, content) in enumerate([("A_filtered_x", b"intact bytes"),
                                          ("B_filtered_x", b"damaged bytes")]):
        store = sdir / asset / "s.nwb.zarr"
        store.mkdir(parents=True)
        (store / ".zattrs").write_bytes(content)
        rel = f"{asset}/s.nwb.zarr/.zattrs"
        files[rel] = {"bytes": 12, "sha256": hashlib.sha256(b"intact bytes").hexdigest()}
        archives[f"{asset}.zip"] = archive_entry(sdir, [rel])
        sessions_list.append({"column": 1, "volume": k + 1, "file": f"{asset}/s.nwb.zarr",
                              "archive": f"{asset}.zip"})
    (sdir / "MANIFEST.json").write_text(json.dumps(
        {"sessions": sessions_list, "files": files, "archives": archives}))
    served = SessionFiles(tmp_path, "test")
    root, members, size = served.archive("A_filtered_x.zip")
    blob = b"".join(iter_archive(root, members))
    assert members == ["A_filtered_x/s.nwb.zarr/.zattrs"] and len(blob) == size
    assert hashlib.sha256(blob).hexdigest() == served.listing()[0]["sha256"]
    with pytest.raises(MissingArtefact, match="damaged"):
        served.archive("B_filtered_x.zip")  # one byte longer than the manifest says
    with pytest.raises(MissingArtefact, match="no session file"):
        served.archive("A_filtered_x/s.nwb.zarr")


def test_pages_opening_one_session_at_once_unpack_it_once(student: str,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Two pages of a class run side by side and open the same session: only one unpacks
    it, and the other then reads that store (none removes the store another one reads)."""
    import threading

    inside, most, unpacked = [0], [0], []
    lock = threading.Lock()
    real = sessions._unpack

    def slow_unpack(archive, asset, digest):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            threading.Event().wait(0.3)  # long enough for the other thread to arrive
            real(archive, asset, digest)
            unpacked.append(asset)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(sessions, "_unpack", slow_unpack)
    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(sessions.session_path(5, 5)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(paths) == 3 and len(set(paths)) == 1
    assert most[0] == 1 and len(unpacked) == 1, (most, unpacked)
    nwb = pynwb.read_nwb(paths[0])
    assert "plane-0" in nwb.processing
    nwb.get_read_io().close()
