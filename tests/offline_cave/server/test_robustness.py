"""Bad input never produces a 5xx, a hang or a file outside the data directory.

Hypothesis generates malformed requests (bad names, versions and ids, junk JSON, wrong filter
types, junk paths) sent as raw HTTP; every answer must come back within the timeout with a
status below 500, and the server's catch-all for unexpected exceptions must never fire.
"""

from __future__ import annotations

import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import numpy as np
import pyarrow.parquet as pq
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline_cave.contract import layout
from tests.fixtures.server_harness import AUTH

if TYPE_CHECKING:
    from tests.fixtures.server_harness import Served

DATASTACK = "minnie65_public"

TIMEOUT = 20
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
_SESSION = threading.local()


def session() -> requests.Session:
    s = getattr(_SESSION, "s", None)
    if s is None:
        s = _SESSION.s = requests.Session()
        s.headers.update(AUTH)
    return s


def raw_request(served: Served, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, bytes]:
    """Send ``path`` byte-for-byte (no client-side normalisation of ``..`` or escapes)."""
    parts = urlsplit(served.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in {**AUTH, **(headers or {})}.items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body or b"")
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def facts(served: Served) -> dict:
    versions = json.loads((served.ds_dir / layout.VERSIONS_JSON).read_text())
    mat = [v["version"] for v in versions if v.get("materialized")]
    tables = sorted(json.loads((served.ds_dir / layout.TABLES_JSON).read_text()))
    roots = pq.read_table(served.ds_dir / layout.ROOTS_PARQUET).column("root_id").to_pylist()
    pcg = json.loads((served.ds_dir / layout.DATASTACK_JSON).read_text())["pcg_table_name"]
    columns = {}
    for t in tables + ["nucleus_detection_lookup_v1"]:
        files = sorted(served.ds_dir.glob(f"v*/{t}.parquet"))
        names = pq.read_schema(files[-1]).names
        columns[t] = sorted(set(names) | {n[:-2] for n in names if n.endswith("_position_x")})
    return {"version": mat[-1], "tables": tables, "roots": roots[:5], "pcg": pcg,
            "columns": columns}


@pytest.fixture(autouse=True)
def no_internal_errors(served: Served):
    before = served.app_state.errors.count
    yield
    assert served.app_state.errors.count == before, served.app_state.errors.last


# --------------------------------------------------------------------------------------------
# strategies

JUNK_TEXT = st.text(max_size=40)  # lone surrogates and control characters included
NAMES = st.one_of(JUNK_TEXT, st.sampled_from(
    ["synapse_pni_2", "synapses_pni_2", "nucleus_detection_v0", "..", "%2e%2e", "../../etc",
     "", " ", "a" * 256, "a" * 300, "é" * 200, "None", "null", "0", "-1", "ÿ", "💥", "tables",
     "metadata", "\ud800", "x\udfffy", "\x00", "\x1b[31m"]))
VERSIONS = st.one_of(st.integers(-(2**70), 2**70).map(str),
                     st.sampled_from(["1300", "1822", "117", "0", "-1", "abc", "1e3", "1.5",
                                      "99999999999999999999999", "", "NaN"]),
                     JUNK_TEXT)
IDS = st.one_of(st.integers(-(2**70), 2**70).map(str),
                st.sampled_from(["864691132055135232", "0", "-5", "18446744073709551615",
                                 "abc", "1:0", "1:0:1", "", "..", "%00", "1" * 256,
                                 "1" * 255 + ":0:1", "a" * 1000]),
                JUNK_TEXT)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
              st.floats(allow_nan=False), st.text(max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=12)
FILTER_KEYS = ["filter_in_dict", "filter_notin_dict", "filter_equal_dict",
               "filter_greater_dict", "filter_less_dict", "filter_greater_equal_dict",
               "filter_less_equal_dict", "filter_spatial_dict", "filter_regex_dict"]
COLUMNS = st.sampled_from(["id", "pt_root_id", "pre_pt_root_id", "size", "cell_type",
                           "pt_position", "created", "valid", "volume", "nope", "pt",
                           "post_pt_position", "target_id"])


