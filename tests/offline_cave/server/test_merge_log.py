"""The chunkedgraph's merge log and MeshParty on top of it, through the unmodified clients.

``client.chunkedgraph.get_merge_log(root)`` (caveclient 8.2.1), MeshParty's
``Mesh.add_link_edges(seg_id, client=client.chunkedgraph)`` (which asks for that log) and
``MeshMeta(cv_path=...).mesh(seg_id=...)`` on the graphene and on a static source. Runs on the
generated default sample; expected values come from its files (``segments/operations.parquet``)
read with pandas, never from the server's code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from offline_cave.contract import layout
from tests.fixtures.server_harness import AUTH, sample_fixtures

DATASTACK = "minnie65_public"
CHANGE_LOG_CELL = 864691135617152361  # public-example-cells.md: the long edit history

ds_dir, served = sample_fixtures(DATASTACK, "home-merge-log")


@pytest.fixture(scope="module")
def client(served: str):
    from caveclient import CAVEclient

    return CAVEclient(DATASTACK)


def read(ds: Path, rel: str) -> pd.DataFrame:
    return pq.read_table(ds / rel).to_pandas()


def expected_merge_log(ops: pd.DataFrame, merge_ops: list[int]) -> dict:
    """The merge log the files imply: one entry per edge of each merge, by operation id."""
    rows = ops[ops.operation_id.isin(merge_ops) & ops.is_merge
               & (ops.source_supervoxel_id != 0) & (ops.sink_supervoxel_id != 0)]
    rows = rows.sort_values("operation_id", kind="stable")
    return {
        "merge_edges": [[[int(r.source_supervoxel_id), int(r.sink_supervoxel_id)]]
                        for r in rows.itertuples()],
        "merge_edge_coords": [[[[int(r.source_x), int(r.source_y), int(r.source_z)]],
                               [[int(r.sink_x), int(r.sink_y), int(r.sink_z)]]]
                              for r in rows.itertuples()],
    }


def merges_in_history(client, root: int) -> list[int]:
    log = client.chunkedgraph.get_tabular_change_log(root, filtered=False)[root]
    return sorted(int(o) for o in log.loc[log.is_merge, "operation_id"])


@pytest.fixture(scope="module")
def merged_cell(ds_dir: Path, client) -> int:
    """A current root whose history holds 2-6 merges and whose skeleton is among the
    smallest such (a quick mesh), from the files."""
    roots = read(ds_dir, layout.ROOTS_PARQUET)
    current = roots[np.isinf(roots.expired) & (roots.nucleus_id > 0)]
    sizes = pq.read_table(ds_dir / layout.SKELETONS_PARQUET,
                          columns=["nucleus_id"]).to_pandas().value_counts("nucleus_id")
    cand = current[current.operation_id > 0]  # made by an edit
    cand = cand.assign(n=cand.nucleus_id.map(sizes)).dropna(subset=["n"])
    roots = [int(r) for r in cand.sort_values("n").root_id.head(200)]
    logs = client.chunkedgraph.get_tabular_change_log(roots, filtered=False)
    for root in roots:
        if 2 <= int(logs[root].is_merge.sum()) <= 6:
            return root
    pytest.fail("no current root with 2-6 merges among the 200 smallest edited cells")


def test_merge_log_lists_every_merge_of_the_history(client, ds_dir: Path) -> None:
    ops = read(ds_dir, layout.OPERATIONS_PARQUET)
    merge_ops = merges_in_history(client, CHANGE_LOG_CELL)
    assert len(merge_ops) > 10  # a long history
    log = client.chunkedgraph.get_merge_log(CHANGE_LOG_CELL)
    assert set(log) == {"merge_edges", "merge_edge_coords"}
    assert log == expected_merge_log(ops, merge_ops)


def test_merge_log_of_a_root_without_edits_is_empty(client, ds_dir: Path) -> None:
    roots = read(ds_dir, layout.ROOTS_PARQUET)
    unedited = roots[(roots.operation_id == 0) & np.isinf(roots.expired)
                     & (roots.nucleus_id > 0)]
    root = int(unedited.root_id.iloc[0])
    assert merges_in_history(client, root) == []
    assert client.chunkedgraph.get_merge_log(root) == {"merge_edges": [],
                                                       "merge_edge_coords": []}


def test_merge_log_refuses_bad_roots(served: str) -> None:
    base = f"{served}/segmentation/api/v1/table/minnie3_v1/root"
    unknown_root = str((12 << 56) + 1)  # a root id's layer, but no such root
    for bad, status in ((unknown_root, 404), ("12", 400), ("abc", 400), (str(2**64), 400)):
        r = requests.get(f"{base}/{bad}/merge_log", headers=AUTH, timeout=30)
        assert r.status_code == status, (bad, r.status_code, r.text)
        assert "message" in r.json()


def graphene_mesh(client, root: int):
    from cloudvolume import CloudVolume
    from meshparty import trimesh_io

    cv = CloudVolume(client.info.segmentation_source(), use_https=True, progress=False)
    m = cv.mesh.get(root)[root]
    return trimesh_io.Mesh(m.vertices, np.asarray(m.faces).reshape(-1, 3))


def test_add_link_edges_reads_the_merge_log(client, merged_cell: int) -> None:
    """``add_link_edges(seg_id, client=client.chunkedgraph)`` asks the merge log (it raised on
    the old server, which had no such route) and maps the proofreaders' points to the mesh;
    link edges, where it adds any, bridge two pieces the triangles leave apart."""
    mesh = graphene_mesh(client, merged_cell)
    n_before, piece = connected_components(mesh.csgraph, directed=False)
    log = client.chunkedgraph.get_merge_log(merged_cell)
    assert len(log["merge_edges"]) >= 2
    mesh.add_link_edges(merged_cell, client=client.chunkedgraph)
    edges = np.asarray(mesh.link_edges, dtype=int).reshape(-1, 2)
    assert np.all(piece[edges[:, 0]] != piece[edges[:, 1]])
    n_after, _ = connected_components(mesh.csgraph, directed=False)
    if len(edges):
        assert n_after < n_before
    # the points the proofreaders placed (base voxels -> nm) are near this cell's mesh; in
    # the sample they are 1-5 um from its surface (the generator places them at the pieces'
    # supervoxel points, not on the surface), beyond MeshParty's 300 nm mapping distance
    points = (np.asarray(log["merge_edge_coords"], float).reshape(-1, 3)
              * np.asarray(client.chunkedgraph.base_resolution, float))
    nearest, _ = cKDTree(mesh.vertices).query(points)
    assert nearest.max() < 6000, (n_before, np.round(nearest))


def test_meshmeta_reads_the_graphene_source(client, merged_cell: int, tmp_path: Path) -> None:
    from meshparty import trimesh_io

    direct = graphene_mesh(client, merged_cell)
    meta = trimesh_io.MeshMeta(cv_path=client.info.segmentation_source(),
                               disk_cache_path=str(tmp_path), map_gs_to_https=True)
    mesh = meta.mesh(seg_id=merged_cell)
    assert np.array_equal(np.asarray(mesh.vertices), np.asarray(direct.vertices))
    assert np.array_equal(np.asarray(mesh.faces), np.asarray(direct.faces))
    cached = list(tmp_path.glob(f"{merged_cell}*.h5"))
    assert cached  # written to the disk cache ...
    again = trimesh_io.MeshMeta(cv_path=client.info.segmentation_source(),
                                disk_cache_path=str(tmp_path)).mesh(seg_id=merged_cell)
    assert np.array_equal(np.asarray(again.vertices), np.asarray(mesh.vertices))  # ... and read


def test_meshmeta_reads_a_static_source_by_lod(served: str, ds_dir: Path) -> None:
    from meshparty import trimesh_io

    from connectomics_book import sources

    roots = read(ds_dir, layout.ROOTS_PARQUET)
    example = 864691135572530981  # public-example-cells.md §1, in seg_m1300 (and seg_m943)
    assert example in set(roots.root_id)
    meta = trimesh_io.MeshMeta(cv_path=sources.location("minnie65_seg_m1300"))
    # MeshMeta caches by seg_id alone, so each level is fetched without the cache
    sizes = [len(meta.mesh(seg_id=example, lod=k, cache_mesh=False).vertices)
             for k in (0, 2)]
    assert sizes[0] > sizes[1] > 0
