"""Acceptance tests: the unmodified caveclient and cloud-volume against the offline server.

Every expectation is computed independently from the parquet files of the sample (pandas on
the files, plus a pure-Python root-at-time lookup over the segment tables), never from the
server's own code paths.
"""

from __future__ import annotations

import datetime as dt
import logging
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

DATASTACK = "minnie65_public"

UTC = dt.UTC


# --------------------------------------------------------------------------------------------
# independent reference computations from the files


def read(served: Served, rel: str) -> pd.DataFrame:
    return pq.read_table(served.ds_dir / rel).to_pandas()


def table_df(served: Served, version: int, table: str) -> pd.DataFrame:
    return read(served, f"v{version}/{table}.parquet")


def versions_json(served: Served) -> list[dict]:
    import json

    return json.loads((served.ds_dir / layout.VERSIONS_JSON).read_text())


def version_ts(served: Served, version: int) -> float:
    for rec in versions_json(served):
        if rec["version"] == version:
            return dt.datetime.fromisoformat(rec["time_stamp"]).replace(tzinfo=UTC).timestamp()
    raise KeyError(version)


class RootOracle:
    """Root of a supervoxel at a time, computed with numpy from the segment files."""

    def __init__(self, served: Served) -> None:
        pieces = read(served, layout.PIECES_PARQUET).sort_values("supervoxel_id")
        self.sv = pieces.supervoxel_id.to_numpy()
        self.sv_piece = pieces.piece_id.to_numpy()
        roots = read(served, layout.ROOTS_PARQUET).sort_values("root_id")
        self.root_ids = roots.root_id.to_numpy()
        self.created = roots.created.to_numpy()
        self.expired = roots.expired.to_numpy()
        self.nucleus = roots.nucleus_id.to_numpy()
        rp = read(served, layout.ROOT_PIECES_PARQUET).sort_values(["piece_id", "root_id"])
        self.rp_piece = rp.piece_id.to_numpy()
        self.rp_root = rp.root_id.to_numpy()
        self.lineage = read(served, layout.LINEAGE_PARQUET)

    def _root_pos(self, roots) -> np.ndarray:
        return np.searchsorted(self.root_ids, np.asarray(roots, dtype=np.int64))

    def root(self, sv: int, t: float) -> int:
        return int(self.roots_at([sv], t)[0])

    def roots_at(self, svs, t: float) -> np.ndarray:
        svs = np.asarray(svs, dtype=np.int64)
        out = np.zeros(len(svs), dtype=np.int64)
        pos = np.clip(np.searchsorted(self.sv, svs), 0, len(self.sv) - 1)
        known = (self.sv[pos] == svs) & (svs != 0)
        for k in np.nonzero(known)[0]:
            piece = self.sv_piece[pos[k]]
            lo, hi = np.searchsorted(self.rp_piece, [piece, piece + 1])
            cand = self.rp_root[lo:hi]
            cp = self._root_pos(cand)
            ok = (self.created[cp] <= t) & (t < self.expired[cp])
            if ok.any():
                out[k] = cand[ok].max()
        return out

    def leaves(self, root: int) -> set[int]:
        pieces = set(self.rp_piece[self.rp_root == root].tolist())
        return {int(s) for s in self.sv[np.isin(self.sv_piece, list(pieces))]}

    def nucleus_of(self, root: int) -> int:
        return int(self.nucleus[self._root_pos([root])[0]])


@pytest.fixture(scope="module")
def oracle(served: Served) -> RootOracle:
    return RootOracle(served)


@pytest.fixture(scope="module")
def edits(served: Served, oracle: RootOracle) -> dict:
    """A split (parent with two children) and a merge (child with two parents), both made
    between the first and the last materialized version, preferring edits of cells."""
    mats = materialized(served)
    t0, t1 = version_ts(served, mats[0]), version_ts(served, mats[-1])
    lin = oracle.lineage[(oracle.lineage.timestamp > t0) & (oracle.lineage.timestamp < t1)]
    nuc_roots = set(table_df(served, mats[0], "nucleus_detection_v0").pt_root_id)
    by_parent = lin.groupby("parent_root_id").child_root_id.apply(list)
    by_child = lin.groupby("child_root_id").parent_root_id.apply(list)
    splits = [p for p, c in by_parent.items() if len(c) == 2]
    first_edit = lin.groupby("parent_root_id").timestamp.min()
    splits.sort(key=lambda p: (p not in nuc_roots, first_edit[p]))
    merges = [c for c, p in by_child.items() if len(p) == 2]
    assert splits and merges, "the sample needs a split and a merge between its versions"
    split_parent, merge_child = int(splits[0]), int(merges[0])
    return {"split_parent": split_parent,
            "split_children": sorted(int(c) for c in by_parent[split_parent]),
            "merge_child": merge_child,
            "merge_parents": sorted(int(p) for p in by_child[merge_child]),
            "split_time": float(lin[lin.parent_root_id == split_parent].timestamp.iloc[0]),
            "merge_time": float(lin[lin.child_root_id == merge_child].timestamp.iloc[0]),
            "split_parent_is_cell": split_parent in nuc_roots}