def quoted(text: str) -> str:
    return quote(text, safe="", errors="surrogatepass")  # lone surrogates as their bytes


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64, 864691132055135232]),
                    st.floats(), st.text(max_size=10),
                    st.sampled_from(["t", "f", "2020-01-01", "x" * 50, "(", "[a-", "\\"]))
FILTER_VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=5),
                          st.lists(st.lists(SCALARS, max_size=4), max_size=3), JSON_VALUES)


@st.composite
def query_bodies(draw, table: str, columns: list[str]) -> bytes:
    """Structured-but-wrong query bodies (and some raw junk).

    Mostly well-formed filter dicts on real columns of the table with wrongly typed, out of
    range or malformed values -- the inputs most likely to reach deep into the engine.
    """
    kind = draw(st.integers(0, 10))
    if kind == 0:
        return draw(st.binary(max_size=60))
    if kind == 10:  # nested 1,000 deep (was a RecursionError), possibly inside a filter
        depth = draw(st.sampled_from([65, 1000, 5000]))
        deep = "[" * depth + "]" * depth
        return draw(st.sampled_from([deep, f'{{"filter_in_dict": {{"{table}": {{"id": {deep}}}}}}}',
                                     '{"a":' * depth + "1" + "}" * depth])).encode()
    if kind == 1:
        return json.dumps(draw(JSON_VALUES)).encode()
    body: dict = {}
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(FILTER_KEYS * 3 + ["select_columns", "limit", "offset",
                                                      "desired_resolution", "suffix_map",
                                                      "tables", "select_column_map",
                                                      "timestamp", "table", "join_tables"]))
        if key in FILTER_KEYS:
            tname = draw(st.sampled_from([table] * 4 + ["other_table", ""]))
            col = draw(st.one_of(st.sampled_from(columns), COLUMNS))
            body[key] = {tname: {col: draw(FILTER_VALUES)}}
            if draw(st.integers(0, 9)) == 0:
                body[key] = draw(JSON_VALUES)
        else:
            body[key] = draw(st.one_of(FILTER_VALUES, st.sampled_from(
                [[[table, "id"], [table, "id"]], [[table, "target_id"]], "2025-01-01T00:00:00",
                 table, [[table, "id", "nucleus_detection_v0", "id"]], [table]])))
    return json.dumps(body, allow_nan=True).encode()


def assert_ok(status: int, body: bytes, what: str) -> None:
    assert status < 500, f"{what} -> {status}: {body[:300]!r}"


# --------------------------------------------------------------------------------------------
# generated malformed requests


@SETTINGS
@given(ds=NAMES, version=VERSIONS, table=NAMES, tail=st.sampled_from(
    ["metadata", "count", "query", "", "views", "tables"]))
def test_bad_names_and_versions(served: Served, ds: str, version: str, table: str,
                                tail: str) -> None:
    for path in (f"/materialize/api/v3/datastack/{quoted(ds)}/version/{quoted(version)}/table/"
                 f"{quoted(table)}/{tail}",
                 f"/materialize/api/v2/datastack/{quoted(ds)}/version/{quoted(version)}/tables",
                 f"/info/api/v2/datastack/full/{quoted(ds)}",
                 f"/materialize/api/v3/datastack/{DATASTACK}/version/{quoted(version)}"):
        method = "POST" if path.endswith("query") else "GET"
        status, body = raw_request(served, method, path, b"{}")
        assert_ok(status, body, path)


