"""The bounded mesh cache through HTTP: a size cap with LRU eviction, and a full disk.

Meshes are fetched as cloud-volume fetches them (``/seg/<datastack>/mesh/<root>:0:1``) from a
server with a tiny ``mesh_cache_bytes``; the cache directory is then inspected on disk.
"""

from __future__ import annotations

import shutil
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests

from offline_cave.client.runner import ACTIVE, offline_server
from offline_cave.contract import layout
from offline_cave.server.data import mesh_cache
from offline_cave.server.data.artefacts import mesh_cache_path
from offline_cave.server.data.mesh import is_valid_legacy
from tests.fixtures.sample_fixture import build_fixture
from tests.fixtures.server_harness import AUTH, DATASTACK

Usage = namedtuple("Usage", "total used free")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("mesh-cache")
    build_fixture(data_dir)
    return data_dir


def neurons(data_dir: Path) -> list[tuple[int, int]]:
    """(root, nucleus) of every root that carries a skeletonized cell."""
    ds = data_dir / DATASTACK
    roots = pq.read_table(ds / layout.ROOTS_PARQUET).to_pandas()
    with_skeleton = set(pq.read_table(ds / layout.SKELETON_CELLS_PARQUET).column(0).to_pylist())
    rows = roots[roots.nucleus_id.isin(with_skeleton) & (roots.expired.isna()
                                                         | (roots.expired > 1e12))]
    rows = rows.drop_duplicates("nucleus_id")
    return [(int(r), int(n)) for r, n in zip(rows.root_id, rows.nucleus_id, strict=True)]


def cache_files(data_dir: Path) -> list[Path]:
    """Every file under the datastack's cache (fragments and any leftover temp file)."""
    return sorted(p for p in (data_dir / DATASTACK / layout.CACHE_DIR).rglob("*") if p.is_file())


@pytest.fixture
def fresh(sample: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the sample with an empty mesh cache."""
    data_dir = tmp_path / "data"
    shutil.copytree(sample, data_dir)
    shutil.rmtree(data_dir / DATASTACK / layout.CACHE_DIR, ignore_errors=True)
    yield data_dir


def fetch(url: str, root: int) -> bytes:
    r = requests.get(f"{url}/seg/{DATASTACK}/mesh/{root}:0:1", headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    assert is_valid_legacy(r.content)
    return r.content


def test_a_tiny_cap_evicts_the_least_recently_served_meshes(fresh: Path) -> None:
    cells = neurons(fresh)[:4]
    assert len(cells) >= 3, "the fixture has too few neurons for this test"
    with offline_server(fresh, generate=False) as (url, _):
        sizes = [len(fetch(url, root)) for root, _ in cells]
    cap = sizes[0] + sizes[1] + max(sizes) // 2  # room for two meshes, not three
    shutil.rmtree(fresh / DATASTACK / layout.CACHE_DIR)
    with offline_server(fresh, generate=False, mesh_cache_bytes=cap) as (url, _):
        first = fetch(url, cells[0][0])
        fetch(url, cells[1][0])
        assert fetch(url, cells[0][0]) == first  # a hit: cells[0] is now the most recent
        fetch(url, cells[2][0])  # no room: the least recently served (cells[1]) goes
        on_disk = {p.name for p in cache_files(fresh)}
        assert on_disk == {mesh_cache_path(fresh / DATASTACK, n).name
                           for n in (cells[0][1], cells[2][1])}
        assert sum(p.stat().st_size for p in cache_files(fresh)) <= cap
        assert fetch(url, cells[1][0])  # an evicted mesh is rebuilt, still a 200
        assert sum(p.stat().st_size for p in cache_files(fresh)) <= cap
        assert ACTIVE[url].app.state.errors.count == 0


def test_a_restart_counts_the_meshes_already_cached(fresh: Path) -> None:
    cells = neurons(fresh)[:3]
    with offline_server(fresh, generate=False) as (url, _):
        sizes = [len(fetch(url, root)) for root, _ in cells]
    assert len(cache_files(fresh)) == 3
    cap = max(sizes) + 1  # one mesh
    with offline_server(fresh, generate=False, mesh_cache_bytes=cap) as (url, _):
        fetch(url, cells[0][0])  # a hit: counted, then the oldest others are evicted
        assert sum(p.stat().st_size for p in cache_files(fresh)) <= cap


def test_nothing_is_written_when_the_disk_is_nearly_full(
        fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    total = 100 << 30
    nearly_full = Usage(total, total - (1 << 30), 1 << 30)  # 1 GiB free: under the margin
    monkeypatch.setattr(mesh_cache.shutil, "disk_usage", lambda path: nearly_full)
    cells = neurons(fresh)[:2]
    with offline_server(fresh, generate=False) as (url, _):
        first = fetch(url, cells[0][0])
        assert fetch(url, cells[0][0]) == first  # built again, the same bytes
        fetch(url, cells[1][0])
        assert ACTIVE[url].app.state.errors.count == 0
    assert cache_files(fresh) == []


def test_a_full_disk_evicts_cached_meshes_before_it_stops_caching(
        fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cells = neurons(fresh)[:3]
    with offline_server(fresh, generate=False) as (url, _):
        sizes = [len(fetch(url, root)) for root, _ in cells]
    mesh_cache_path(fresh / DATASTACK, cells[2][1]).unlink()
    total = 100 << 30
    margin = mesh_cache.free_margin(total)
    # one byte short of the margin plus the new mesh: one cached mesh must go first
    tight = Usage(total, 0, margin + sizes[2] - 1)
    monkeypatch.setattr(mesh_cache.shutil, "disk_usage", lambda path: tight)
    with offline_server(fresh, generate=False) as (url, _):
        fetch(url, cells[2][0])
    names = {p.name for p in cache_files(fresh)}
    assert mesh_cache_path(fresh / DATASTACK, cells[2][1]).name in names
    assert len(names) == 2


def test_a_zero_cap_caches_nothing(fresh: Path) -> None:
    root = neurons(fresh)[0][0]
    with offline_server(fresh, generate=False, mesh_cache_bytes=0) as (url, _):
        fetch(url, root)
    assert cache_files(fresh) == []


def test_the_margin_is_2_gib_or_5_percent() -> None:
    assert mesh_cache.free_margin(1 << 40) == 2 << 30
    assert mesh_cache.free_margin(20 << 30) == (20 << 30) // 20


def test_the_indexes_are_read_at_start_before_any_request(sample: Path) -> None:
    from offline_cave.server.app import create_app

    app = create_app(sample)
    app.state.warm_up.join(60)  # a bound against a hang, not a speed figure
    assert not app.state.warm_up.is_alive()
    for ds in app.state.registry.datastacks.values():
        segments = ds.segments
        assert segments._loaded and segments._pieces is not None and segments._leaves is not None