@pytest.fixture(scope="module")
def cells(served: Served, client) -> pd.DataFrame:
    """Nucleus rows whose root carries a skeletonized cell, most input synapses first."""
    v = client.materialize.version
    nuc = table_df(served, v, "nucleus_detection_v0")
    roots = read(served, layout.ROOTS_PARQUET)
    skeletonized = set(read(served, layout.SKELETON_CELLS_PARQUET).nucleus_id)
    with_cell = set(roots[roots.nucleus_id.isin(skeletonized)].root_id)
    rows = nuc[nuc.pt_root_id.isin(with_cell)].drop_duplicates("pt_root_id", keep=False)
    posts = pq.read_table(served.ds_dir / f"v{v}" / "synapses_pni_2.parquet",
                          columns=["post_pt_root_id"]).column(0).to_pandas().value_counts()
    rows = rows.assign(n_inputs=rows.pt_root_id.map(posts).fillna(0))
    return rows.sort_values("n_inputs", ascending=False).head(20).reset_index(drop=True)


def materialized(served: Served) -> list[int]:
    return [r["version"] for r in versions_json(served) if r.get("materialized")]


# --------------------------------------------------------------------------------------------
# info and schema


def test_info_points_every_service_here(served: Served, client) -> None:
    info = client.info.get_datastack_info()
    assert info["local_server"] == served.url
    assert client.info.local_server() == served.url
    pcg = info["segmentation_source"].split("/")[-1]
    assert info["segmentation_source"] == f"graphene://{served.url}/segmentation/table/{pcg}"
    assert client.chunkedgraph.table_name == pcg
    assert info["skeleton_source"].startswith(f"precomputed://{served.url}/skeletoncache/")
    assert client.info.image_source().startswith(f"precomputed://{served.url}/")
    np.testing.assert_array_equal(client.info.viewer_resolution(), [4.0, 4.0, 40.0])
    assert DATASTACK in client.info.get_datastacks()
    assert info["synapse_table"] == "synapses_pni_2"
    assert info["aligned_volume"]["name"] == "minnie65_phase3"


def test_unknown_datastack_is_a_404(served: Served) -> None:
    from caveclient import CAVEclient

    with pytest.raises(requests.HTTPError, match="404"):
        CAVEclient("minnie65_publik", server_address=served.url, write_server_cache=False)
    r = requests.get(f"{served.url}/info/api/v2/datastack/full/minnie65_publik", timeout=10,
                     headers=AUTH)
    assert r.status_code == 404
    assert "did you mean 'minnie65_public'" in r.json()["message"]


def test_schema_service(served: Served, client) -> None:
    names = client.schema.get_schemas()
    import json

    tables = json.loads((served.ds_dir / layout.TABLES_JSON).read_text())
    for meta in tables.values():
        assert meta["schema"] in names
    syn = client.schema.schema_definition("synapse")
    props = syn["definitions"][syn["$ref"].split("/")[-1]]["properties"]
    assert props["pre_pt"]["$ref"] == "#/definitions/BoundSpatialPoint"
    assert props["ctr_pt"]["$ref"] == "#/definitions/SpatialPoint"
    assert props["size"] == {"type": "number", "format": "float"}
    everything = client.schema.schema_definition_all()
    assert set(names) == set(everything)
    multi = client.schema.schema_definition_multi(["synapse", "nucleus_detection"])
    assert set(multi) == {"synapse", "nucleus_detection"}


# --------------------------------------------------------------------------------------------
# materialize: versions and metadata


def test_versions_and_timestamps(served: Served, client) -> None:
    recs = versions_json(served)
    valid = sorted(r["version"] for r in recs if r["valid"])
    assert sorted(client.materialize.get_versions()) == valid
    assert sorted(client.materialize.get_versions(expired=True)) == sorted(r["version"] for r in recs)
    assert client.materialize.version == max(valid)
    for v in materialized(served):
        meta = client.materialize.get_version_metadata(v)
        assert meta["time_stamp"].tzinfo is not None
        assert meta["time_stamp"].timestamp() == pytest.approx(version_ts(served, v), abs=1e-3)
        assert client.materialize.get_timestamp(v) == meta["time_stamp"]
    listed = client.materialize.get_versions_metadata()
    assert sorted(m["version"] for m in listed) == valid
    assert client.materialize.server_version is not None
    assert str(client.materialize.server_version) >= "5.13.0"
    assert client.materialize.api_version == 3


