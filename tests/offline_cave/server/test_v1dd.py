"""The ``v1dd_public`` sample answers the calls the minnie tests make, through the real clients.

Runs on the generated default sample (``OFFLINE_CAVE_DATA``, default ``sample-data``, made by
``make sample`` before the unit tests) rather than on the tiny fixture datastack, because the
V1DD specifics live in the generator's parameters: version 1196 only, 9 x 9 x 45 nm voxels, and a
synapse table documented at 9.7 x 9.7 x 45 nm. Expected values are read from the sample's files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests

from offline_cave.contract import layout
from offline_cave.generator.pipeline import ensure_sample
from tests.fixtures.paths import REPO_ROOT
from tests.fixtures.server_harness import serving_sample

DATA = Path(os.environ.get("OFFLINE_CAVE_DATA", REPO_ROOT / "sample-data"))
DATASTACK = "v1dd_public"
VERSION = 1196


@pytest.fixture(scope="module")
def ds_dir() -> Path:
    return ensure_sample(DATA, DATASTACK, deep=False, log=lambda *_: None)


@pytest.fixture(scope="module")
def served(ds_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving_sample(ds_dir, tmp_path_factory.mktemp("home-v1dd")) as url:
        yield url


@pytest.fixture(scope="module")
def client(served: str):
    from caveclient import CAVEclient

    return CAVEclient(DATASTACK)


def table(ds_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(ds_dir / f"v{VERSION}" / f"{name}.parquet")


@pytest.fixture(scope="module")
def cell(ds_dir: Path) -> dict:
    """The skeletonized single-cell root with the most input synapses, by query.

    A root maps to its cell through ``roots.parquet`` ``nucleus_id`` (for a merged two-soma
    object, the smaller nucleus id); only roots whose cell is the nucleus row itself are used.
    """
    roots = pd.read_parquet(ds_dir / layout.ROOTS_PARQUET)
    skeletonized = set(pd.read_parquet(ds_dir / layout.SKELETON_CELLS_PARQUET).nucleus_id)
    nuc = table(ds_dir, "nucleus_detection_v0").merge(
        roots[["root_id", "nucleus_id"]], left_on="pt_root_id", right_on="root_id")
    nuc = nuc[(nuc.nucleus_id == nuc.id) & nuc.id.isin(skeletonized)]
    nuc = nuc.drop_duplicates("pt_root_id", keep=False)
    posts = pq.read_table(ds_dir / f"v{VERSION}" / "synapses_v1dd.parquet",
                          columns=["post_pt_root_id"]).column(0).to_pandas().value_counts()
    row = nuc.assign(n=nuc.pt_root_id.map(posts).fillna(0)).sort_values("n").iloc[-1]
    return {"root": int(row.pt_root_id), "nucleus": int(row.id),
            "supervoxel": int(row.pt_supervoxel_id)}


def test_info_and_versions(served: str, client, ds_dir: Path) -> None:
    info = client.info.get_datastack_info()
    assert info["local_server"] == served
    assert info["segmentation_source"].startswith(f"graphene://{served}/segmentation/table/")
    assert info["synapse_table"] == "synapses_v1dd"
    assert info["soma_table"] == "nucleus_detection_v0"
    np.testing.assert_array_equal(client.info.viewer_resolution(), [9.0, 9.0, 45.0])
    assert "minnie65_public" not in client.info.get_datastacks()  # only v1dd is served here
    assert client.materialize.get_versions() == [VERSION]
    assert client.materialize.version == VERSION
    stamp = json.loads((ds_dir / layout.VERSIONS_JSON).read_text())
    listed = {r["version"]: r["time_stamp"] for r in stamp}
    ts = client.materialize.get_timestamp(VERSION)
    assert ts.tzinfo is not None
    assert ts.replace(tzinfo=None) == dt.datetime.fromisoformat(listed[VERSION])


def test_tables_metadata_and_counts(client, ds_dir: Path) -> None:
    tables = client.materialize.get_tables()
    assert {"nucleus_detection_v0", "synapses_v1dd", "neurons_soma_model",
            "cell_type_multifeature_v1", "proofreading_status_and_strategy",
            "functional_coregistration_manual_2"} <= set(tables)
    assert client.materialize.get_table_metadata("nucleus_detection_v0")[
        "voxel_resolution"] == [9.0, 9.0, 45.0]
    # the documented discrepancy: the synapse table's positions are in 9.7 x 9.7 x 45 nm voxels
    assert client.materialize.get_table_metadata("synapses_v1dd")[
        "voxel_resolution"] == [9.7, 9.7, 45.0]
    for name in tables:
        assert client.materialize.get_annotation_count(name) == len(table(ds_dir, name))


def test_query_table_and_resolution(client, ds_dir: Path) -> None:
    nuc = client.materialize.query_table("nucleus_detection_v0", split_positions=True)
    exp = table(ds_dir, "nucleus_detection_v0")
    assert sorted(nuc.id) == sorted(exp.id)
    assert nuc.pt_root_id.dtype == np.int64
    nm = client.materialize.query_table("nucleus_detection_v0", desired_resolution=[1, 1, 1],
                                        split_positions=True)
    merged = nuc.merge(nm, on="id", suffixes=("_vx", "_nm"))
    for axis, size in zip("xyz", (9.0, 9.0, 45.0), strict=True):
        np.testing.assert_allclose(merged[f"pt_position_{axis}_nm"],
                                   merged[f"pt_position_{axis}_vx"] * size, rtol=1e-9)
    coreg = client.materialize.query_table("functional_coregistration_manual_2")
    assert {"column", "volume", "plane", "roi", "pt_root_id"} <= set(coreg.columns)
    assert len(coreg) == len(table(ds_dir, "functional_coregistration_manual_2"))


def test_reference_join_and_filters(client, ds_dir: Path) -> None:
    types = client.materialize.query_table("cell_type_multifeature_v1")
    ref = table(ds_dir, "cell_type_multifeature_v1")
    assert len(types) == len(ref) and "pt_root_id" in types.columns
    nuc = table(ds_dir, "nucleus_detection_v0").set_index("id")
    joined = types.set_index("target_id" if "target_id" in types.columns else "id_ref")
    np.testing.assert_array_equal(joined.pt_root_id.values,
                                  nuc.loc[joined.index, "pt_root_id"].values)
    some = sorted(set(types.cell_type))[:2]
    picked = client.materialize.tables.cell_type_multifeature_v1(cell_type=some).query()
    assert len(picked) == int(types.cell_type.isin(some).sum()) > 0


def test_synapse_query_in_nm(client, ds_dir: Path, cell: dict) -> None:
    syn = table(ds_dir, "synapses_v1dd")
    root = cell["root"]
    inputs = client.materialize.synapse_query(post_ids=root, split_positions=True)
    exp = syn[(syn.post_pt_root_id == root) & (syn.pre_pt_root_id != root)]
    assert len(inputs) > 0 and sorted(inputs.id) == sorted(exp.id)
    nm = client.materialize.synapse_query(post_ids=root, desired_resolution=[1, 1, 1],
                                          split_positions=True)
    both = inputs.merge(nm, on="id", suffixes=("_vx", "_nm"))
    for axis, size in zip("xyz", (9.7, 9.7, 45.0), strict=True):
        np.testing.assert_allclose(both[f"ctr_pt_position_{axis}_nm"],
                                   both[f"ctr_pt_position_{axis}_vx"] * size, rtol=1e-6)


def test_chunkedgraph_and_views(client, ds_dir: Path, cell: dict) -> None:
    cg = client.chunkedgraph
    assert cg.get_root_id(cell["supervoxel"], timestamp=client.materialize.get_timestamp()) \
        == cell["root"]
    lineage = pd.read_parquet(ds_dir / layout.LINEAGE_PARQUET)
    latest = cg.is_latest_roots([cell["root"]], timestamp=client.materialize.get_timestamp())
    assert bool(latest[0])
    if cell["root"] in set(lineage.parent_root_id):  # edited after 1196: newer roots exist
        assert cell["root"] not in set(cg.get_latest_roots(cell["root"]))
    else:
        assert list(cg.get_latest_roots(cell["root"])) == [cell["root"]]
    views = client.materialize.get_views()
    assert views, "the sample lists views"
    name = sorted(views)[0]
    df = client.materialize.query_view(name, limit=5)
    assert 0 < len(df) <= 5


def test_skeleton_and_mesh(served: str, client, ds_dir: Path, cell: dict) -> None:
    from cloudvolume import CloudVolume

    sk = client.skeleton.get_skeleton(cell["root"], output_format="dict")
    rows = pd.read_parquet(ds_dir / layout.SKELETONS_PARQUET)
    rows = rows[rows.nucleus_id == cell["nucleus"]].sort_values("node")
    assert sk["vertices"].shape == (len(rows), 3) and len(rows) > 100
    np.testing.assert_array_equal(sk["compartment"], rows.compartment.values)
    cv = CloudVolume(client.info.segmentation_source(), use_https=True, progress=False)
    mesh = cv.mesh.get(cell["root"])[cell["root"]]
    assert len(mesh.faces) > 0 and mesh.faces.max() < len(mesh.vertices)
    pad = rows.radius.max() * 1.01
    assert np.all(mesh.vertices >= rows[["x", "y", "z"]].min().values - pad)
    assert np.all(mesh.vertices <= rows[["x", "y", "z"]].max().values + pad)


def test_unknown_names_are_404_with_a_suggestion(client) -> None:
    with pytest.raises(requests.HTTPError) as err:
        client.materialize.query_table("synapses_v1d")
    assert err.value.response.status_code == 404
    assert "did you mean 'synapses_v1dd'" in err.value.response.json()["message"]
    with pytest.raises(requests.HTTPError, match="404"):
        client.materialize.query_table("nucleus_detection_v0", materialization_version=1300)
