"""The chunkedgraph's history calls through the unmodified caveclient (issue 10, protocol
breadth): change logs, operation details, root timestamps, past ids, lineage graphs, delta
roots and latest roots, and a clear 4xx for every bad input to them.

Expectations come from the sample's files (``segments/lineage.parquet``,
``operations.parquet``, ``users.parquet``, ``roots.parquet``) read with pandas here, never
from the server's code. The tests also run on a generated sample
(``OFFLINE_CAVE_TEST_DATA``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests

from offline_cave.contract import layout
from tests.fixtures.server_harness import AUTH

if TYPE_CHECKING:
    from tests.fixtures.server_harness import Served

UTC = dt.UTC
FILTERED_COLUMNS = ["operation_id", "timestamp", "user_id", "before_root_ids",
                    "after_root_ids", "is_merge", "user_name", "user_affiliation"]


def read(served: Served, rel: str) -> pd.DataFrame:
    return pq.read_table(served.ds_dir / rel).to_pandas()


def utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, UTC)


@pytest.fixture(scope="module")
def history(served: Served) -> dict:
    """A merge and a split of the sample, and what the files say about them."""
    lin = read(served, layout.LINEAGE_PARQUET)
    ops = read(served, layout.OPERATIONS_PARQUET)
    roots = read(served, layout.ROOTS_PARQUET).set_index("root_id")
    users = read(served, layout.USERS_PARQUET).set_index("user_id")
    per_op = lin.groupby("operation_id").agg(parents=("parent_root_id", lambda s: sorted(set(s))),
                                             children=("child_root_id", lambda s: sorted(set(s))))
    merges = per_op[(per_op.parents.map(len) >= 2) & (per_op.children.map(len) == 1)]
    splits = per_op[(per_op.parents.map(len) == 1) & (per_op.children.map(len) == 2)]
    assert len(merges) and len(splits), "the sample needs a merge and a split"
    merge_op, split_op = int(merges.index[0]), int(splits.index[0])
    return {"lin": lin, "ops": ops, "roots": roots, "users": users, "per_op": per_op,
            "merge_op": merge_op, "merge_child": int(merges.children.iloc[0][0]),
            "merge_parents": [int(p) for p in merges.parents.iloc[0]],
            "split_op": split_op, "split_parent": int(splits.parents.iloc[0][0]),
            "split_children": [int(c) for c in splits.children.iloc[0]],
            "unedited": int(roots.index[(roots.operation_id == 0)
                                        & ~roots.index.isin(lin.parent_root_id)][0])}


def ancestors(lin: pd.DataFrame, root: int) -> set[int]:
    parents = lin.groupby("child_root_id").parent_root_id.apply(list).to_dict()
    out, stack = set(), [root]
    while stack:
        for p in parents.get(stack.pop(), []):
            if p not in out:
                out.add(int(p))
                stack.append(p)
    return out


def op_of(history: dict, op: int) -> pd.DataFrame:
    return history["ops"][history["ops"].operation_id == op]


# --------------------------------------------------------------------------------------------
# change logs


def test_tabular_change_log_has_one_row_per_edit_of_the_history(client, history: dict) -> None:
    root = history["merge_child"]
    log = client.chunkedgraph.get_tabular_change_log(root, filtered=False)[root]
    lin = history["lin"]
    expected_ops = sorted(set(lin[lin.parent_root_id.isin(ancestors(lin, root))].operation_id))
    assert log.operation_id.tolist() == expected_ops
    assert list(log.columns) == FILTERED_COLUMNS[:6] + ["in_neuron", "is_relevant"] \
        + FILTERED_COLUMNS[6:]
    row = log.set_index("operation_id").loc[history["merge_op"]]
    rec = op_of(history, history["merge_op"]).iloc[0]
    assert row.is_merge and bool(row.in_neuron) and bool(row.is_relevant)
    assert sorted(row.before_root_ids) == history["merge_parents"]
    assert row.after_root_ids == [root]
    assert row.timestamp == round(rec.timestamp * 1000)  # milliseconds, as the real service
    assert row.user_id == str(rec.user_id)
    assert row.user_name == history["users"].loc[rec.user_id, "user_name"]
    assert row.user_affiliation == history["users"].loc[rec.user_id, "user_affiliation"]


def test_filtered_change_log_keeps_the_relevant_edits(client, history: dict) -> None:
    root = history["merge_child"]
    full = client.chunkedgraph.get_tabular_change_log(root, filtered=False)[root]
    log = client.chunkedgraph.get_tabular_change_log(root)[root]  # filtered=True by default
    assert list(log.columns) == FILTERED_COLUMNS
    kept = full[full.in_neuron.astype(bool) & full.is_relevant.astype(bool)]
    assert log.operation_id.tolist() == kept.operation_id.tolist()
    assert history["merge_op"] in set(log.operation_id)


def test_tabular_change_log_of_many_roots(client, history: dict) -> None:
    child = history["split_children"][0]
    roots = [history["merge_child"], child, history["unedited"]]
    logs = client.chunkedgraph.get_tabular_change_log(roots)
    assert sorted(logs) == sorted(roots)
    split_row = logs[child].set_index("operation_id").loc[history["split_op"]]
    assert not split_row.is_merge
    assert split_row.before_root_ids == [history["split_parent"]]
    assert split_row.after_root_ids == [child]  # only the result on the way to the root
    assert len(logs[history["unedited"]]) == 0
    assert list(logs[history["unedited"]].columns) == FILTERED_COLUMNS


def test_change_log_summarises_the_filtered_log(client, history: dict) -> None:
    root = history["merge_child"]
    table = client.chunkedgraph.get_tabular_change_log(root)[root]
    log = client.chunkedgraph.get_change_log(root)
    assert log["operations_ids"] == table.operation_id.tolist()
    assert log["n_mergers"] == int(table.is_merge.sum())
    assert log["n_splits"] == len(table) - int(table.is_merge.sum())
    assert set(history["merge_parents"]) <= set(log["past_ids"])
    user = str(op_of(history, history["merge_op"]).user_id.iloc[0])
    assert log["user_info"][user]["n_mergers"] >= 1
    assert sum(u["n_mergers"] + u["n_splits"] for u in log["user_info"].values()) == len(table)


def test_operation_details_are_the_logged_edits(client, history: dict) -> None:
    merge_op, split_op = history["merge_op"], history["split_op"]
    details = client.chunkedgraph.get_operation_details(np.array([merge_op, split_op]))
    assert sorted(details) == sorted([str(merge_op), str(split_op)])
    merge, split = details[str(merge_op)], details[str(split_op)]
    rows = op_of(history, merge_op)
    edges = [[int(a), int(b)] for a, b in zip(rows.source_supervoxel_id,
                                             rows.sink_supervoxel_id, strict=True) if a and b]
    assert merge["added_edges"] == edges and "removed_edges" not in merge
    assert merge["roots"] == [history["merge_child"]]
    assert merge["user"] == str(rows.user_id.iloc[0])
    assert merge["sink_coords"] == rows[["sink_x", "sink_y", "sink_z"]].to_numpy().tolist()
    assert merge["source_coords"][0] == rows[["source_x", "source_y", "source_z"]].iloc[0].tolist()
    when = dt.datetime.fromisoformat(merge["timestamp"])
    assert abs(when.timestamp() - rows.timestamp.iloc[0]) < 1e-3
    assert "removed_edges" in split and "added_edges" not in split
    assert split["roots"] == history["split_children"]


# --------------------------------------------------------------------------------------------
# timestamps, past and latest ids, lineage, delta roots


def test_root_timestamps_created_and_latest(client, history: dict) -> None:
    cg, roots = client.chunkedgraph, history["roots"]
    parent, child = history["split_parent"], history["split_children"][0]
    created = cg.get_root_timestamps([parent, child])
    assert [t.timestamp() for t in created] == pytest.approx(
        [roots.loc[parent, "created"], roots.loc[child, "created"]], abs=1e-3)
    at = utc(roots.loc[child, "created"] + 3600)
    latest = cg.get_root_timestamps([parent, child], latest=True, timestamp=at)
    # an expired root: when it was replaced; a current one: the timestamp asked (less 1 ms,
    # which the client subtracts)
    assert latest[0].timestamp() == pytest.approx(roots.loc[parent, "expired"] - 1e-3, abs=1e-3)
    assert latest[1].timestamp() == pytest.approx(at.timestamp() - 1e-3, abs=1e-3)


def test_is_latest_suggest_and_get_latest_roots(client, history: dict) -> None:
    cg = client.chunkedgraph
    parent, children = history["split_parent"], history["split_children"]
    t_split = float(op_of(history, history["split_op"]).timestamp.iloc[0])
    assert list(cg.is_latest_roots([parent] + children, timestamp=utc(t_split - 1))) == \
        [True, False, False]
    assert sorted(cg.get_latest_roots(parent)) == children
    assert list(cg.get_latest_roots(parent, timestamp=utc(t_split - 1))) == [parent]
    assert cg.suggest_latest_roots(parent) in children
    assert cg.suggest_latest_roots(parent, timestamp=utc(t_split - 1)) == parent


def test_past_ids_with_and_without_a_window(client, history: dict) -> None:
    cg, child = client.chunkedgraph, history["merge_child"]
    t_merge = float(op_of(history, history["merge_op"]).timestamp.iloc[0])
    past = cg.get_past_ids([child], timestamp_past=utc(t_merge - 1),
                           timestamp_future=utc(t_merge + 1))
    assert sorted(past["past_id_map"][child]) == history["merge_parents"]
    assert past["future_id_map"][history["merge_parents"][0]] == [child]
    assert cg.get_past_ids([child], timestamp_past=utc(t_merge + 1))["past_id_map"][child] \
        == [child]
    lin = history["lin"]
    originals = sorted(a for a in ancestors(lin, child) if a not in set(lin.child_root_id))
    assert sorted(cg.get_past_ids([child])["past_id_map"][child]) == originals
    assert sorted(cg.get_original_roots(child)) == originals


def test_lineage_graph_respects_its_window(client, history: dict) -> None:
    cg, child = client.chunkedgraph, history["merge_child"]
    t_merge = float(op_of(history, history["merge_op"]).timestamp.iloc[0])
    full = cg.get_lineage_graph(child, as_nx_graph=True)
    assert set(history["merge_parents"]) <= set(full.predecessors(child))
    # as the PyChunkedGraph: a retired root carries the operation that retired it, a current
    # one the operation that made it
    lin = history["lin"]
    retired = lin[lin.parent_root_id == child].operation_id
    assert full.nodes[child]["operation_id"] == (int(retired.iloc[0]) if len(retired)
                                                 else history["merge_op"])
    assert all(full.nodes[p]["operation_id"] == history["merge_op"]
               for p in history["merge_parents"])
    late = cg.get_lineage_graph(child, timestamp_past=utc(t_merge + 1), as_nx_graph=True)
    assert not set(history["merge_parents"]) & set(late.nodes)
    parent = history["merge_parents"][0]
    before = cg.get_lineage_graph(parent, timestamp_future=utc(t_merge - 1), as_nx_graph=True)
    assert child not in before.nodes
    after = cg.get_lineage_graph(parent, timestamp_future=utc(t_merge + 1), as_nx_graph=True)
    assert after.has_edge(parent, child)


def test_delta_roots_between_two_times(client, history: dict) -> None:
    roots = history["roots"]
    t0, t1 = utc(roots.created.max() - 1), utc(roots.created.max() + 1)
    old, new = client.chunkedgraph.get_delta_roots(t0, t1)
    newest = roots.index[roots.created == roots.created.max()]
    assert set(newest) <= set(new.tolist())
    expired = roots.index[(roots.expired > t0.timestamp()) & (roots.expired <= t1.timestamp())]
    assert sorted(old.tolist()) == sorted(expired)


# --------------------------------------------------------------------------------------------
# bad input: a clear 4xx, never a 500


@pytest.fixture(scope="module")
def seg_url(served: Served) -> str:
    pcg = json.loads((served.ds_dir / layout.DATASTACK_JSON).read_text())["pcg_table_name"]
    return f"{served.url}/segmentation/api/v1/table/{pcg}"


@pytest.fixture(autouse=True)
def no_internal_errors(served: Served):
    before = served.app_state.errors.count
    yield
    assert served.app_state.errors.count == before, served.app_state.errors.last


UNKNOWN_ROOT = (12 << 56) + 1
SUPERVOXEL = (1 << 56) + 12345


def _calls(seg_url: str, root: int) -> list[tuple[str, str, dict | None]]:
    body = {"root_ids": [root]}
    return [("GET", f"{seg_url}/tabular_change_log_many?filtered=True", body),
            ("GET", f"{seg_url}/root/{root}/tabular_change_log", None),
            ("GET", f"{seg_url}/root/{root}/change_log?filtered=True", None),
            ("POST", f"{seg_url}/lineage_graph_multiple?timestamp_past=0", body),
            ("GET", f"{seg_url}/root/{root}/lineage_graph", None),
            ("GET", f"{seg_url}/past_id_mapping?timestamp_past=0", body),
            ("POST", f"{seg_url}/root_timestamps?latest=False", {"node_ids": [root]})]


def test_an_unknown_root_is_a_404_naming_it(seg_url: str) -> None:
    for method, url, body in _calls(seg_url, UNKNOWN_ROOT):
        r = requests.request(method, url, data=json.dumps(body) if body else None, headers=AUTH)
        assert r.status_code == 404, (url, r.status_code, r.text[:200])
        assert str(UNKNOWN_ROOT) in r.json()["message"]


def test_an_id_that_is_not_a_root_is_a_400(seg_url: str) -> None:
    for method, url, body in _calls(seg_url, SUPERVOXEL):
        r = requests.request(method, url, data=json.dumps(body) if body else None, headers=AUTH)
        assert r.status_code == 400, (url, r.status_code, r.text[:200])
        assert "not root ids" in r.json()["message"]


@pytest.mark.parametrize("value", ["yesterday", "nan", "1e300", "2025-13-45"])
def test_malformed_timestamps_are_400(seg_url: str, history: dict, value: str) -> None:
    root = history["merge_child"]
    body = json.dumps({"root_ids": [root]})
    for method, url, data in [
            ("POST", f"{seg_url}/lineage_graph_multiple?timestamp_past={value}", body),
            ("POST", f"{seg_url}/lineage_graph_multiple?timestamp_future={value}", body),
            ("GET", f"{seg_url}/past_id_mapping?timestamp_past={value}", body),
            ("GET", f"{seg_url}/delta_roots?timestamp_past={value}", None),
            ("GET", f"{seg_url}/delta_roots?timestamp_past=0&timestamp_future={value}", None),
            ("POST", f"{seg_url}/root_timestamps?latest=True&timestamp={value}",
             json.dumps({"node_ids": [root]})),
            ("POST", f"{seg_url}/is_latest_roots?timestamp={value}",
             json.dumps({"node_ids": [root]}))]:
        r = requests.request(method, url, data=data, headers=AUTH)
        assert r.status_code == 400, (url, r.status_code, r.text[:200])
        assert "time" in r.json()["message"]


def test_a_past_after_the_future_is_a_400(seg_url: str, history: dict) -> None:
    body = json.dumps({"root_ids": [history["merge_child"]]})
    for method, url, data in [
            ("POST", f"{seg_url}/lineage_graph_multiple?timestamp_past=2e9&timestamp_future=1e9",
             body),
            ("GET", f"{seg_url}/past_id_mapping?timestamp_past=2e9&timestamp_future=1e9", body),
            ("GET", f"{seg_url}/delta_roots?timestamp_past=2e9&timestamp_future=1e9", None)]:
        r = requests.request(method, url, data=data, headers=AUTH)
        assert r.status_code == 400, (url, r.status_code, r.text[:200])
        assert "after" in r.json()["message"]


def test_a_root_too_new_for_the_latest_timestamp_is_a_400(seg_url: str, history: dict) -> None:
    child = history["merge_child"]
    created = float(history["roots"].loc[child, "created"])
    r = requests.post(f"{seg_url}/root_timestamps?latest=True&timestamp={created - 10}",
                      data=json.dumps({"node_ids": [child]}), headers=AUTH)
    assert r.status_code == 400 and "did not exist yet" in r.json()["message"]


@pytest.mark.parametrize("value", ["[1,", "{\"a\": 1}", "[1.5]", "[true]", "[\"x\"]"])
def test_malformed_operation_ids_are_400(seg_url: str, value: str) -> None:
    r = requests.get(f"{seg_url}/operation_details", params={"operation_ids": value},
                     headers=AUTH)
    assert r.status_code == 400, (value, r.text[:200])
    assert "operation_ids" in r.json()["message"]


def test_an_unknown_operation_is_a_400_naming_it(seg_url: str) -> None:
    r = requests.get(f"{seg_url}/operation_details", params={"operation_ids": "[7]"},
                     headers=AUTH)
    assert r.status_code == 400 and "7" in r.json()["message"]


def test_huge_root_lists_are_refused(seg_url: str, history: dict) -> None:
    """More roots than one change-log request may walk is a 400 before any work."""
    from offline_cave.server.data.chunkedgraph import MAX_LOG_ROOTS

    ids = list(range(UNKNOWN_ROOT, UNKNOWN_ROOT + MAX_LOG_ROOTS + 1))
    r = requests.get(f"{seg_url}/tabular_change_log_many", headers=AUTH,
                     data=json.dumps({"root_ids": ids}))
    assert r.status_code == 400 and "split the request" in r.json()["message"]
    r = requests.get(f"{seg_url}/tabular_change_log_many", headers=AUTH,
                     data=json.dumps({"root_ids": [history["merge_child"]] * (MAX_LOG_ROOTS + 1)}))
    assert r.status_code == 200  # repeats are free


def test_id_lists_over_the_id_limit_are_refused(served: Served, seg_url: str,
                                                history: dict) -> None:
    """Every id list of these calls counts against ``serve --max-ids`` (lowered here)."""
    from dataclasses import replace

    ids = [history["merge_child"]] + list(range(UNKNOWN_ROOT, UNKNOWN_ROOT + 5))
    old = served.app_state.limits
    served.app_state.limits = replace(old, max_ids=3)
    try:
        for method, url, body in [
                ("POST", f"{seg_url}/root_timestamps?latest=False", {"node_ids": ids}),
                ("POST", f"{seg_url}/is_latest_roots", {"node_ids": ids}),
                ("POST", f"{seg_url}/lineage_graph_multiple", {"root_ids": ids}),
                ("GET", f"{seg_url}/past_id_mapping?timestamp_past=0", {"root_ids": ids}),
                ("GET", f"{seg_url}/tabular_change_log_many", {"root_ids": ids})]:
            r = requests.request(method, url, data=json.dumps(body), headers=AUTH)
            assert r.status_code == 400, (url, r.status_code, r.text[:200])
            assert "split the request" in r.json()["message"]
        r = requests.get(f"{seg_url}/operation_details", headers=AUTH,
                         params={"operation_ids": json.dumps(list(range(1, 10)))})
        assert r.status_code == 400 and "split the request" in r.json()["message"]
    finally:
        served.app_state.limits = old


def test_a_sample_without_an_operation_log_says_so(served: Served, seg_url: str,
                                                   history: dict, monkeypatch) -> None:
    seg = served.app_state.registry.by_table_id(seg_url.rsplit("/", 1)[1]).segments
    monkeypatch.setattr(seg, "_ops", None)
    monkeypatch.setattr(seg, "operations_path", served.ds_dir / "no-such-file.parquet")
    r = requests.get(f"{seg_url}/operation_details", params={"operation_ids": "[1]"},
                     headers=AUTH)
    assert r.status_code == 404 and "regenerate" in r.json()["message"]


def test_the_client_calls_fail_clearly_on_an_unknown_root(client) -> None:
    """Through caveclient: each history call on a root the graph never held is a 404 that
    names it (is_latest_roots answers False instead, as the real service)."""
    cg = client.chunkedgraph
    for call in (lambda: cg.get_tabular_change_log(UNKNOWN_ROOT),
                 lambda: cg.get_change_log(UNKNOWN_ROOT),
                 lambda: cg.get_root_timestamps([UNKNOWN_ROOT]),
                 lambda: cg.get_latest_roots(UNKNOWN_ROOT),
                 lambda: cg.suggest_latest_roots(UNKNOWN_ROOT),
                 lambda: cg.get_lineage_graph(UNKNOWN_ROOT),
                 lambda: cg.get_past_ids([UNKNOWN_ROOT])):
        with pytest.raises(requests.HTTPError) as err:
            call()
        assert err.value.response.status_code == 404
        assert str(UNKNOWN_ROOT) in err.value.response.json()["message"]
    assert list(cg.is_latest_roots([UNKNOWN_ROOT])) == [False]
