"""Decoded row groups kept in memory (server/data/row_groups.py), through HTTP: per-root
queries answered from them give the same bytes as reading the file, are served without
decoding the file again, random samples still come from the whole file, and the memory is
bounded."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from offline_cave.server.data import row_groups
from offline_cave.server.data.row_groups import RowGroups
from offline_cave.server.response_cache import ResponseCache
from tests.fixtures.server_harness import AUTH, DATASTACK, Served

VERSION = 1300
TABLE = "synapses_pni_2"


@pytest.fixture
def setup(served: Served, monkeypatch: pytest.MonkeyPatch):
    """Every file counts as large; no response cache (each request is computed); a fresh
    row-group cache. Yields (datastack, cache)."""
    monkeypatch.setattr(row_groups, "MIN_FILE_BYTES", 0)
    old = served.app_state.response_cache
    served.app_state.response_cache = ResponseCache(0)
    ds = served.app_state.registry.get(DATASTACK)
    cache = RowGroups()
    monkeypatch.setattr(ds, "row_groups", cache)
    yield ds, cache
    served.app_state.response_cache = old


def post(served: Served, body: dict, query: str = "") -> requests.Response:
    url = (f"{served.url}/materialize/api/v3/datastack/{DATASTACK}/version/{VERSION}/table/"
           f"{TABLE}/query?return_pyarrow=True&arrow_format=True{query}")
    resp = requests.post(url, json=body, headers=AUTH, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp


def same(a: bytes, b: bytes) -> bool:
    """Two Arrow answers hold the same schema (metadata included) and values (the bytes
    under a null slot are not part of an answer)."""
    ta, tb = pa.ipc.open_stream(a).read_all(), pa.ipc.open_stream(b).read_all()
    return ta.num_rows == tb.num_rows and ta.equals(tb, check_metadata=True)


def roots(served: Served, column: str) -> list[int]:
    path = served.ds_dir / f"v{VERSION}" / f"{TABLE}.parquet"
    values = pq.read_table(path, columns=[column]).column(0).to_pylist()
    return sorted({v for v in values if v})[:6]


def bodies(served: Served) -> list[tuple[dict, str]]:
    post_roots, pre_roots = roots(served, "post_pt_root_id"), roots(served, "pre_pt_root_id")
    out = []
    for r in post_roots[:3]:
        out.append(({"filter_equal_dict": {TABLE: {"post_pt_root_id": r}}}, ""))
        out.append(({"filter_in_dict": {TABLE: {"post_pt_root_id": [r, post_roots[-1]]}},
                     "limit": 3, "offset": 1}, ""))
        out.append(({"filter_equal_dict": {TABLE: {"post_pt_root_id": r}}}, "&count=True"))
    for r in pre_roots[:3]:
        out.append(({"filter_equal_dict": {TABLE: {"pre_pt_root_id": r}},
                     "filter_greater_dict": {TABLE: {"size": 0}}}, ""))
    out.append(({"filter_equal_dict": {TABLE: {"post_pt_root_id": 123}}}, ""))  # no such root
    return out


def test_answers_from_row_groups_equal_the_file(served: Served, setup) -> None:
    ds, cache = setup
    for body, query in bodies(served):
        cache.max_bytes = 0  # rows() declines: DuckDB reads the file
        expected = post(served, body, query).content
        cache.max_bytes = row_groups.DEFAULT_ROW_GROUP_CACHE_BYTES
        first = post(served, body, query).content
        again = post(served, body, query).content
        assert same(first, expected) and same(again, expected), body
    assert cache.misses >= 1 and cache.hits >= cache.misses  # decoded once, then reused


def _spy_sql(ds, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every DuckDB query the datastack runs from now on."""
    sqls: list[str] = []
    real = ds.db.arrow

    def spy(sql, params=None, register=None):
        sqls.append(sql)
        return real(sql, params, register)

    monkeypatch.setattr(ds.db, "arrow", spy)
    return sqls


def test_root_query_does_not_read_the_file(served: Served, setup,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ds, cache = setup
    body = bodies(served)[0][0]
    post(served, body)  # decodes the row group
    sqls = _spy_sql(ds, monkeypatch)
    post(served, body)
    assert len(sqls) == 1 and "read_parquet" not in sqls[0]


def test_random_sample_is_drawn_from_the_whole_file(served: Served, setup) -> None:
    ds, cache = setup
    body = {"filter_in_dict": {TABLE: {"post_pt_root_id": roots(served, "post_pt_root_id")}}}
    cache.max_bytes = 0
    expected = post(served, body, "&random_sample=50").content
    cache.max_bytes = row_groups.DEFAULT_ROW_GROUP_CACHE_BYTES
    assert same(post(served, body, "&random_sample=50").content, expected)


def test_memory_is_bounded(served: Served, setup) -> None:
    ds, cache = setup
    path = served.ds_dir / f"v{VERSION}" / f"{TABLE}.parquet"
    one = pq.ParquetFile(path).read_row_group(0).nbytes
    cache.max_bytes = one // 2  # a row group is larger than the whole budget: none kept
    for body, query in bodies(served)[:4]:
        post(served, body, query)
    assert cache.nbytes == 0 and cache.misses >= 2
    cache.max_bytes = one + 1
    for body, query in bodies(served)[:4]:
        post(served, body, query)
        assert cache.nbytes <= cache.max_bytes


def test_skeletons_from_row_groups_equal_the_file(served: Served, setup,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from offline_cave.server.data.artefacts import CellStore

    ds, cache = setup
    nuclei = sorted(CellStore(ds).skeleton_nuclei())[:4]
    assert nuclei
    cache.max_bytes = 0
    expected = {n: CellStore(ds).skeleton(n) for n in nuclei}
    cache.max_bytes = row_groups.DEFAULT_ROW_GROUP_CACHE_BYTES
    sqls = _spy_sql(ds, monkeypatch)
    for _ in range(2):
        for n in nuclei:
            got = CellStore(ds).skeleton(n)
            for name in ("vertices", "parent", "radius", "compartment"):
                assert np.array_equal(getattr(got, name), getattr(expected[n], name)), name
    assert cache.hits >= 1 and sqls and all("read_parquet" not in q for q in sqls)
