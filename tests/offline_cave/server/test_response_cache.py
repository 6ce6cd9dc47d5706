"""The response cache of repeated identical queries (server/response_cache.py), through HTTP
and caveclient: same bytes, DuckDB run once, bounded by bytes, errors and changed limits never
answered from it, identical requests arriving together computed once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests

from offline_cave.server.response_cache import ResponseCache
from tests.fixtures.server_harness import AUTH, DATASTACK, Served

VERSION = 1300
TABLE = "synapses_pni_2"


def query_url(served: Served, table: str = TABLE) -> str:
    return (f"{served.url}/materialize/api/v3/datastack/{DATASTACK}/version/{VERSION}/table/"
            f"{table}/query?return_pyarrow=True&arrow_format=True&merge_reference=False")


def post(served: Served, body: dict, table: str = TABLE) -> requests.Response:
    return requests.post(query_url(served, table), json=body, headers=AUTH, timeout=60)


@pytest.fixture
def db_calls(served: Served, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every DuckDB query the server runs during the test."""
    db = served.app_state.registry.db
    calls: list[str] = []
    real = db.arrow

    def counting(sql, params=None, register=None):
        calls.append(sql)
        return real(sql, params, register)

    monkeypatch.setattr(db, "arrow", counting)
    return calls


@pytest.fixture
def fresh_cache(served: Served):
    """A new, empty cache of the default size for the test (the old one restored after)."""
    old = served.app_state.response_cache
    served.app_state.response_cache = ResponseCache()
    yield served.app_state.response_cache
    served.app_state.response_cache = old


def body_for(served: Served, k: int = 0) -> dict:
    """A query of the synapses onto the ``k``-th cell of the nucleus table."""
    nuclei = pq.read_table(served.ds_dir / f"v{VERSION}" / "nucleus_detection_v0.parquet",
                           columns=["pt_root_id"]).column(0).to_pylist()
    root = [r for r in nuclei if r][k]
    return {"filter_in_dict": {TABLE: {"post_pt_root_id": [root]}}}


def test_identical_query_answered_from_cache_with_identical_bytes(
        served: Served, fresh_cache: ResponseCache, db_calls: list[str]) -> None:
    body = body_for(served)
    first = post(served, body)
    n_db = len(db_calls)
    second = post(served, body)
    assert first.status_code == second.status_code == 200
    assert n_db >= 1 and len(db_calls) == n_db  # the second answer ran no query
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"] == "data.arrow"
    assert second.headers["dataframe_resolution"] == first.headers["dataframe_resolution"]
    assert int(second.headers["content-length"]) == len(first.content)
    assert fresh_cache.hits == 1 and fresh_cache.misses == 1
    # the same bytes as a server without the cache computes
    served.app_state.response_cache = ResponseCache(0)
    uncached = post(served, body)
    assert uncached.content == first.content and len(db_calls) == n_db + 1


def test_caveclient_gets_the_same_frame_from_the_cache(served: Served, client,
                                                       fresh_cache: ResponseCache) -> None:
    root = int(body_for(served)["filter_in_dict"][TABLE]["post_pt_root_id"][0])
    a = client.materialize.query_table(TABLE, filter_equal_dict={"post_pt_root_id": root})
    b = client.materialize.query_table(TABLE, filter_equal_dict={"post_pt_root_id": root})
    assert fresh_cache.hits >= 1
    pd.testing.assert_frame_equal(a, b)
    assert len(a) > 0


def test_different_queries_are_different_entries(served: Served,
                                                 fresh_cache: ResponseCache) -> None:
    a = post(served, body_for(served, 0))
    b = post(served, body_for(served, 1))
    c = post(served, {**body_for(served, 0), "limit": 1})
    assert a.content != b.content and a.content != c.content
    assert fresh_cache.misses == 3 and fresh_cache.hits == 0 and len(fresh_cache) == 3


def test_cache_is_bounded_by_bytes(served: Served, db_calls: list[str]) -> None:
    old = served.app_state.response_cache
    one = len(post(served, {"limit": 5}).content)  # every page below is about this size
    cache = served.app_state.response_cache = ResponseCache(max_bytes=20 * one)
    try:
        for offset in range(40):
            assert post(served, {"limit": 5, "offset": offset}).status_code == 200
            assert cache.nbytes <= cache.max_bytes
        assert 5 < len(cache) < 40  # the oldest answers were evicted
        n = len(db_calls)
        post(served, {"limit": 5, "offset": 0})  # evicted: computed again
        assert len(db_calls) == n + 1
        post(served, {"limit": 5, "offset": 39})  # the newest is kept
        assert len(db_calls) == n + 1
    finally:
        served.app_state.response_cache = old


def test_large_answer_is_sent_but_not_kept(served: Served) -> None:
    old = served.app_state.response_cache
    cache = served.app_state.response_cache = ResponseCache(max_bytes=16 * 1024)
    try:
        resp = post(served, {})
        assert resp.status_code == 200 and len(resp.content) > cache.max_entry_bytes
        assert len(cache) == 0 and cache.nbytes == 0
    finally:
        served.app_state.response_cache = old


def test_errors_are_not_cached(served: Served, fresh_cache: ResponseCache) -> None:
    bad = {"filter_in_dict": {TABLE: {"no_such_column": [1]}}}
    for _ in range(2):
        resp = post(served, bad)
        assert resp.status_code == 400 and "no_such_column" in resp.json()["message"]
    assert len(fresh_cache) == 0 and fresh_cache.hits == 0


def test_a_changed_limit_is_not_answered_from_the_cache(served: Served,
                                                        fresh_cache: ResponseCache) -> None:
    assert post(served, {"limit": 50}).status_code == 200
    old = served.app_state.limits
    served.app_state.limits = replace(old, max_rows=10)
    try:
        resp = post(served, {"limit": 50})
        assert resp.status_code == 400 and "max-rows" in resp.json()["message"]
    finally:
        served.app_state.limits = old
    assert post(served, {"limit": 50}).status_code == 200 and fresh_cache.hits == 1


def test_identical_requests_arriving_together_are_computed_once(
        served: Served, fresh_cache: ResponseCache, monkeypatch: pytest.MonkeyPatch) -> None:
    db = served.app_state.registry.db
    real = db.arrow
    running = threading.Semaphore(0)
    calls: list[str] = []

    def slow(sql, params=None, register=None):
        calls.append(sql)
        running.release()
        time.sleep(0.5)  # the other requests arrive while this one runs
        return real(sql, params, register)

    monkeypatch.setattr(db, "arrow", slow)
    body = body_for(served, 2)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(served, body), range(8)))
    assert all(a.status_code == 200 for a in answers)
    assert len({a.content for a in answers}) == 1
    assert len(calls) == 1 and fresh_cache.misses == 1 and fresh_cache.hits == 7
