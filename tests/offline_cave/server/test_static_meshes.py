"""Static multi-resolution meshes (``seg_m943``, ``seg_m1300``) through the unmodified
cloud-volume, and a meshwork's synapses against the synapse table.

Runs on the generated default sample (``OFFLINE_CAVE_DATA``, default ``sample-data``): the
static meshes are written by the generator. Expected values come from the sample's files
(roots, skeletons) read with pandas, never from the server's code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests
from scipy.spatial import cKDTree

from offline_cave.contract import layout
from offline_cave.contract.params import MINNIE_VERSIONS
from tests.fixtures.server_harness import sample_fixtures

DATASTACK = "minnie65_public"
EXAMPLE_PYRAMIDAL = 864691135572530981  # public-example-cells.md §1: the tutorials' cell
CHANGE_LOG_CELL = 864691135617152361  # created 2024-04-24, after v943 (same file)
AUTH = {"Authorization": "Bearer 0123456789abcdef0123456789abcdef"}


ds_dir, served = sample_fixtures(DATASTACK, "home-static")


def static_cv(version: int):
    """The flat segmentation of ``version`` where the course's sources registry points."""
    from cloudvolume import CloudVolume

    from connectomics_book import sources

    return CloudVolume(sources.location(f"minnie65_seg_m{version}"), use_https=True,
                       progress=False)


def read(ds_dir: Path, rel: str) -> pd.DataFrame:
    return pq.read_table(ds_dir / rel).to_pandas()


def roots_at(ds_dir: Path, version: int) -> pd.DataFrame:
    """root_id, nucleus_id of the roots alive at ``version``'s time stamp (from the files)."""
    stamp = dict((v, t) for v, t, _ in MINNIE_VERSIONS)[version]
    t = pd.Timestamp(stamp, tz="UTC").timestamp()
    roots = read(ds_dir, layout.ROOTS_PARQUET)
    return roots[(roots.created <= t) & (t < roots.expired)]


def skeleton_of(ds_dir: Path, nucleus: int) -> pd.DataFrame:
    return pq.read_table(ds_dir / layout.SKELETONS_PARQUET,
                         filters=[("nucleus_id", "=", int(nucleus))]).to_pandas()


def test_sources_point_at_the_server(served: str) -> None:
    from connectomics_book import sources

    assert sources.location("minnie65_seg_m1300") == (
        f"precomputed://{served}/static/{DATASTACK}/seg_m1300")


def test_lod_meshes_decrease_in_size_with_lod(served: str) -> None:
    """The tutorials' loop over lod 0-3 (MT:qs/06#21): vertex and face counts fall with k."""
    cv = static_cv(1300)
    assert cv.mesh.meta.info["@type"] == "neuroglancer_multilod_draco"
    assert cv.mesh.meta.info["sharding"]["@type"] == "neuroglancer_uint64_sharded_v1"
    counts = []
    for lod in range(4):
        mesh = cv.mesh.get(EXAMPLE_PYRAMIDAL, lod=lod)[EXAMPLE_PYRAMIDAL]
        counts.append((len(mesh.vertices), len(mesh.faces)))
    vertices, faces = zip(*counts, strict=True)
    assert all(a > b for a, b in zip(vertices, vertices[1:], strict=False)), counts
    assert all(a > b for a, b in zip(faces, faces[1:], strict=False)), counts
    assert vertices[0] > 4 * vertices[3]
    manifest = cv.mesh.get_manifest(EXAMPLE_PYRAMIDAL)
    assert manifest.num_lods == 4
    sizes = [int(np.sum(f)) for f in manifest.fragment_offsets]
    assert all(a > b for a, b in zip(sizes, sizes[1:], strict=False)), sizes


def test_static_mesh_of_a_root_matches_that_roots_cell(served: str, ds_dir: Path) -> None:
    """LOD 0 wraps the skeleton of the root's nucleus (files), and is the dynamic mesh."""
    from cloudvolume import CloudVolume

    alive = roots_at(ds_dir, 1300)
    nucleus = int(alive.loc[alive.root_id == EXAMPLE_PYRAMIDAL, "nucleus_id"].iloc[0])
    mesh = static_cv(1300).mesh.get(EXAMPLE_PYRAMIDAL, lod=0)[EXAMPLE_PYRAMIDAL]
    sk = skeleton_of(ds_dir, nucleus)
    xyz = sk[["x", "y", "z"]].to_numpy(float)
    # every vertex lies on the tube around one of its nearest nodes (a ring's own node need
    # not be the nearest one), or on the soma sphere of the root's radius
    dist, node = cKDTree(xyz).query(mesh.vertices, k=8)
    reach = np.maximum(sk["radius"].to_numpy(float), 50.0)[node]
    root = sk.loc[sk.parent < 0].iloc[0]
    on_soma = np.linalg.norm(mesh.vertices - root[["x", "y", "z"]].to_numpy(float), axis=1)
    fits = (dist <= reach * 1.05 + 100).any(axis=1) | (on_soma <= root["radius"] * 1.05 + 100)
    assert fits.all(), int((~fits).sum())
    # every skeleton node has mesh around it (the mesh is of this cell, not a part of it)
    back, _ = cKDTree(mesh.vertices).query(xyz)
    assert np.percentile(back, 99) < 2 * np.percentile(sk["radius"], 99) + 500
    # and another cell's skeleton does not fit it
    other = alive[(alive.nucleus_id > 0) & (alive.nucleus_id != nucleus)].nucleus_id
    cells = set(read(ds_dir, layout.SKELETON_CELLS_PARQUET).nucleus_id)
    other_sk = skeleton_of(ds_dir, int(next(n for n in other if n in cells)))
    far, _ = cKDTree(other_sk[["x", "y", "z"]].to_numpy(float)).query(mesh.vertices)
    assert np.median(far) > 5_000
    dynamic = CloudVolume(f"precomputed://{served}/seg/{DATASTACK}", use_https=True,
                          progress=False).mesh.get(EXAMPLE_PYRAMIDAL)
    dyn = getattr(dynamic, "vertices", None)
    dyn = dyn if dyn is not None else dynamic[EXAMPLE_PYRAMIDAL].vertices
    gap, _ = cKDTree(dyn).query(mesh.vertices)
    quantum = np.ptp(dyn, axis=0).max() / (2 ** 16 - 1)
    assert gap.max() < 2 * quantum + 1.0