def test_tables_follow_versions(served: Served, client) -> None:
    import json

    tables = json.loads((served.ds_dir / layout.TABLES_JSON).read_text())
    for v in [r["version"] for r in versions_json(served)]:
        expected = sorted(t for t, m in tables.items()
                          if (m.get("introduced") or 0) <= v
                          and (m.get("removed") is None or v < m["removed"]))
        assert sorted(client.materialize.get_tables(version=v)) == expected


def test_table_metadata_and_counts(served: Served, client) -> None:
    v = client.materialize.version
    meta = client.materialize.get_table_metadata("aibs_metamodel_celltypes_v661")
    assert meta["voxel_resolution"] == [4.0, 4.0, 40.0]
    assert meta["reference_table"] == "nucleus_detection_v0"
    assert meta["schema"] == "cell_type_reference"
    for table in client.materialize.get_tables():
        n = len(table_df(served, v, table))
        assert client.materialize.get_annotation_count(table) == n
    all_meta = client.materialize.get_tables_metadata()
    assert {m["table_name"] for m in all_meta} == set(client.materialize.get_tables())


def test_unknown_table_suggests_the_close_name(served: Served, client) -> None:
    v = client.materialize.version
    with pytest.raises(requests.HTTPError) as err:
        client.materialize.query_table("synapse_pni_2")
    assert err.value.response.status_code == 404
    msg = err.value.response.json()["message"]
    assert msg == (f"table 'synapse_pni_2' does not exist in {DATASTACK} version {v}; "
                   f"did you mean 'synapses_pni_2'?")


# --------------------------------------------------------------------------------------------
# materialize: queries


def test_query_table_matches_parquet(served: Served, client) -> None:
    v = client.materialize.version
    expected = table_df(served, v, "nucleus_detection_v0")
    df = client.materialize.query_table("nucleus_detection_v0")
    assert list(df.columns) == ["id", "created", "superceded_id", "valid", "volume",
                                "pt_supervoxel_id", "pt_root_id", "pt_position",
                                "bb_start_position", "bb_end_position"]
    assert len(df) == len(expected)
    for col in ("id", "pt_root_id", "pt_supervoxel_id"):
        assert df[col].dtype == np.int64
    assert df.valid.dtype == bool
    assert str(df.created.dt.tz) == "UTC"
    df = df.set_index("id").loc[expected.id]
    np.testing.assert_array_equal(np.stack(df.pt_position.values),
                                  expected[["pt_position_x", "pt_position_y",
                                            "pt_position_z"]].values)
    np.testing.assert_allclose(df.volume.values, expected.volume.values)
    assert df.attrs["table_voxel_resolution"] == [4.0, 4.0, 40.0]


@pytest.mark.parametrize("kind", ["in", "notin", "equal", "greater", "less", "greater_equal",
                                  "less_equal", "spatial", "regex"])
def test_every_filter_kind(served: Served, client, kind: str) -> None:
    v = client.materialize.version
    syn = table_df(served, v, "synapses_pni_2")
    nuc = table_df(served, v, "nucleus_detection_v0")
    roots = sorted(set(syn.post_pt_root_id) - {0})[:3]
    if kind == "in":
        df = client.materialize.query_table("synapses_pni_2",
                                            filter_in_dict={"post_pt_root_id": roots})
        exp = syn[syn.post_pt_root_id.isin(roots)]
    elif kind == "notin":
        sub = syn[syn.post_pt_root_id.isin(roots)]
        pres = sorted(set(sub.pre_pt_root_id))[:5]
        df = client.materialize.query_table("synapses_pni_2",
                                            filter_in_dict={"post_pt_root_id": roots},
                                            filter_out_dict={"pre_pt_root_id": pres})
        exp = sub[~sub.pre_pt_root_id.isin(pres)]
        assert len(exp) < len(sub)
    elif kind == "equal":
        df = client.materialize.query_table("synapses_pni_2",
                                            filter_equal_dict={"post_pt_root_id": roots[0]})
        exp = syn[syn.post_pt_root_id == roots[0]]
    elif kind in ("greater", "less", "greater_equal", "less_equal"):
        op = {"greater": "__gt__", "less": "__lt__", "greater_equal": "__ge__",
              "less_equal": "__le__"}[kind]
        sub = syn[syn.post_pt_root_id.isin(roots)]
        size_mid = int(sub["size"].median())
        df = client.materialize.query_table("synapses_pni_2",
                                            filter_in_dict={"post_pt_root_id": roots},
                                            **{f"filter_{kind}_dict": {"size": size_mid}})
        exp = sub[getattr(sub["size"], op)(size_mid)]
        vol = float(nuc.volume.median())
        by_volume = client.materialize.query_table("nucleus_detection_v0",
                                                   **{f"filter_{kind}_dict": {"volume": vol}})
        assert sorted(by_volume.id) == sorted(nuc[getattr(nuc.volume, op)(vol)].id)
    elif kind == "spatial":
        pos = nuc[["pt_position_x", "pt_position_y", "pt_position_z"]].values
        lo = np.percentile(pos, 20, axis=0).astype(int)
        hi = np.percentile(pos, 80, axis=0).astype(int) + 1
        df = client.materialize.query_table(
            "nucleus_detection_v0",
            filter_spatial_dict={"pt_position": [lo.tolist(), hi.tolist()]})
        inside = np.all((pos >= lo) & (pos < hi), axis=1)
        exp = nuc[inside]
        assert 0 < len(exp) < len(nuc)
    else:
        df = client.materialize.query_table("aibs_metamodel_celltypes_v661",
                                            merge_reference=False,
                                            filter_regex_dict={"cell_type": "^[0-9]+P"})
        ct = table_df(served, v, "aibs_metamodel_celltypes_v661")
        exp = ct[ct.cell_type.str.match(r"^[0-9]+P")]
    assert 0 < len(exp)
    assert sorted(df.id) == sorted(exp.id)