@settings(SETTINGS, max_examples=300)
@given(data=st.data())
def test_malformed_query_bodies(served: Served, facts: dict, data) -> None:
    v = facts["version"]
    target = data.draw(st.sampled_from(["table", "table", "table", "join", "live", "view"]))
    table = data.draw(st.sampled_from(facts["tables"]))
    if target == "view":
        table = "nucleus_detection_lookup_v1"
    body = data.draw(query_bodies(table, facts["columns"][table]))
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # junk, or nested deeper than Python parses
        parsed = None
    if isinstance(parsed, dict) and data.draw(st.integers(0, 4)) > 0:
        # make the envelope right so that the malformed filters are what gets judged
        if target == "join":
            parsed.setdefault("tables", [[table, "id"], ["nucleus_detection_v0", "id"]])
        if target == "live":
            parsed.setdefault("table", table)
            parsed.setdefault("timestamp", "2026-01-01T00:00:00")
        body = json.dumps(parsed).encode()
    path = {"table": f"/materialize/api/v3/datastack/{DATASTACK}/version/{v}/table/{table}/query",
            "join": f"/materialize/api/v3/datastack/{DATASTACK}/version/{v}/query",
            "live": f"/materialize/api/v3/datastack/{DATASTACK}/query",
            "view": f"/materialize/api/v3/datastack/{DATASTACK}/version/{v}/views/"
                    f"{table}/query"}[target]
    query = data.draw(st.sampled_from(["", "?return_pyarrow=True&arrow_format=True"] * 4 + [
        "?count=True", "?random_sample=-3", "?random_sample=abc", "?arrow_format=maybe",
        "?return_pyarrow=False&arrow_format=False", "?random_sample=2",
        "?random_sample=10000000000", "?random_sample=1000000000", "?random_sample=-1e9",
        "?random_sample=9223372036854775807", "?random_sample=1e3", "?random_sample=%00"]))
    status, resp = raw_request(served, "POST", path + query, body,
                               {"Content-Type": "application/json"})
    assert_ok(status, resp, f"{path} {body[:200]!r}")


DUPLICATE_IDS = st.tuples(st.sampled_from(["node_ids", "root_ids"]),
                          st.sampled_from([864691132055135232, 1, 0, -1]),
                          st.sampled_from([2, 1000, 10_000])).map(
    lambda k: json.dumps({k[0]: [k[1]] * k[2]}).encode())


@SETTINGS
@given(node=IDS, body=st.one_of(st.binary(max_size=40), JSON_VALUES.map(
    lambda v: json.dumps(v).encode()), DUPLICATE_IDS, st.sampled_from(
    [b"[" * 1000 + b"]" * 1000, b'{"node_ids": ' + b"[" * 1000 + b"]" * 1000 + b"}",
     b'{"root_ids": [' + b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"]}"])), endpoint=st.sampled_from(
    ["roots_binary", "root_timestamps", "is_latest_roots", "lineage_graph_multiple",
     "past_id_mapping", "valid_nodes", "node/leaves_many", "delta_roots", "oldest_timestamp",
     "node/{n}/root", "node/{n}/leaves", "root/{n}/change_log"]),
    ts=st.sampled_from(["", "?timestamp=abc", "?timestamp=1e300", "?timestamp=-1",
                        "?timestamp_past=x&timestamp_future=1", "?timestamp=nan",
                        "?stop_layer=2", "?bounds=1-2_3", "?latest=True&timestamp=1",
                        "?timestamp_past=1", "?timestamp=inf", "?timestamp=-inf",
                        "?timestamp=2025-01-01T00:00:00", "?end_timestamp=inf"]))
def test_chunkedgraph_junk(served: Served, facts: dict, node: str, body: bytes, endpoint: str,
                           ts: str) -> None:
    path = (f"/segmentation/api/v1/table/{facts['pcg']}/" + endpoint.replace("{n}", quoted(node))
            + ts)
    for method in ("GET", "POST"):
        status, resp = raw_request(served, method, path, body)
        assert_ok(status, resp, f"{method} {path} {body[:100]!r}")


@SETTINGS
@given(root=IDS, ds=st.one_of(st.just(DATASTACK), NAMES), fmt=st.sampled_from(
    ["flatdict", "swccompressed", "json", "swc", "precomputed", "bogus", ""]),
    skvn=st.sampled_from(["4", "-1", "99", "x", ""]))