def test_each_flat_segmentation_holds_the_roots_of_its_version(served: str,
                                                               ds_dir: Path) -> None:
    """The change-log cell's root was created after v943: seg_m1300 has it, seg_m943 has the
    cell under the root it had at v943 (from roots.parquet) and not under the later id."""
    from cloudvolume.exceptions import MeshMissingError

    nucleus = int(roots_at(ds_dir, 1300).set_index("root_id").loc[CHANGE_LOG_CELL,
                                                                     "nucleus_id"])
    at_943 = roots_at(ds_dir, 943)
    old_root = int(at_943.loc[at_943.nucleus_id == nucleus, "root_id"].iloc[0])
    assert old_root != CHANGE_LOG_CELL
    assert static_cv(1300).mesh.get(CHANGE_LOG_CELL, lod=3)[CHANGE_LOG_CELL].vertices.size
    seg_943 = static_cv(943)
    assert seg_943.mesh.get(old_root, lod=3)[old_root].vertices.size
    with pytest.raises(MeshMissingError):
        seg_943.mesh.get(CHANGE_LOG_CELL, lod=3)
    assert seg_943.mesh.get(CHANGE_LOG_CELL, lod=3, allow_missing=True) == {}
    # the tutorials read the example pyramidal cell from both (MT:qs/06 at 1300, WS:MeshAccess
    # at 943): its root was made before v943
    assert EXAMPLE_PYRAMIDAL in set(at_943.root_id)
    for cv in (seg_943, static_cv(1300)):
        assert cv.mesh.get(EXAMPLE_PYRAMIDAL, lod=2)[EXAMPLE_PYRAMIDAL].vertices.size


def test_static_tree_serves_byte_ranges_and_refuses_bad_paths(served: str,
                                                              ds_dir: Path) -> None:
    base = f"{served}/static/{DATASTACK}/seg_m1300"
    shard = sorted((ds_dir / layout.static_segmentation_dir(1300) / "mesh").glob("*.shard"))[0]
    data = shard.read_bytes()
    url = f"{base}/mesh/{shard.name}"
    part = requests.get(url, headers={"Range": "bytes=16-47"}, timeout=30)
    assert part.status_code == 206 and part.content == data[16:48]
    assert part.headers["content-range"] == f"bytes 16-47/{len(data)}"
    assert requests.get(url, timeout=30).content == data  # no token needed: a public bucket
    bad = requests.get(url, headers={"Range": f"bytes={len(data)}-"}, timeout=30)
    assert bad.status_code == 416 and "outside" in bad.json()["message"]
    assert requests.get(url, headers={"Range": "bytes=0-1,4-5"}, timeout=30).status_code == 416
    for rel in ("../MANIFEST.json", "seg_m1300/../../MANIFEST.json", "%2e%2e/MANIFEST.json",
                "nope/info"):
        r = requests.get(f"{served}/static/{DATASTACK}/{rel}", timeout=30)
        assert r.status_code == 404, rel


def test_meshwork_synapses_agree_with_the_synapse_table(served: str) -> None:
    """pcg_skel's meshwork of the example pyramidal cell annotates exactly the synapses a
    synapse query returns for the root (the tutorials' MT:qs/07 call)."""
    import pcg_skel
    from caveclient import CAVEclient

    client = CAVEclient(DATASTACK)
    client.materialize.version = 1300
    nrn = pcg_skel.get_meshwork_from_client(EXAMPLE_PYRAMIDAL, client=client, synapses=True,
                                            restore_graph=True, restore_properties=True,
                                            skeleton_version=4)
    inputs = client.materialize.synapse_query(post_ids=EXAMPLE_PYRAMIDAL)
    outputs = client.materialize.synapse_query(pre_ids=EXAMPLE_PYRAMIDAL)
    inputs = inputs[inputs.pre_pt_root_id != inputs.post_pt_root_id]
    outputs = outputs[outputs.pre_pt_root_id != outputs.post_pt_root_id]
    assert len(inputs) > 0 and len(outputs) > 0
    assert set(nrn.anno.post_syn.df["id"]) == set(inputs["id"])
    assert set(nrn.anno.pre_syn.df["id"]) == set(outputs["id"])


@pytest.mark.parametrize(("version", "root"), [
    (943, 864691136210378684),  # basket cell, MT:ex/basket_cell_myelin (seg_m943, lod 2)
    (1300, 864691135655627458),  # functional-inputs cell (seg_m1300, lod 2)
    (943, EXAMPLE_PYRAMIDAL), (1300, EXAMPLE_PYRAMIDAL),  # MT:qs/06, WS:MeshAccess
])
def test_the_tutorials_static_mesh_cells_are_in_their_flat_segmentation(
        served: str, version: int, root: int) -> None:
    """The cells public-example-cells.md §3 reads static meshes of, at the version named."""
    mesh = static_cv(version).mesh.get(root, lod=2)[root]
    assert len(mesh.vertices) > 100 and len(mesh.faces) > 100