def test_select_limit_offset_and_resolution(served: Served, client) -> None:
    v = client.materialize.version
    nuc = table_df(served, v, "nucleus_detection_v0")
    df = client.materialize.query_table("nucleus_detection_v0",
                                        select_columns=["id", "pt_root_id", "pt_position"],
                                        limit=4, offset=2, split_positions=True,
                                        desired_resolution=[1, 1, 1])
    assert list(df.columns) == ["id", "pt_root_id", "pt_position_x", "pt_position_y",
                                "pt_position_z"]
    assert list(df.id) == list(nuc.id.iloc[2:6])
    assert df.pt_position_x.dtype == np.float64
    np.testing.assert_allclose(df.pt_position_x.values, nuc.pt_position_x.iloc[2:6] * 4.0)
    np.testing.assert_allclose(df.pt_position_z.values, nuc.pt_position_z.iloc[2:6] * 40.0)
    assert df.attrs["dataframe_resolution"] == [1.0, 1.0, 1.0]


def test_reference_table_join_both_suffix_orders(served: Served, client) -> None:
    v = client.materialize.version
    ct = table_df(served, v, "aibs_metamodel_celltypes_v661")
    nuc = table_df(served, v, "nucleus_detection_v0").set_index("id")
    df = client.materialize.query_table("aibs_metamodel_celltypes_v661")
    assert list(df.columns[:7]) == ["id", "created", "superceded_id", "valid", "target_id",
                                    "classification_system", "cell_type"]
    assert {"id_ref", "valid_ref", "pt_root_id", "pt_position"} <= set(df.columns)
    assert len(df) == len(ct)
    assert (df.target_id == df.id_ref).all()
    np.testing.assert_array_equal(df.pt_root_id.values, nuc.loc[df.target_id, "pt_root_id"].values)
    plain = client.materialize.query_table("aibs_metamodel_celltypes_v661", merge_reference=False)
    assert list(plain.columns) == list(ct.columns)

    # the table manager swaps the suffixes: nucleus columns unsuffixed and first
    tm = client.materialize.tables.aibs_metamodel_celltypes_v661(cell_type="23P").query()
    assert list(tm.columns[:3]) == ["id", "created", "superceded_id"]
    assert {"id_ref", "target_id", "cell_type", "pt_position"} <= set(tm.columns)
    assert (tm.id == tm.target_id).all()
    assert set(tm.cell_type) == {"23P"}
    assert len(tm) == (ct.cell_type == "23P").sum()
    root = int(tm.pt_root_id.iloc[0])
    by_root = client.materialize.tables.aibs_metamodel_celltypes_v661(pt_root_id=root).query()
    assert set(by_root.pt_root_id) == {root}

    joined = client.materialize.join_query(
        [["aibs_metamodel_celltypes_v661", "target_id"], ["nucleus_detection_v0", "id"]],
        suffixes={"aibs_metamodel_celltypes_v661": "_ct", "nucleus_detection_v0": "_nuc"},
        filter_in_dict={"aibs_metamodel_celltypes_v661": {"cell_type": ["BC", "MC"]}})
    assert {"id_ct", "id_nuc", "valid_ct", "valid_nuc"} <= set(joined.columns)
    assert len(joined) == ct.cell_type.isin(["BC", "MC"]).sum()


def test_reference_point_table_keeps_both_points(served: Served, client) -> None:
    df = client.materialize.query_table("nucleus_alternative_points")
    assert {"pt_position", "pt_position_ref", "pt_root_id", "pt_root_id_ref"} <= set(df.columns)


def test_table_manager_fields_and_metadata(client) -> None:
    tables = client.materialize.tables
    assert "synapses_pni_2" in tables.table_names
    fields = tables.synapses_pni_2.fields
    assert {"pre_pt_root_id", "post_pt_root_id", "size", "ctr_pt_position_bbox"} <= set(fields)
    assert "cell_type" in tables.aibs_metamodel_celltypes_v661.fields
    q = tables.synapses_pni_2(size={">": 1000}).query(limit=5)
    assert (q["size"] > 1000).all() and len(q) <= 5


