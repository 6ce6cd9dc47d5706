"""Level-2 chunk graph, level-2 cache, pcg_skel and the skeleton service, through the real clients.

Runs on the generated default sample (``OFFLINE_CAVE_DATA``, default ``sample-data``), because
the level-2 data is made by the generator from the cells' skeletons. Expected values are read
from the sample's files with pandas, never from the server's code.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from io import StringIO
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
DATASTACK = "minnie65_public"
VERSION = 1300
AUTH = {"Authorization": "Bearer 0123456789abcdef0123456789abcdef"}


@pytest.fixture(scope="module")
def ds_dir() -> Path:
    return ensure_sample(DATA, DATASTACK, deep=False, log=lambda *_: None)


@pytest.fixture(scope="module")
def served(ds_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving_sample(ds_dir, tmp_path_factory.mktemp("home-l2")) as url:
        yield url


@pytest.fixture(scope="module")
def client(served: str):
    from caveclient import CAVEclient

    c = CAVEclient(DATASTACK)
    c.materialize.version = VERSION
    return c


def read(ds_dir: Path, rel: str) -> pd.DataFrame:
    return pq.read_table(ds_dir / rel).to_pandas()


@pytest.fixture(scope="module")
def cell(ds_dir: Path) -> dict:
    """The proofread single-cell root (current at v1300 and now) with level-2 data, output
    synapses and the fewest level-2 nodes above 300 (quick to skeletonize), by query."""
    nuc = read(ds_dir, f"v{VERSION}/nucleus_detection_v0.parquet")
    roots = read(ds_dir, layout.ROOTS_PARQUET)
    current = roots[np.isinf(roots.expired)]
    proof = read(ds_dir, f"v{VERSION}/proofreading_status_and_strategy.parquet")
    covered = set(read(ds_dir, layout.LEVEL2_CELLS_PARQUET).nucleus_id)
    nodes = read(ds_dir, layout.LEVEL2_NODES_PARQUET)
    n_nodes = nodes.groupby("nucleus_id").size()
    cand = nuc[nuc.id.isin(covered) & nuc.pt_root_id.isin(current.root_id)
               & nuc.pt_root_id.isin(proof.pt_root_id)]
    cand = cand.drop_duplicates("pt_root_id", keep=False)
    cand = cand.merge(current[["root_id", "nucleus_id"]], left_on="pt_root_id",
                      right_on="root_id")
    cand = cand[cand.nucleus_id == cand.id].copy()
    cand["n_nodes"] = n_nodes.reindex(cand.id).to_numpy()
    pre = pq.read_table(ds_dir / f"v{VERSION}/synapses_pni_2.parquet",
                        columns=["pre_pt_root_id"]).column(0).to_pandas().value_counts()
    cand = cand[(cand.n_nodes > 300) & cand.pt_root_id.isin(pre[pre >= 5].index)]
    cand = cand.sort_values("n_nodes")
    row = cand.iloc[0]
    return {"root": int(row.pt_root_id), "nucleus": int(row.id)}


@pytest.fixture(scope="module")
def cell_nodes(ds_dir: Path, cell: dict) -> pd.DataFrame:
    nodes = read(ds_dir, layout.LEVEL2_NODES_PARQUET)
    return nodes[nodes.nucleus_id == cell["nucleus"]]


def served_skeleton(ds_dir: Path, nucleus: int) -> pd.DataFrame:
    sk = read(ds_dir, layout.SKELETONS_PARQUET)
    return sk[sk.nucleus_id == nucleus].sort_values("node")


def path_length(vertices: np.ndarray, edges: np.ndarray) -> float:
    return float(np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1).sum())


# ------------------------------------------------------------------------ chunkedgraph level 2
def test_lvl2_graph_and_leaves(client, cell: dict, cell_nodes: pd.DataFrame, ds_dir: Path):
    edges = np.asarray(client.chunkedgraph.level2_chunk_graph(cell["root"]), dtype=np.int64)
    assert edges.shape[1] == 2 and len(edges) >= len(cell_nodes) - 1
    assert set(np.unique(edges)) == set(cell_nodes.l2_id)
    assert ((edges >> 56) == 2).all()
    leaves = client.chunkedgraph.get_leaves(cell["root"], stop_layer=2)
    assert set(cell_nodes.l2_id) <= set(leaves.tolist())
    assert ((np.asarray(leaves, dtype=np.int64) >> 56) == 2).all()


def test_level2_ids_resolve_to_their_root(client, cell: dict, cell_nodes: pd.DataFrame,
                                          ds_dir: Path):
    l2 = cell_nodes.l2_id.to_numpy()[:50]
    assert (client.chunkedgraph.get_roots(l2) == cell["root"]).all()
    assert client.chunkedgraph.suggest_latest_roots(cell["root"], stop_layer=2) == cell["root"]
    # a fragment without level-2 data: each supervoxel is a level-2 node of its own
    roots = read(ds_dir, layout.ROOTS_PARQUET)
    fragment = int(roots[(roots.nucleus_id == 0) & np.isinf(roots.expired)].root_id.iloc[0])
    leaves = client.chunkedgraph.get_leaves(fragment, stop_layer=2)
    svs = client.chunkedgraph.get_leaves(fragment)
    assert sorted(int(x) & ((1 << 56) - 1) for x in leaves) == sorted(
        int(x) & ((1 << 56) - 1) for x in svs)
    assert (client.chunkedgraph.get_roots(leaves) == fragment).all()


def test_supervoxels_map_onto_the_cells_level2_nodes(client, cell: dict,
                                                     cell_nodes: pd.DataFrame, ds_dir: Path):
    syn = read(ds_dir, f"v{VERSION}/synapses_pni_2.parquet")
    posts = syn[syn.post_pt_root_id == cell["root"]].post_pt_supervoxel_id.to_numpy()
    nuc = read(ds_dir, f"v{VERSION}/nucleus_detection_v0.parquet")
    soma_sv = nuc[nuc.id == cell["nucleus"]].pt_supervoxel_id.to_numpy()
    l2 = client.chunkedgraph.get_roots(np.r_[posts[:200], soma_sv], stop_layer=2)
    assert set(l2.tolist()) <= set(cell_nodes.l2_id)
    soma_l2 = int(l2[-1])
    assert cell_nodes.set_index("l2_id").loc[soma_l2, "size_nm3"] == cell_nodes.size_nm3.max()
    assert client.chunkedgraph.get_root_id(int(soma_sv[0]), level2=True) == soma_l2


def test_lvl2_graph_of_a_root_without_level2_data_is_a_clear_404(served: str, ds_dir: Path):
    roots = read(ds_dir, layout.ROOTS_PARQUET)
    covered = set(read(ds_dir, layout.LEVEL2_CELLS_PARQUET).nucleus_id)
    other = roots[(roots.nucleus_id > 0) & ~roots.nucleus_id.isin(covered)
                  & np.isinf(roots.expired)].root_id.iloc[0]
    r = requests.get(f"{served}/segmentation/api/v1/table/minnie3_v1/node/{other}/lvl2_graph",
                     headers=AUTH, timeout=30)
    assert r.status_code == 404
    assert "level-2" in r.json()["message"] and "proofread" in r.json()["message"]


# ------------------------------------------------------------------------------- l2 cache
def test_l2data_attributes_are_consistent_with_the_skeleton(client, cell: dict,
                                                            cell_nodes: pd.DataFrame,
                                                            ds_dir: Path):
    assert client.l2cache.has_cache()
    ids = cell_nodes.l2_id.to_numpy()[:300]
    data = client.l2cache.get_l2data(ids)
    assert set(data) == {str(i) for i in ids}
    sk = served_skeleton(ds_dir, cell["nucleus"])
    lo = sk[["x", "y", "z"]].min().to_numpy() - 1
    hi = sk[["x", "y", "z"]].max().to_numpy() + 1
    for v in data.values():
        assert set(v) == set(client.l2cache.attributes)
        rep = np.asarray(v["rep_coord_nm"])
        assert rep.shape == (3,) and (rep >= lo).all() and (rep <= hi).all()
        assert np.asarray(v["pca"]).shape == (3, 3) and len(v["pca_val"]) == 3
        assert np.asarray(v["chunk_intersect_count"]).shape == (2, 3)
        assert v["size_nm3"] > 0 and v["area_nm2"] > 0 and v["max_dt_nm"] >= v["mean_dt_nm"]
    # every rep_coord is a vertex of the served skeleton
    verts = sk[["x", "y", "z"]].to_numpy(np.float64)
    reps = np.array([v["rep_coord_nm"] for v in data.values()])
    d = np.linalg.norm(verts[None, :, :] - reps[:, None, :], axis=2).min(axis=1)
    assert d.max() < 1.0
    # total volume ~ the cylinders of the skeleton radii (soma as a sphere)
    table = client.l2cache.get_l2data_table(cell_nodes.l2_id.to_numpy(),
                                            attributes=["size_nm3"])
    assert table.size_nm3.sum() == pytest.approx(cell_nodes.size_nm3.sum(), rel=1e-6)


def test_l2data_bad_input_is_a_400(served: str, cell_nodes: pd.DataFrame):
    url = f"{served}/l2cache/api/v1/table/minnie3_v1/attributes"
    l2 = int(cell_nodes.l2_id.iloc[0])
    bad_attr = requests.post(url, params={"attribute_names": "rep_coord_nm,volume"},
                             data=json.dumps({"l2_ids": [l2]}), headers=AUTH, timeout=30)
    assert bad_attr.status_code == 400 and "volume" in bad_attr.json()["message"]
    root_id = (12 << 56) + 5_000_000_000
    not_l2 = requests.post(url, data=json.dumps({"l2_ids": [root_id]}), headers=AUTH,
                           timeout=30)
    assert not_l2.status_code == 400 and "level-2" in not_l2.json()["message"]
    huge = requests.post(url, data=json.dumps({"l2_ids": list(range(1, 600_002))}),
                         headers=AUTH, timeout=60)
    assert huge.status_code == 400 and "split" in huge.json()["message"]
    no_body = requests.post(url, data=b"", headers=AUTH, timeout=30)
    assert no_body.status_code == 400


# ------------------------------------------------------------------------------- pcg_skel
def test_pcg_skeleton_path_length_close_to_the_served_skeleton(client, cell: dict,
                                                               ds_dir: Path):
    import pcg_skel

    sk = pcg_skel.pcg_skeleton(cell["root"], client)
    served_sk = client.skeleton.get_skeleton(cell["root"], skeleton_version=4)
    mine = path_length(sk.vertices, sk.edges)
    theirs = path_length(served_sk["vertices"], served_sk["edges"])
    assert mine == pytest.approx(theirs, rel=0.15)
    # and against the full-resolution skeleton (version 0)
    full = served_skeleton(ds_dir, cell["nucleus"])
    child = full[full.parent >= 0]
    xyz = full[["x", "y", "z"]].to_numpy(np.float64)
    full_len = float(np.linalg.norm(xyz[child.node] - xyz[child.parent], axis=1).sum())
    assert mine == pytest.approx(full_len, rel=0.25)


def synapse_counts(ds_dir: Path, root: int) -> tuple[int, int]:
    syn = read(ds_dir, f"v{VERSION}/synapses_pni_2.parquet")
    syn = syn[syn.pre_pt_root_id != syn.post_pt_root_id]
    return int((syn.pre_pt_root_id == root).sum()), int((syn.post_pt_root_id == root).sum())


def test_get_meshwork_from_client_with_synapses(client, cell: dict, ds_dir: Path):
    import pcg_skel

    nrn = pcg_skel.get_meshwork_from_client(cell["root"], client, synapses=True)
    n_pre, n_post = synapse_counts(ds_dir, cell["root"])
    assert len(nrn.anno.pre_syn.df) == n_pre > 0
    assert len(nrn.anno.post_syn.df) == n_post > 0
    assert len(nrn.anno.lvl2_ids.df) == nrn.skeleton.n_vertices
    assert nrn.anno.is_axon.df.shape[0] > 0


def test_get_meshwork_from_client_restores_graph_and_properties(client, cell: dict,
                                                               cell_nodes: pd.DataFrame):
    import pcg_skel

    nrn = pcg_skel.get_meshwork_from_client(cell["root"], client, restore_graph=True,
                                            restore_properties=True)
    assert len(nrn.mesh.link_edges) == len(cell_nodes) - 1
    vol = nrn.anno.vol_prop.df
    assert len(vol) == len(cell_nodes)
    assert vol.size_nm3.sum() == pytest.approx(cell_nodes.size_nm3.sum(), rel=1e-5)
    assert "segment_properties" in nrn.anno.table_names


def test_pcg_meshwork_with_synapses(client, cell: dict, ds_dir: Path):
    import pcg_skel

    nrn = pcg_skel.pcg_meshwork(cell["root"], client=client, synapses=True)
    n_pre, n_post = synapse_counts(ds_dir, cell["root"])
    assert len(nrn.anno.pre_syn.df) == n_pre
    assert len(nrn.anno.post_syn.df) == n_post


# ------------------------------------------------------------------------- skeleton service
def test_skeleton_v4_has_lvl2_ids_and_every_format_parses(client, served: str, cell: dict,
                                                          cell_nodes: pd.DataFrame,
                                                          ds_dir: Path):
    sk = client.skeleton.get_skeleton(cell["root"], skeleton_version=4, output_format="dict")
    assert set(sk["lvl2_ids"].tolist()) == set(cell_nodes.l2_id)
    assert len(sk["lvl2_ids"]) == len(sk["vertices"]) == len(sk["mesh_to_skel_map"])
    swc = client.skeleton.get_skeleton(cell["root"], skeleton_version=4, output_format="swc")
    assert len(swc) == len(sk["vertices"])
    bulk = client.skeleton.get_bulk_skeletons([cell["root"]], skeleton_version=4)
    assert np.array_equal(np.asarray(bulk[str(cell["root"])]["lvl2_ids"]), sk["lvl2_ids"])
    assert client.skeleton.skeletons_exist(root_ids=[cell["root"]]) is True
    fragment = int(read(ds_dir, layout.ROOTS_PARQUET).query("nucleus_id == 0").root_id.iloc[0])
    assert client.skeleton.skeletons_exist(root_ids=[cell["root"], fragment]) == {
        cell["root"]: True, fragment: False}
    base = f"{served}/skeletoncache/api/v1/{DATASTACK}/precomputed/skeleton/4/{cell['root']}"
    n = len(sk["vertices"])
    for fmt in ("flatdict", "jsoncompressed", "json", "dict", "swc", "swccompressed",
                "precomputed"):
        r = requests.get(f"{base}/{fmt}", headers=AUTH, timeout=30)
        assert r.status_code == 200, fmt
        body = r.content
        if fmt in ("flatdict", "jsoncompressed", "dict"):
            assert len(json.loads(gzip.decompress(body))["vertices"]) == n
        elif fmt == "json":
            assert len(json.loads(body)["lvl2_ids"]) == n
        elif fmt in ("swc", "swccompressed"):
            text = body.decode() if fmt == "swc" else gzip.decompress(body).decode()
            assert len(pd.read_csv(StringIO(text), sep=" ", header=None)) == n
        else:
            nv, ne = np.frombuffer(body[:8], "<u4")
            # vertices (3 x float32), edges (2 x uint32), radius and compartment (float32
            # each: the viewer refuses other attribute types)
            assert nv == n and ne == n - 1 and len(body) == 8 + nv * 12 + ne * 8 + nv * 8
    bad = requests.get(f"{base}/h5", headers=AUTH, timeout=30)
    assert bad.status_code == 400


def test_the_level2_index_is_read_at_start(ds_dir: Path) -> None:
    """The server's warm-up reads the level-2 index before any request: skeleton version 4
    (caveclient's default) asks it whether a cell has level-2 data, and built by the first
    request it held a starting class's skeletons behind one lock (bench_classroom.py)."""
    from offline_cave.server.app import create_app
    from offline_cave.server.data.level2 import level2_store

    app = create_app(ds_dir.parent, datastacks=[DATASTACK])
    app.state.warm_up.join(120)  # a bound against a hang, not a speed figure
    assert not app.state.warm_up.is_alive()
    store = level2_store(app.state.registry.get(DATASTACK))
    assert store.available() and store._index is not None