def test_skeleton_and_mesh_junk(served: Served, facts: dict, root: str, ds: str, fmt: str,
                                skvn: str) -> None:
    r, d = quoted(root), quoted(ds)
    for path in (f"/skeletoncache/api/v1/{d}/async/get_skeleton/{skvn}/{r}/{fmt}",
                 f"/skeletoncache/api/v1/{d}/bulk/get_skeletons/{skvn}/{fmt}/False/{r},{r}",
                 f"/skeletoncache/api/v1/{d}/precomputed/skeleton/{r}",
                 f"/meshing/api/v1/table/{facts['pcg']}/manifest/{r}:0",
                 f"/meshing/api/v1/table/{d}/manifest/{r}",
                 f"/seg/{d}/mesh/{r}:0:1", f"/seg/{d}/mesh/{r}:0", f"/seg/{d}/{r}",
                 f"/em/{d}/{r}", f"/annotation/api/v2/aligned_volume/{d}/table/{r}/annotations"
                 f"?annotation_ids={r}"):
        status, resp = raw_request(served, "GET", path)
        assert_ok(status, resp, path)


@SETTINGS
@given(path=st.lists(st.one_of(NAMES, IDS), min_size=1, max_size=6),
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]))
def test_junk_paths(served: Served, path: list[str], method: str) -> None:
    text = "/" + "/".join(quoted(p) for p in path)
    for prefix in ("", "/materialize/api/v3", "/segmentation/api/v1/table", "/seg",
                   "/skeletoncache/api/v1", "/info/api/v2/datastack/full", "/schema/api/v2/type"):
        status, resp = raw_request(served, method, prefix + text)
        assert_ok(status, resp, f"{method} {prefix + text}")


# --------------------------------------------------------------------------------------------
# hand-written edge cases


GRID_VALUES = [None, True, "abc", "", "12", -1, 2**63, 2**64 + 5, 1.5, float("nan"), [], ["a", 1],
               [None], [[1, 2, 3], [4, 5, 6]], [[0, 0, 0], [1e308, 1e308, 1e308]],
               {"a": 1}, "((", "2025-01-01T00:00:00", [True, False]]


@pytest.mark.parametrize("table", ["synapses_pni_2", "aibs_metamodel_celltypes_v661",
                                   "proofreading_status_and_strategy"])
def test_filter_grid(served: Served, facts: dict, table: str) -> None:
    """Every filter kind x every column x awkward values: only 200 or 4xx answers."""
    v = facts["version"]
    url = f"{served.url}/materialize/api/v3/datastack/{DATASTACK}/version/{v}/table/{table}/query"
    s = requests.Session()
    s.headers.update(AUTH)
    statuses: dict[int, int] = {}
    for key in FILTER_KEYS:
        for col in facts["columns"][table]:
            for value in GRID_VALUES:
                body = json.dumps({key: {table: {col: value}}}, allow_nan=True)
                r = s.post(url, data=body, timeout=TIMEOUT,
                           headers={"Content-Type": "application/json"})
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                assert r.status_code < 500, (key, col, value, r.text[:300])
                if r.status_code >= 400:
                    assert r.json()["message"], (key, col, value)
    assert statuses.get(200, 0) > 0 and statuses.get(400, 0) > 0