def test_synapse_query(served: Served, client, cells: pd.DataFrame) -> None:
    v = client.materialize.version
    syn = table_df(served, v, "synapses_pni_2")
    root = int(cells.pt_root_id.iloc[0])
    df = client.materialize.synapse_query(post_ids=root)
    exp = syn[(syn.post_pt_root_id == root) & (syn.pre_pt_root_id != root)]
    assert sorted(df.id) == sorted(exp.id)
    assert list(df.columns) == ["id", "created", "superceded_id", "valid", "size",
                                "pre_pt_supervoxel_id", "pre_pt_root_id",
                                "post_pt_supervoxel_id", "post_pt_root_id", "pre_pt_position",
                                "post_pt_position", "ctr_pt_position"]
    pres = sorted(set(exp.pre_pt_root_id))[:2]
    both = client.materialize.synapse_query(pre_ids=pres, post_ids=[root])
    assert sorted(both.id) == sorted(exp[exp.pre_pt_root_id.isin(pres)].id)
    pos = np.stack(df.post_pt_position.values)
    lo, hi = pos.min(axis=0), pos.max(axis=0) + 1
    boxed = client.materialize.synapse_query(post_ids=root, bounding_box=[lo, hi])
    assert sorted(boxed.id) == sorted(df.id)
    out = client.materialize.synapse_query(pre_ids=root)
    assert sorted(out.id) == sorted(syn[(syn.pre_pt_root_id == root)
                                        & (syn.post_pt_root_id != root)].id)


def test_views(served: Served, client) -> None:
    v = client.materialize.version
    view = table_df(served, v, "nucleus_detection_lookup_v1")
    views = client.materialize.get_views()
    assert isinstance(views, dict) and "nucleus_detection_lookup_v1" in views
    schema = client.materialize.get_view_schema("nucleus_detection_lookup_v1")
    assert schema["pt_position"]["type"] == "SpatialPoint"
    df = client.materialize.query_view("nucleus_detection_lookup_v1")
    assert len(df) == len(view) and "pt_position" in df.columns
    meta = client.materialize.get_view_metadata("nucleus_detection_lookup_v1")
    assert meta["live_compatible"] is True
    root = int(view.pt_root_id[view.pt_root_id > 0].iloc[0])
    vm = client.materialize.views.nucleus_detection_lookup_v1(pt_root_id=root).query()
    assert set(vm.pt_root_id) == {root}
    scaled = client.materialize.query_view("nucleus_detection_lookup_v1",
                                           desired_resolution=[4, 4, 40], split_positions=True)
    np.testing.assert_allclose(scaled.pt_position_x.values, view.pt_position_x.values)


def test_query_old_version_and_versions_differ(served: Served, client, oracle: RootOracle,
                                               edits: dict) -> None:
    old, new = materialized(served)[0], materialized(served)[-1]
    a = client.materialize.query_table("nucleus_detection_v0", materialization_version=old)
    b = client.materialize.query_table("nucleus_detection_v0", materialization_version=new)
    if edits["split_parent_is_cell"]:
        assert edits["split_parent"] in set(a.pt_root_id)
    assert edits["split_parent"] not in set(b.pt_root_id)
    for df, ver in ((a, old), (b, new)):
        t = version_ts(served, ver)
        np.testing.assert_array_equal(oracle.roots_at(df.pt_supervoxel_id, t), df.pt_root_id)


def test_unmaterialized_version_uses_roots_of_its_time(served: Served, oracle: RootOracle,
                                                      edits: dict) -> None:
    from caveclient import CAVEclient

    mats = set(materialized(served))
    listed = [r["version"] for r in versions_json(served) if r["version"] not in mats
              and min(mats) < r["version"] < max(mats)
              and version_ts(served, r["version"]) > edits["split_time"]]
    assert listed, "the sample should list an unmaterialized version after the first edit"
    ver = listed[0]
    c = CAVEclient(DATASTACK, version=ver)
    t = version_ts(served, ver)
    # the rows come from the previous materialization, whose stored roots predate the split
    stored = table_df(served, max(v for v in mats if v < ver), "synapses_pni_2")
    parent = edits["split_parent"]
    touched = stored[(stored.post_pt_root_id == parent) | (stored.pre_pt_root_id == parent)]
    assert len(touched) > 0, "pick a split whose parent has synapses"
    df = c.materialize.query_table("synapses_pni_2",
                                   filter_in_dict={"id": touched.id.tolist()[:5000]})
    assert len(df) == min(len(touched), 5000)
    np.testing.assert_array_equal(oracle.roots_at(df.post_pt_supervoxel_id, t),
                                  df.post_pt_root_id)
    np.testing.assert_array_equal(oracle.roots_at(df.pre_pt_supervoxel_id, t),
                                  df.pre_pt_root_id)
    assert parent not in set(df.post_pt_root_id) | set(df.pre_pt_root_id)
    nuc = c.materialize.query_table("nucleus_detection_v0")
    np.testing.assert_array_equal(oracle.roots_at(nuc.pt_supervoxel_id, t), nuc.pt_root_id)


