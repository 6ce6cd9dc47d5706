"""``offline_cave.prepare``: what ``serve`` and ``exec`` check before serving a data directory.

A copy of the fixture sample is damaged without changing any file's size (bytes in the middle
of a Parquet row group, ``tables.json``) and served over HTTP: the damaged datastack is never
answered from (rebuilt when generation is allowed, refused otherwise). Also: the verified
stamp (a sample is hashed once, again when a file changes), leftovers of killed builds, a
read-only data directory, and the one-line messages.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
from contextlib import contextmanager, redirect_stderr
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

import offline_cave.contract.files as files_mod
import offline_cave.generator.pipeline
import offline_cave.server
from offline_cave.__main__ import main
from offline_cave.client.runner import offline_server
from offline_cave.contract import layout
from offline_cave.contract.params import DATASTACKS
from offline_cave.generator import cache
from offline_cave.prepare import SampleMissingError, damaged, prepare_data
from tests.fixtures.sample_fixture import build_fixture
from tests.fixtures.server_harness import AUTH

DATASTACK = "minnie65_public"
TABLE = "synapses_pni_2"
PARQUET = f"v1300/{TABLE}.parquet"
QUERY = (f"/materialize/api/v3/datastack/{DATASTACK}/version/1300/table/{TABLE}/query"
         f"?arrow_format=True&return_pyarrow=True")
IS_ROOT = os.geteuid() == 0


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh copy of the fixture sample of every datastack (nothing to generate)."""
    for name in DATASTACKS:
        build_fixture(tmp_path, name)
    return tmp_path


def damage_row_group(path: Path) -> None:
    """Invert 8 bytes in the middle of the largest column chunk of row group 2 (same size)."""
    meta = pq.ParquetFile(path).metadata.row_group(2)
    chunk = max((meta.column(i) for i in range(meta.num_columns)),
                key=lambda c: c.total_compressed_size)
    mid = (chunk.dictionary_page_offset or chunk.data_page_offset) + \
        chunk.total_compressed_size // 2
    _invert(path, mid, 8)


