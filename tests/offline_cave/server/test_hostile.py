"""Hostile requests (issue #11, "The classroom server holds"): each test is one failure a tester
found, sent as raw HTTP; each answer must be a 4xx that says what is wrong, never a 5xx, a hang
or megabytes of echoed input. The limits (``app.state.limits``) are lowered for some tests, so
the same code paths are tried with small, fast inputs.
"""

from __future__ import annotations

import json
import select
import socket
import time
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline_cave.contract import layout
from tests.fixtures.server_harness import AUTH

if TYPE_CHECKING:
    from tests.fixtures.server_harness import Served

DATASTACK = "minnie65_public"
TIMEOUT = 30


def _connect(served: Served) -> socket.socket:
    parts = urlsplit(served.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT)


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response: {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def request(served: Served, method: str, path: str, body: bytes = b"",
            headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    """One request with a Content-Length, the path sent byte for byte."""
    sock = _connect(served)
    try:
        head = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in {**AUTH, **(headers or {})}.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        return _read_response(sock)
    finally:
        sock.close()


def message_of(body: bytes) -> str:
    return json.loads(body)["message"]


@pytest.fixture(scope="module")
def facts(served: Served) -> dict:
    versions = json.loads((served.ds_dir / layout.VERSIONS_JSON).read_text())
    version = [v["version"] for v in versions if v.get("materialized")][-1]
    pcg = json.loads((served.ds_dir / layout.DATASTACK_JSON).read_text())["pcg_table_name"]
    nuc = pq.read_table(served.ds_dir / f"v{version}" / "nucleus_detection_v0.parquet")
    roots = [r for r in nuc.column("pt_root_id").to_pylist() if r]
    return {"version": version, "pcg": pcg, "roots": roots,
            "svids": [s for s in nuc.column("pt_supervoxel_id").to_pylist() if s],
            "query": f"/materialize/api/v3/datastack/{DATASTACK}/version/{version}/table/"
                     f"synapses_pni_2/query",
            "nuc_query": f"/materialize/api/v3/datastack/{DATASTACK}/version/{version}/table/"
                         f"nucleus_detection_v0/query",
            "live": f"/materialize/api/v3/datastack/{DATASTACK}/query",
            "seg": f"/segmentation/api/v1/table/{pcg}"}


@pytest.fixture(autouse=True)
def no_internal_errors(served: Served, request: pytest.FixtureRequest):
    before = served.app_state.errors.count
    yield
    if request.node.name not in EXPECTED_500:
        assert served.app_state.errors.count == before, served.app_state.errors.last


@contextmanager
def limits(served: Served, **changes):
    """Lower the server's limits for the duration of a test."""
    old = served.app_state.limits
    served.app_state.limits = replace(old, **changes)
    try:
        yield served.app_state.limits
    finally:
        served.app_state.limits = old


# ---------------------------------------------------------------------------------------------
# 1. no 5xx for what a client can send

DEEP_BODIES = [b"[" * 1000 + b"]" * 1000, b'{"a":' * 1000 + b"1" + b"}" * 1000,
               b'{"node_ids": ' + b"[" * 5000 + b"]" * 5000 + b"}"]


@pytest.mark.parametrize("body", DEEP_BODIES, ids=["list", "object", "inner"])
def test_deeply_nested_json_is_a_400(served: Served, facts: dict, body: bytes) -> None:
    """JSON nested 1,000 deep was a RecursionError (500) on every JSON endpoint."""
    for path in (facts["query"], f"{facts['seg']}/roots",
                 f"/skeletoncache/api/v1/{DATASTACK}/precomputed/skeleton/exists",
                 f"{facts['seg']}/node/leaves_many", facts["live"]):
        status, _, resp = request(served, "POST", path, body)
        assert status == 400, (path, status, resp[:200])
        assert "nested" in message_of(resp) and "64" in message_of(resp)


def test_brackets_inside_strings_are_not_nesting(served: Served, facts: dict) -> None:
    body = json.dumps({"select_columns": ["[" * 500 + "{" * 500]}).encode()
    status, _, resp = request(served, "POST", facts["query"], body)
    assert status == 400 and "nested" not in message_of(resp)
    assert "does not exist" in message_of(resp)


SURROGATE_TEXT = st.tuples(
    st.text(max_size=8),  # any text, surrogates included (nothing blacklisted)
    st.characters(whitelist_categories=("Cs", "Cc")), st.text(max_size=4)).map("".join)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=SURROGATE_TEXT)
def test_lone_surrogates_and_control_characters_are_escaped(served: Served, facts: dict,
                                                            name: str) -> None:
    """A lone surrogate in an echoed name was a UnicodeEncodeError (500) writing the error."""
    bodies = [
        (facts["query"], {"filter_equal_dict": {"synapses_pni_2": {name: 1}}}),
        (facts["query"], {"filter_in_dict": {name: {"id": [1]}}}),
        (facts["query"], {"select_columns": [name]}),
        (facts["live"], {"table": name, "timestamp": 1.7e9}),
        (f"/materialize/api/v3/datastack/{DATASTACK}/version/{facts['version']}/query",
         {"tables": [[name, "id"], ["nucleus_detection_v0", "id"]]}),
    ]
    for path, body in bodies:
        status, _, resp = request(served, "POST", path, json.dumps(body).encode())
        assert 400 <= status < 500, (path, body, status, resp[:300])
        text = message_of(resp)
        assert all(c.isprintable() for c in text), text
        if any(0xD800 <= ord(c) <= 0xDFFF for c in name):
            assert "\\ud" in text, text


@pytest.mark.parametrize("value", ["10000000000", "1000000000", str(2**63 - 1), str(10**30),
                                   "-1", "0", str(-(10**20)), "abc", "1e3", "nan", "1.5", "0x10"])
def test_bad_random_sample_is_a_400(served: Served, facts: dict, value: str) -> None:
    """random_sample=1e10 was a DuckDB ParserException and 1e9 an OutOfMemoryException."""
    status, _, resp = request(served, "POST", f"{facts['query']}?random_sample={value}", b"{}")
    assert status == 400, (value, status, resp[:200])
    if value.lstrip("-").isdigit() and int(value) > 0 and int(value) < 2**63:
        assert "<= 500000" in message_of(resp) and "--max-rows" in message_of(resp)


def test_huge_limit_and_offset_are_400(served: Served, facts: dict) -> None:
    for body, words in (({"limit": 10**12}, "limit="), ({"limit": 2**70}, "limit="),
                        ({"offset": 2**70}, "offset"), ({"offset": -1}, "offset")):
        status, _, resp = request(served, "POST", facts["query"], json.dumps(body).encode())
        assert status == 400, (body, status, resp[:200])
        assert words in message_of(resp)


@pytest.mark.parametrize("n", [256, 300, 1000, 4000])
def test_overlong_path_segments_are_404(served: Served, n: int) -> None:
    """A 256-character file name was an OSError (name too long, 500) in the static tree."""
    if served.fixture is not None:  # the tree exists, so the file system sees the name
        (served.ds_dir / layout.CACHE_DIR / "seg" / "mesh").mkdir(parents=True, exist_ok=True)
        (served.ds_dir / layout.CACHE_DIR / "seg" / "skeletons").mkdir(exist_ok=True)
    for prefix in ("", "mesh/", "skeletons/", "deep/er/", "mesh/1:0:1/"):
        for name in ("a" * n, "é" * (n // 2 + 1), "1" * n):
            status, _, resp = request(served, "GET", f"/seg/{DATASTACK}/{prefix}{quote(name)}")
            assert status == 404, (prefix, n, status, resp[:200])
            assert len(resp) < 2000


def test_an_unknown_name_of_megabytes_is_not_echoed(served: Served, facts: dict) -> None:
    """An unknown 50 MB name was echoed whole (and compared with difflib for ~25 s)."""
    name = "x" * 5_000_000
    for path, body in ((facts["live"], {"table": name, "timestamp": 1.7e9}),
                       (facts["query"], {"filter_equal_dict": {"synapses_pni_2": {name: 1}}}),
                       (facts["query"], {"select_columns": [name]})):
        t0 = time.monotonic()
        status, _, resp = request(served, "POST", path, json.dumps(body).encode())
        assert 400 <= status < 500
        assert len(resp) < 3000 and "..." in message_of(resp)
        assert time.monotonic() - t0 < 10


EXPECTED_500 = {"test_an_unexpected_exception_is_a_short_logged_500"}


def test_an_unexpected_exception_is_a_short_logged_500(served: Served,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from offline_cave.server.routes import info

    def broken(*args, **kwargs):
        raise RuntimeError("planted bug \ud800 " + "y" * 10_000)

    monkeypatch.setattr(info, "datastack_info", broken)
    before = served.app_state.errors.count
    status, _, resp = request(served, "GET", f"/info/api/v2/datastack/full/{DATASTACK}")
    assert status == 500 and len(resp) < 500
    assert "internal server error (RuntimeError)" in message_of(resp)
    assert served.app_state.errors.count == before + 1


# ---------------------------------------------------------------------------------------------
# 2. per-request limits


def test_repeated_ids_are_cheap_and_bounded_after_deduplication(served: Served,
                                                                facts: dict) -> None:
    """leaves_many with one root 100,000 times took 65 s and 2.3 GB: repeats are free now."""
    root, sv = facts["roots"][0], facts["svids"][0]
    t0 = time.monotonic()
    status, _, resp = request(served, "POST", f"{facts['seg']}/node/leaves_many",
                              json.dumps({"node_ids": [root] * 100_000}).encode())
    assert status == 200 and list(json.loads(resp)) == [str(root)]
    status, _, resp = request(served, "POST", f"{facts['seg']}/roots",
                              json.dumps({"node_ids": [sv] * 100_000}).encode())
    assert status == 200 and len(set(json.loads(resp)["root_ids"])) == 1
    assert len(json.loads(resp)["root_ids"]) == 100_000
    assert time.monotonic() - t0 < 20
    distinct = facts["roots"][:6]
    assert len(set(distinct)) == 6
    with limits(served, max_ids=5):
        for path, body in ((f"{facts['seg']}/node/leaves_many", {"node_ids": [root] * 1000}),
                           (f"{facts['seg']}/roots", {"node_ids": [sv] * 1000}),
                           (facts["query"], {"filter_in_dict": {"synapses_pni_2": {
                               "post_pt_root_id": [root] * 1000}}})):
            status, _, resp = request(served, "POST", path, json.dumps(body).encode())
            assert status == 200, (path, resp[:200])
        for path, body in ((f"{facts['seg']}/node/leaves_many", {"node_ids": distinct}),
                           (f"{facts['seg']}/is_latest_roots", {"node_ids": distinct}),
                           (f"/skeletoncache/api/v1/{DATASTACK}/precomputed/skeleton/exists",
                            {"root_ids": distinct}),
                           (facts["query"], {"filter_in_dict": {"synapses_pni_2": {
                               "post_pt_root_id": distinct}}})):
            status, _, resp = request(served, "POST", path, json.dumps(body).encode())
            assert status == 400, (path, status, resp[:200])
            assert "6 distinct" in message_of(resp) and "5" in message_of(resp)
        svids = np.asarray(facts["svids"][:6], dtype="<u8").tobytes()
        status, _, resp = request(served, "POST", f"{facts['seg']}/roots_binary", svids)
        assert status == 400 and "--max-ids" in message_of(resp)


def test_a_million_filter_values_are_refused_by_the_id_limit(served: Served,
                                                            facts: dict) -> None:
    body = {"filter_in_dict": {"synapses_pni_2": {"pre_pt_root_id": list(range(1_000_000))}}}
    status, _, resp = request(served, "POST", facts["query"], json.dumps(body).encode())
    assert status == 400 and "1000000 distinct values" in message_of(resp)
    assert "--max-ids" in message_of(resp)


def _send_until_answered(sock: socket.socket, chunks, total: int) -> int:
    """Send ``chunks`` until the server answers (or all are sent); the bytes sent."""
    sent = 0
    for chunk in chunks:
        if select.select([sock], [], [], 0)[0]:
            break
        try:
            sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
        if sent >= total:
            break
    return sent


def test_a_chunked_body_is_refused_once_it_passes_the_size_limit(served: Served,
                                                                 facts: dict) -> None:
    """A chunked body was buffered whole (only a declared Content-Length was checked)."""
    piece = b"[" + b"1," * 32_000 + b"1]"
    total = 64 * 1024 * 1024
    with limits(served, max_body_bytes=1024 * 1024):
        sock = _connect(served)
        try:
            head = (f"POST {facts['seg']}/roots HTTP/1.1\r\nHost: localhost\r\n"
                    f"Authorization: {AUTH['Authorization']}\r\n"
                    f"Transfer-Encoding: chunked\r\n\r\n").encode()
            sock.sendall(head)
            frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            sent = _send_until_answered(sock, iter(lambda: frame, None), total)
            status, headers, resp = _read_response(sock)
        finally:
            sock.close()
        assert status == 413, (status, resp[:200])
        assert "1048576 bytes" in message_of(resp) and "--max-body-bytes" in message_of(resp)
        assert sent < 16 * 1024 * 1024, sent  # answered long before the client was done
        # a declared length over the limit is refused before any of the body is read
        sock = _connect(served)
        try:
            sock.sendall((f"POST {facts['seg']}/roots HTTP/1.1\r\nHost: localhost\r\n"
                          f"Authorization: {AUTH['Authorization']}\r\n"
                          f"Content-Length: {total}\r\n\r\n").encode())
            status, _, resp = _read_response(sock)
        finally:
            sock.close()
        assert status == 413


def test_a_body_that_stops_arriving_is_a_408(served: Served, facts: dict) -> None:
    """A truncated body (Content-Length larger than what is sent) hung the connection."""
    with limits(served, read_timeout=1.0):
        sock = _connect(served)
        sock.settimeout(15)
        try:
            t0 = time.monotonic()
            sock.sendall((f"POST {facts['seg']}/roots HTTP/1.1\r\nHost: localhost\r\n"
                          f"Authorization: {AUTH['Authorization']}\r\n"
                          f"Content-Length: 1000\r\n\r\n").encode() + b'{"node_ids": [1, ')
            status, _, resp = _read_response(sock)
            elapsed = time.monotonic() - t0
        finally:
            sock.close()
    assert status == 408, (status, resp[:200])
    assert "--read-timeout" in message_of(resp)
    assert 0.9 < elapsed < 10


def test_rows_limit_says_how_to_page(served: Served, facts: dict) -> None:
    with limits(served, max_rows=5):
        status, _, resp = request(served, "POST", facts["nuc_query"],
                                  json.dumps({"limit": 6}).encode())
        assert status == 400
        assert "limit=5 and offset=0, 5, 10" in message_of(resp), message_of(resp)
        status, _, resp = request(served, "POST", f"{facts['nuc_query']}?random_sample=6", b"{}")
        assert status == 400 and "<= 5" in message_of(resp)
        status, headers, resp = request(served, "POST", facts["nuc_query"], b"{}")
        assert status == 200 and "truncated to 5 rows" in headers.get("warning", "")
        assert pa.ipc.open_stream(resp).read_all().num_rows == 5
        status, _, resp = request(served, "POST", facts["nuc_query"],
                                  json.dumps({"limit": 5, "offset": 5}).encode())
        assert status == 200 and pa.ipc.open_stream(resp).read_all().num_rows == 5


def test_a_query_over_the_time_limit_is_interrupted() -> None:
    from offline_cave.server.data.db import Database
    from offline_cave.server.data.errors import QueryTimeout

    db = Database(query_timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(QueryTimeout, match="--query-timeout"):
        db.arrow("SELECT sum(i * i) FROM range(1000000000000) t(i)")
    assert time.monotonic() - t0 < 5
    assert db.arrow("SELECT 42 AS x").column("x").to_pylist() == [42]  # the next one runs


def test_a_stopped_query_is_a_503_with_the_reason(served: Served, facts: dict,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    db = served.app_state.registry.db
    monkeypatch.setattr(db, "query_timeout", 0.3)
    real = type(db).arrow

    def slow(self, sql, params=None, register=None):  # every query is slow now
        return real(self, "SELECT sum(i * i) FROM range(1000000000000) t(i)")

    monkeypatch.setattr(type(db), "arrow", slow)
    status, _, resp = request(served, "POST", facts["nuc_query"], b"{}")
    assert status == 503 and "query time limit" in message_of(resp)


def test_log_records_quoting_lone_surrogates_stay_encodable() -> None:
    """A traceback quoting request text once broke pytest-xdist's channel (and would break a
    UTF-8 console): the server's and uvicorn's loggers escape such characters."""
    import logging

    from offline_cave.server.app import EscapeUnencodable

    try:
        raise RuntimeError("planted \ud800 text")
    except RuntimeError:
        import sys

        record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1,
                                   "path %s", ("/x\udfff",), sys.exc_info())
    assert EscapeUnencodable().filter(record)
    text = logging.Formatter().format(record)
    text.encode("utf-8")  # raises UnicodeEncodeError without the filter
    assert "\\ud800" in text and "\\udfff" in text