def test_live_query_after_the_edits(served: Served, client, oracle: RootOracle,
                                    edits: dict) -> None:
    ts = dt.datetime.fromtimestamp(edits["merge_time"] + 3600, UTC)
    child = edits["merge_child"]
    t = ts.timestamp()
    assert oracle.root(min(oracle.leaves(child)), t) == child  # still current an hour later
    df = client.materialize.query_table("synapses_pni_2", timestamp=ts,
                                        filter_in_dict={"post_pt_root_id": [child]})
    syn = pq.read_table(served.ds_dir / f"v{materialized(served)[-1]}" / "synapses_pni_2.parquet",
                        columns=["id", "post_pt_supervoxel_id"]).to_pandas()
    exp = syn[syn.post_pt_supervoxel_id.isin(oracle.leaves(child))].id
    assert sorted(df.id) == sorted(exp) and len(exp) > 0
    assert set(df.post_pt_root_id) == {child}

    live = client.materialize.live_live_query(
        "synapses_pni_2", ts, filter_in_dict={"synapses_pni_2": {"post_pt_root_id": [child]}})
    assert sorted(live.id) == sorted(exp)
    assert set(live.post_pt_root_id) == {child}
    nuc = client.materialize.live_live_query("nucleus_detection_v0", ts)
    np.testing.assert_array_equal(oracle.roots_at(nuc.pt_supervoxel_id, t), nuc.pt_root_id)


def test_live_query_on_reference_table_through_manager(client, edits: dict) -> None:
    ts = dt.datetime.fromtimestamp(edits["merge_time"] + 60, UTC)
    df = client.materialize.tables.aibs_metamodel_celltypes_v661().live_query(ts)
    assert {"cell_type", "pt_root_id", "id_ref"} <= set(df.columns)
    assert edits["split_parent"] not in set(df.pt_root_id)


def test_counts_random_sample_and_json(client) -> None:
    n = client.materialize.get_annotation_count("synapses_pni_2")
    counted = client.materialize.query_table("synapses_pni_2", get_counts=True)
    assert int(counted.iloc[0, 0]) == n
    sample = client.materialize.query_table("synapses_pni_2", random_sample=7)
    assert 0 < len(sample) <= 7
    rows = client.materialize.query_table("nucleus_detection_v0", return_df=False, limit=2)
    assert isinstance(rows, list) and len(rows) == 2 and "pt_root_id" in rows[0]