def test_specific_bad_inputs_are_400_or_404(served: Served, facts: dict) -> None:
    v = facts["version"]
    base = f"{served.url}/materialize/api/v3/datastack/{DATASTACK}/version/{v}"
    cases = [
        ("post", f"{base}/table/synapses_pni_2/query",
         {"filter_in_dict": {"synapses_pni_2": {"pre_pt_root_id": "notalist"}}}, 400),
        ("post", f"{base}/table/synapses_pni_2/query",
         {"filter_in_dict": {"synapses_pni_2": {"pre_pt_root_id": [2**64]}}}, 400),
        ("post", f"{base}/table/synapses_pni_2/query",
         {"filter_equal_dict": {"synapses_pni_2": {"size": "big"}}}, 400),
        ("post", f"{base}/table/synapses_pni_2/query",
         {"filter_greater_dict": {"synapses_pni_2": {"pre_pt_position": 3}}}, 400),
        ("post", f"{base}/table/synapses_pni_2/query",
         {"filter_regex_dict": {"synapses_pni_2": {"size": "a"}}}, 400),
        ("post", f"{base}/table/aibs_metamodel_celltypes_v661/query",
         {"filter_regex_dict": {"aibs_metamodel_celltypes_v661": {"cell_type": "(("}}}, 400),
        ("post", f"{base}/table/synapses_pni_2/query",
         {"filter_spatial_dict": {"synapses_pni_2": {"ctr_pt_position": [[0, 0], [1, 1]]}}}, 400),
        ("post", f"{base}/table/synapses_pni_2/query", {"desired_resolution": [0, 1, 1]}, 400),
        ("post", f"{base}/table/synapses_pni_2/query", {"limit": -1}, 400),
        ("post", f"{base}/table/synapses_pni_2/query", {"select_columns": ["nope"]}, 400),
        ("post", f"{base}/table/synapses_pni_2/query", [1, 2], 400),
        ("post", f"{base}/query", {"tables": [["synapses_pni_2"]]}, 400),
        ("post", f"{base}/table/synapse_pni_2/query", {}, 404),
        ("get", f"{served.url}/materialize/api/v3/datastack/{DATASTACK}/version/99999", None, 404),
        ("get", f"{served.url}/materialize/api/v3/datastack/{DATASTACK}/version/abc", None, 400),
        ("get", f"{served.url}/segmentation/api/v1/table/{facts['pcg']}/node/12345/root", None,
         404),
        ("get", f"{served.url}/segmentation/api/v1/table/nope/node/12345/root", None, 404),
        ("get", f"{served.url}/skeletoncache/api/v1/{DATASTACK}/async/get_skeleton/4/1/flatdict",
         None, 404),
        ("get", f"{served.url}/no/such/endpoint", None, 404),
    ]
    for method, url, body, want in cases:
        kwargs = {"timeout": TIMEOUT, "headers": AUTH}
        if body is not None:
            kwargs["json"] = body
        r = getattr(requests, method)(url, **kwargs)
        assert r.status_code == want, (url, body, r.status_code, r.text)
        assert r.json()["message"]
    r = requests.post(f"{base}/table/synapses_pni_2/query", data=b"{not json", timeout=TIMEOUT,
                      headers=AUTH)
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    r = requests.post(f"{served.url}/segmentation/api/v1/table/{facts['pcg']}/roots_binary",
                      data=b"\x01\x02\x03", timeout=TIMEOUT, headers=AUTH)
    assert r.status_code == 400


def test_no_redirects_for_trailing_slashes(served: Served) -> None:
    for path in ("/info/api/v2/datastacks/", f"/materialize/api/v3/datastack/{DATASTACK}/versions/"):
        r = requests.get(served.url + path, allow_redirects=False, timeout=TIMEOUT,
                         headers=AUTH)
        assert r.status_code == 404 and not r.is_redirect


# --------------------------------------------------------------------------------------------
# static files cannot escape the data directory


def test_path_traversal_is_refused(served: Served) -> None:
    outside = served.ds_dir / layout.MANIFEST
    if served.fixture is not None:  # never plant files in a real sample directory
        seg_dir = served.ds_dir / layout.CACHE_DIR / "seg"
        seg_dir.mkdir(parents=True, exist_ok=True)
        (seg_dir / "probe.txt").write_text("inside")
        outside = served.ds_dir / "secret-outside.txt"
        outside.write_text("SECRET-OUTSIDE")
        link = seg_dir / "escape"
        if not link.exists():
            link.symlink_to(served.ds_dir, target_is_directory=True)
        status, body = raw_request(served, "GET", f"/seg/{DATASTACK}/probe.txt")
        assert status == 200 and body == b"inside"
    attempts = [
        f"/seg/{DATASTACK}/../../{DATASTACK}/MANIFEST.json",
        f"/seg/{DATASTACK}/..%2f..%2fsecret-outside.txt",
        f"/seg/{DATASTACK}/%2e%2e/%2e%2e/secret-outside.txt",
        f"/seg/{DATASTACK}/%2E%2E%2F%2E%2E%2Fsecret-outside.txt",
        f"/seg/{DATASTACK}/mesh/../../../secret-outside.txt",
        f"/seg/{DATASTACK}//etc/passwd",
        f"/seg/{DATASTACK}/%2fetc%2fpasswd",
        f"/seg/{DATASTACK}/{quote(str(outside), safe='')}",
        f"/seg/{DATASTACK}/escape/secret-outside.txt",
        f"/seg/{DATASTACK}/escape/MANIFEST.json",
        f"/seg/{DATASTACK}/..\\..\\secret-outside.txt",
        f"/seg/{DATASTACK}/probe.txt%00.json",
        f"/seg/..%2f{DATASTACK}/secret-outside.txt",
        f"/em/{DATASTACK}/../../secret-outside.txt",
        "/seg/%2e%2e/etc/passwd",
    ]
    for path in attempts:
        status, body = raw_request(served, "GET", path)
        assert status in (400, 404), (path, status)
        assert b"SECRET-OUTSIDE" not in body and b"root:" not in body and b"sha256" not in body