def damage_json(path: Path) -> None:
    """Invert 16 bytes in the middle of a JSON file (same size)."""
    _invert(path, path.stat().st_size // 2, 16)


def _invert(path: Path, offset: int, n: int) -> None:
    size = path.stat().st_size
    data = bytearray(path.read_bytes())
    data[offset:offset + n] = bytes(b ^ 0xFF for b in data[offset:offset + n])
    path.write_bytes(bytes(data))
    assert path.stat().st_size == size


DAMAGE = {PARQUET: damage_row_group, layout.TABLES_JSON: damage_json}


def query(url: str) -> requests.Response:
    return requests.post(url + QUERY, json={}, headers=AUTH, timeout=60)


def served_rows(response: requests.Response) -> pa.Table:
    assert response.status_code == 200, response.text[:300]
    return pa.ipc.open_stream(response.content).read_all().sort_by("id")


def original_rows(ds_dir: Path) -> pa.Table:
    return pq.read_table(ds_dir / PARQUET).sort_by("id")


# ------------------------------------------------------------------ damaged data, over HTTP
@pytest.mark.parametrize("rel", sorted(DAMAGE))
def test_a_same_size_damage_is_refused_when_generation_is_off(data_dir: Path, rel: str) -> None:
    """Without a generator the damaged datastack is not served at all; the others are."""
    ds = data_dir / DATASTACK
    with offline_server(data_dir, generate=False) as (url, _home):
        assert query(url).status_code == 200  # the intact copy is served
    DAMAGE[rel](ds / rel)
    with offline_server(data_dir, generate=False) as (url, _home):
        listed = requests.get(f"{url}/info/api/v2/datastacks", headers=AUTH, timeout=60).json()
        assert listed == sorted(set(DATASTACKS) - {DATASTACK})
        r = query(url)
        assert r.status_code == 404, (r.status_code, r.text[:300])
        assert "not served" in r.json()["message"]


@pytest.mark.parametrize("rel", sorted(DAMAGE))
def test_a_same_size_damage_is_rebuilt_before_serving(data_dir: Path, rel: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With a generator the damaged datastack is rebuilt first: the rows served are the
    original ones, never those of the damaged file."""
    ds = data_dir / DATASTACK
    want = original_rows(ds)
    made = json.loads((ds / layout.MANIFEST).read_text())
    rebuilt = []

    def fixture_generator(data_dir, name, seed, scale, log=print, **_):
        rebuilt.append((name, seed, scale))
        build_fixture(data_dir, name)  # the fixture's generator: the same bytes again

    monkeypatch.setattr(offline_cave.generator.pipeline, "ensure_sample", fixture_generator)
    DAMAGE[rel](ds / rel)
    with offline_server(data_dir) as (url, _home):
        got = served_rows(query(url))
    assert rebuilt == [(DATASTACK, made["seed"], made["scale"])]
    assert got.equals(want.select(got.column_names))


def test_damage_is_found_again_after_the_mtime_is_put_back(data_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """The stamp keys on ctime too: `touch -r` after an edit does not hide it."""
    monkeypatch.setattr(files_mod, "RACY_NS", 0)  # the fixture was written just now
    ds = data_dir / DATASTACK
    assert damaged(ds) is None
    victim = ds / PARQUET
    before = victim.stat()
    damage_row_group(victim)
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert damaged(ds) == f"file {PARQUET} does not match its checksum (corrupt)"


# ------------------------------------------------------------------------ the verified stamp
def count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    hashed: list[Path] = []
    real = files_mod.sha256

    def counting(path):
        hashed.append(Path(path))
        return real(path)

    monkeypatch.setattr(files_mod, "sha256", counting)
    return hashed


def test_a_sample_is_hashed_once_and_a_changed_file_again(data_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files_mod, "RACY_NS", 0)
    ds = data_dir / DATASTACK
    listed = json.loads((ds / layout.MANIFEST).read_text())["files"]
    hashed = count_hashes(monkeypatch)
    assert damaged(ds) is None
    assert len(hashed) == len(listed)  # first start: every file
    assert layout.verified_stamp(ds).is_file()
    hashed.clear()
    assert damaged(ds) is None
    assert hashed == []  # next start: stat only
    victim = ds / layout.VIEWS_JSON
    victim.write_bytes(victim.read_bytes())  # rewritten (same bytes): hashed again, still fine
    assert damaged(ds) is None
    assert hashed == [victim]


def test_a_file_changed_moments_before_its_hash_is_not_stamped(data_dir: Path) -> None:
    """Within RACY_NS of a write a second write may not change the stat: hash it again."""
    ds = data_dir / DATASTACK
    assert damaged(ds) is None  # the fixture was written just now
    assert files_mod.read_verified(layout.verified_stamp(ds)) == {}


def test_full_check_when_the_stamp_cannot_be_written(data_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files_mod, "RACY_NS", 0)
    monkeypatch.setattr(files_mod, "write_atomic", _raise_permission_error)
    ds = data_dir / DATASTACK
    hashed = count_hashes(monkeypatch)
    assert damaged(ds) is None and damaged(ds) is None
    assert len(hashed) == 2 * len(json.loads((ds / layout.MANIFEST).read_text())["files"])


def _raise_permission_error(path, *_args, **_kwargs):
    raise PermissionError(13, "Permission denied", str(path))


# ------------------------------------------------------------ leftovers of killed builds
def leftovers(data_dir: Path) -> list[Path]:
    made = [data_dir / f".{DATASTACK}.tmp-k1ll3d", data_dir / f".{DATASTACK}.old-424242"]
    for path in made:
        (path / "v1300").mkdir(parents=True)
        (path / "v1300" / "half.parquet").write_bytes(b"x" * 1000)
    return made


def fake_build(params, seed, scale, target, log):
    (target / "f.txt").write_text("built")
    return {}, {"f.txt": files_mod.file_entry(target / "f.txt")}


def test_a_rebuild_removes_what_killed_builds_left(tmp_path: Path) -> None:
    stale = leftovers(tmp_path)
    cache.ensure_sample(fake_build, tmp_path, DATASTACK, seed=0, scale=1.0, log=lambda _m: None,
                        check_resources=False)
    assert not any(p.exists() for p in stale)
    assert (tmp_path / DATASTACK / "f.txt").read_text() == "built"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{DATASTACK}.lock", DATASTACK]


KILLED_BUILD = """
import sys, time
from pathlib import Path
from offline_cave.generator import cache

def build(params, seed, scale, target, log):
    (target / "half.parquet").write_bytes(b"x" * 100_000)
    print("building", flush=True)
    time.sleep(600)

cache.ensure_sample(build, Path(sys.argv[1]), "minnie65_public", log=lambda _m: None,
                    check_resources=False)
"""


def test_the_folder_of_a_build_killed_midway_is_removed_by_the_next(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "building\n"  # it is inside building_dir now
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    stale = list(tmp_path.glob(f".{DATASTACK}.tmp-*"))
    assert len(stale) == 1 and (stale[0] / "half.parquet").is_file()
    cache.ensure_sample(fake_build, tmp_path, DATASTACK, seed=0, scale=1.0, log=lambda _m: None,
                        check_resources=False)
    assert not stale[0].exists()


def test_serving_removes_leftovers_but_not_those_of_a_running_build(data_dir: Path) -> None:
    stale = leftovers(data_dir)
    with cache.sample_lock(data_dir, DATASTACK):  # a build is running: its directories stay
        prepare_data(data_dir, generate=False)
        assert all(p.exists() for p in stale)
    found = prepare_data(data_dir, generate=False)
    assert [p.name for p in found] == sorted(DATASTACKS)
    assert not any(p.exists() for p in stale)


# -------------------------------------------------------- messages: one line, the fix named
def test_generation_off_names_the_damaged_file_and_the_repair(data_dir: Path) -> None:
    for name in DATASTACKS:
        if name != DATASTACK:
            shutil.rmtree(data_dir / name)
    damage_row_group(data_dir / DATASTACK / PARQUET)
    with pytest.raises(SampleMissingError) as info:
        prepare_data(data_dir, generate=False)
    message = str(info.value)
    assert "\n" not in message
    assert f"file {PARQUET} does not match its checksum" in message
    assert (f"python -m offline_cave generate --out {data_dir} --datastack {DATASTACK} "
            f"--seed 0" in message)


@contextmanager
def unwritable(path: Path):
    """``path`` and everything under it read-only for the duration."""
    modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
    for p, mode in modes.items():
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def repairable(data_dir: Path) -> None:
    """Give the fixture manifest a scale the generator accepts, so a repair gets as far as
    taking the sample's lock (the first write) and damage a Parquet file (same size)."""
    manifest_path = data_dir / DATASTACK / layout.MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["scale"] = 1.0
    manifest_path.write_text(json.dumps(manifest))
    damage_row_group(data_dir / DATASTACK / PARQUET)


def assert_one_line_refusal(code: int, err: str, data_dir: Path) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if not line.startswith("WARNING ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith(f"error: cannot repair the {DATASTACK} sample (file {PARQUET} "
                               f"does not match its checksum (corrupt)) under {data_dir}: ")
    assert f"python -m offline_cave generate --out {data_dir} --datastack {DATASTACK}" in lines[0]


def serve_in_process(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """``python -m offline_cave serve --data DIR``'s exit code and stderr, stopped before it
    listens (had the damage gone unnoticed it would serve for ever)."""

    def never_serve(*_args):
        raise OSError("the test stops serve before it runs")

    # serve binds its port first (a free one here), then checks the data, then runs uvicorn
    monkeypatch.setattr(offline_cave.server, "uvicorn_server", never_serve)
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["serve", "--data", str(data_dir), "--port", "0"])
    return code, err.getvalue()


@pytest.mark.skipif(IS_ROOT, reason="root writes through chmod; see the PermissionError test")
def test_a_damaged_read_only_sample_is_a_one_line_error(data_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    repairable(data_dir)
    with unwritable(data_dir):
        code, err = serve_in_process(data_dir, monkeypatch)
    assert_one_line_refusal(code, err, data_dir)


def test_a_repair_refused_by_the_file_system_is_a_one_line_error(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a read-only directory does to a repair, for root too: the sample's lock file (the
    repair's first write) cannot be opened."""

    @contextmanager
    def read_only_lock(data_dir, datastack):
        raise PermissionError(13, "Permission denied", str(Path(data_dir) / f".{datastack}.lock"))
        yield  # pragma: no cover

    monkeypatch.setattr(cache, "sample_lock", read_only_lock)
    repairable(data_dir)
    code, err = serve_in_process(data_dir, monkeypatch)
    assert_one_line_refusal(code, err, data_dir)
    assert "Permission denied" in err