def test_row_cap_warns_and_truncates(client, monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    from offline_cave.server.routes import materialize as mat

    monkeypatch.setattr(mat, "QUERY_ROW_LIMIT", 5)
    with caplog.at_level(logging.WARNING, logger="caveclient.base"):
        df = client.materialize.query_table("nucleus_detection_v0")
    assert len(df) == 5
    assert any("truncated to 5 rows" in r.getMessage() for r in caplog.records)


def test_notice_text_is_logged(client, caplog: pytest.LogCaptureFixture) -> None:
    import json

    with caplog.at_level(logging.WARNING, logger="caveclient.base"):
        client.materialize.query_table("aibs_metamodel_celltypes_v661", limit=1)
    meta = client.materialize.get_table_metadata("aibs_metamodel_celltypes_v661")
    if meta.get("notice_text"):
        assert any(meta["notice_text"] in r.getMessage() for r in caplog.records)
    json.dumps(meta, default=str)


def test_unique_string_values(client) -> None:
    vals = client.materialize.get_unique_string_values("aibs_metamodel_celltypes_v661")
    assert "23P" in vals["cell_type"]


# --------------------------------------------------------------------------------------------
# chunkedgraph and l2cache


def test_roots_agree_with_tables(served: Served, client, oracle: RootOracle) -> None:
    for ver in materialized(served):
        nuc = table_df(served, ver, "nucleus_detection_v0")
        ts = client.materialize.get_timestamp(ver)
        roots = client.chunkedgraph.get_roots(nuc.pt_supervoxel_id.values, timestamp=ts)
        np.testing.assert_array_equal(roots, nuc.pt_root_id.values)
        sv = int(nuc.pt_supervoxel_id[nuc.pt_supervoxel_id > 0].iloc[0])
        assert client.chunkedgraph.get_root_id(sv, timestamp=ts) == oracle.root(sv, ts.timestamp())
    empty = client.chunkedgraph.get_roots(np.array([], dtype=np.uint64))
    assert len(empty) == 0


def test_root_history(client, oracle: RootOracle, edits: dict) -> None:
    cg = client.chunkedgraph
    parent, children = edits["split_parent"], edits["split_children"]
    assert list(cg.is_latest_roots([parent] + children)) == [False, True, True]
    ts = cg.get_root_timestamps(children)
    assert all(abs(t.timestamp() - edits["split_time"]) < 1e-3 for t in ts)
    latest = cg.get_root_timestamps([parent], latest=True)
    assert abs(latest[0].timestamp() - edits["split_time"]) < 1
    assert sorted(cg.get_latest_roots(parent)) == children
    graph = cg.get_lineage_graph(children[0], as_nx_graph=True)
    assert parent in graph.nodes and graph.has_edge(parent, children[0])
    merged = edits["merge_child"]
    past_t = dt.datetime.fromtimestamp(edits["merge_time"] - 10, UTC)
    past = cg.get_past_ids([merged], timestamp_past=past_t)
    assert sorted(past["past_id_map"][merged]) == edits["merge_parents"]
    assert cg.is_valid_nodes([merged, 12345])[0]
    assert not cg.is_valid_nodes([merged, 12345])[1]
    old, new = cg.get_delta_roots(dt.datetime.fromtimestamp(edits["split_time"] - 1, UTC),
                                  dt.datetime.fromtimestamp(edits["split_time"] + 1, UTC))
    assert parent in set(old) and set(children) <= set(new)
    assert cg.get_oldest_timestamp().timestamp() <= edits["split_time"]
    assert cg.suggest_latest_roots(parent) in children


def test_leaves(client, oracle: RootOracle, edits: dict) -> None:
    root = edits["merge_child"]
    leaves = client.chunkedgraph.get_leaves(root)
    assert set(int(x) for x in leaves) == oracle.leaves(root)
    many = client.chunkedgraph.get_leaves_many(edits["split_children"])
    for r in edits["split_children"]:
        assert set(int(x) for x in many[r]) == oracle.leaves(r)


def test_segmentation_info_and_l2cache(client) -> None:
    info = client.chunkedgraph.segmentation_info
    assert info["graph"]["n_layers"] == layout.N_LAYERS
    np.testing.assert_array_equal(client.chunkedgraph.base_resolution, [8, 8, 40])
    assert client.l2cache.has_cache()


# --------------------------------------------------------------------------------------------
# skeletons and meshes


def skeleton_rows(served: Served, root: int) -> pd.DataFrame:
    roots = read(served, layout.ROOTS_PARQUET).set_index("root_id")
    nucleus = int(roots.loc[root, "nucleus_id"])
    sk = read(served, layout.SKELETONS_PARQUET)
    return sk[sk.nucleus_id == nucleus].sort_values("node").reset_index(drop=True)


def test_skeleton_dict_and_swc(served: Served, client, cells: pd.DataFrame) -> None:
    root = int(cells.pt_root_id.iloc[0])
    rows = skeleton_rows(served, root)
    sk = client.skeleton.get_skeleton(root, output_format="dict")
    assert sk["vertices"].shape == (len(rows), 3)
    np.testing.assert_allclose(sk["vertices"], rows[["x", "y", "z"]].values, rtol=1e-6)
    np.testing.assert_allclose(sk["radius"], rows.radius.values, rtol=1e-6)
    np.testing.assert_array_equal(sk["compartment"], rows.compartment.values)
    assert sk["edges"].shape == (len(rows) - 1, 2)
    assert sk["meta"]["root_id"] == root
    swc = client.skeleton.get_skeleton(root, output_format="swc")
    assert list(swc.columns) == ["id", "type", "x", "y", "z", "radius", "parent"]
    np.testing.assert_allclose(swc.x.values, rows.x.values / 1000, atol=1e-3)
    np.testing.assert_allclose(swc.radius.values, rows.radius.values / 1000, atol=1e-3)
    assert swc.parent.iloc[0] == -1
    assert set(swc.type) <= {1, 2, 3, 4}


def test_bulk_skeletons_skip_fragments(served: Served, client, cells: pd.DataFrame) -> None:
    roots = read(served, layout.ROOTS_PARQUET)
    fragment = int(roots[(roots.nucleus_id == 0) & np.isinf(roots.expired)].root_id.iloc[0])
    wanted = [int(r) for r in cells.pt_root_id.iloc[:2]]
    bulk = client.skeleton.get_bulk_skeletons(wanted + [fragment], output_format="dict")
    assert set(bulk) == {str(r) for r in wanted}
    for r in wanted:
        assert len(bulk[str(r)]["vertices"]) == len(skeleton_rows(served, r))
    swc = client.skeleton.get_bulk_skeletons(wanted, output_format="swc")
    assert len(swc[str(wanted[0])]) == len(skeleton_rows(served, wanted[0]))
    with pytest.raises(requests.HTTPError, match="404"):
        client.skeleton.get_skeleton(fragment)


def test_graphene_and_precomputed_meshes(served: Served, client, cells: pd.DataFrame) -> None:
    from cloudvolume import CloudVolume

    root = int(cells.pt_root_id.iloc[1])
    rows = skeleton_rows(served, root)
    cv = CloudVolume(client.info.segmentation_source(), use_https=True, progress=False)
    meshes = cv.mesh.get(root)
    mesh = meshes[root]
    assert len(mesh.vertices) > 8 * (len(rows) - 1)
    assert len(mesh.faces) > 0 and mesh.faces.max() < len(mesh.vertices)
    lo = rows[["x", "y", "z"]].min().values - rows.radius.max() * 1.01
    hi = rows[["x", "y", "z"]].max().values + rows.radius.max() * 1.01
    assert np.all(mesh.vertices >= lo) and np.all(mesh.vertices <= hi)
    cached = list((served.ds_dir / layout.CACHE_DIR).glob("meshes-v*/*.frag"))
    assert cached
    plain = CloudVolume(f"precomputed://{served.url}/seg/{DATASTACK}", use_https=True,
                        progress=False)
    fused = plain.mesh.get(root)
    assert len(fused.vertices) == len(mesh.vertices)
    cv2 = client.info.segmentation_cloudvolume(progress=False)
    assert root in cv2.mesh.get(root)


def test_a_damaged_cached_mesh_is_rebuilt(served: Served, client, cells: pd.DataFrame) -> None:
    from cloudvolume import CloudVolume

    root = int(cells.pt_root_id.iloc[2])
    cv = CloudVolume(client.info.segmentation_source(), use_https=True, progress=False)
    first = cv.mesh.get(root)[root]
    nucleus = int(read(served, layout.ROOTS_PARQUET).set_index("root_id").loc[root, "nucleus_id"])
    from offline_cave.server.data.artefacts import mesh_cache_path

    cached = mesh_cache_path(served.ds_dir, nucleus)
    good = cached.read_bytes()
    cached.write_bytes(good[: len(good) // 2])  # as if the disk had filled up while writing
    again = CloudVolume(client.info.segmentation_source(), use_https=True, progress=False)
    second = again.mesh.get(root)[root]
    np.testing.assert_array_equal(second.vertices, first.vertices)
    np.testing.assert_array_equal(second.faces, first.faces)
    assert cached.read_bytes() == good, "the cache file is repaired"


# --------------------------------------------------------------------------------------------
# annotation engine (read-only)


def test_annotation_engine(served: Served, client) -> None:
    ann = client.annotation
    tables = ann.get_tables()
    assert "nucleus_detection_v0" in tables
    meta = ann.get_table_metadata("nucleus_detection_v0")
    assert meta["voxel_resolution"] == [4.0, 4.0, 40.0]
    v = max(materialized(served))
    nuc = table_df(served, v, "nucleus_detection_v0")
    assert ann.get_annotation_count("nucleus_detection_v0") == len(nuc)
    ids = [int(i) for i in nuc.id.iloc[:2]]
    rows = ann.get_annotation("nucleus_detection_v0", ids)
    assert sorted(r["id"] for r in rows) == sorted(ids)
    assert len(rows[0]["pt_position"]) == 3


def test_precomputed_skeletons_through_cloudvolume(served: Served, client,
                                                   cells: pd.DataFrame) -> None:
    from cloudvolume import CloudVolume

    root = int(cells.pt_root_id.iloc[0])
    rows = skeleton_rows(served, root)
    for source in (f"precomputed://{served.url}/seg/{DATASTACK}",
                   client.info.segmentation_source()):
        cv = CloudVolume(source, use_https=True, progress=False)
        sk = cv.skeleton.get(root)
        np.testing.assert_allclose(sk.vertices, rows[["x", "y", "z"]].values, rtol=1e-6)
        np.testing.assert_allclose(sk.radius, rows.radius.values, rtol=1e-6)
        np.testing.assert_array_equal(sk.compartment, rows.compartment.values)
        assert len(sk.edges) == len(rows) - 1
    assert client.skeleton.skeletons_exist(root_ids=[root, 5]) == {root: True, 5: False}


def test_reference_table_live_query_and_change_log(client, edits: dict) -> None:
    ts = dt.datetime.fromtimestamp(edits["merge_time"] + 60, UTC)
    df = client.materialize.query_table("aibs_metamodel_celltypes_v661", timestamp=ts)
    assert {"cell_type", "id_ref", "pt_root_id"} <= set(df.columns)
    assert edits["split_parent"] not in set(df.pt_root_id)
    log = client.chunkedgraph.get_change_log(edits["split_children"][0])
    assert edits["split_parent"] in log["past_ids"]