# --------------------------------------------------------------------------------------------
# concurrency: 8 clients x 50 queries


def test_concurrent_clients(served: Served, facts: dict) -> None:
    from caveclient import CAVEclient

    v = facts["version"]
    syn = pq.read_table(served.ds_dir / f"v{v}" / "synapses_pni_2.parquet").to_pandas()
    posts = sorted(set(syn.post_pt_root_id))
    expected = {r: int((syn.post_pt_root_id == r).sum()) for r in posts}
    nuc = pq.read_table(served.ds_dir / f"v{v}" / "nucleus_detection_v0.parquet").to_pandas()
    svs = nuc.pt_supervoxel_id.values

    def worker(k: int) -> int:
        c = CAVEclient(DATASTACK, version=v)
        errors = 0
        for i in range(50):
            root = posts[(k * 50 + i) % len(posts)]
            kind = i % 4
            if kind == 0:
                df = c.materialize.query_table("synapses_pni_2",
                                               filter_equal_dict={"post_pt_root_id": root})
                errors += len(df) != expected[root]
            elif kind == 1:
                df = c.materialize.query_table("nucleus_detection_v0", limit=5, offset=i % 3)
                errors += len(df) != min(5, len(nuc) - i % 3)
            elif kind == 2:
                roots = c.chunkedgraph.get_roots(svs, timestamp=c.materialize.get_timestamp(v))
                errors += not np.array_equal(roots, nuc.pt_root_id.values)
            else:
                df = c.materialize.query_table("aibs_metamodel_celltypes_v661", limit=3)
                errors += len(df) != 3
        return errors

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(worker, range(8), timeout=150))
    assert sum(results) == 0


# --------------------------------------------------------------------------------------------
# tokens: as on the public services, a request without one is a 401 that says what to do


def test_requests_without_a_token_are_401_with_a_useful_message(served: Served,
                                                               facts: dict) -> None:
    v = facts["version"]
    paths = ["/info/api/v2/datastacks", f"/info/api/v2/datastack/full/{DATASTACK}",
             f"/materialize/api/v3/datastack/{DATASTACK}/versions",
             f"/materialize/api/v3/datastack/{DATASTACK}/version/{v}/tables",
             f"/segmentation/api/v1/table/{facts['pcg']}/info", "/no/such/endpoint"]
    for path in paths:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"},
                        {"Cookie": "middle_auth_token="}, {"Cookie": "other=1"}):
            r = requests.get(served.url + path, headers=headers, timeout=TIMEOUT)
            assert r.status_code == 401, (path, headers, r.status_code)
            assert "save_token" in r.json()["message"]
    # the cookie and the query parameter count too, as on the real services
    ok = [requests.get(f"{served.url}{paths[0]}", timeout=TIMEOUT, headers=AUTH),
          requests.get(f"{served.url}{paths[0]}", timeout=TIMEOUT,
                       cookies={"middle_auth_token": "abc123"}),
          requests.get(f"{served.url}{paths[0]}", timeout=TIMEOUT,
                       params={"middle_auth_token": "abc123"}),
          requests.get(f"{served.url}/", timeout=TIMEOUT)]  # the landing page is open
    assert [r.status_code for r in ok] == [200] * 4


def test_caveclient_without_a_token_fails_with_the_401(served: Served, tmp_path) -> None:
    from caveclient import CAVEclient

    with pytest.raises(requests.HTTPError, match="401") as err:
        CAVEclient(DATASTACK, server_address=served.url, write_server_cache=False,
                   auth_token_file=str(tmp_path / "no-such-token.json"))
    assert "save_token" in str(err.value)
