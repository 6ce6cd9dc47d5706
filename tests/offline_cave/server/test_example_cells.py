"""The public tutorials' example cells answer their tutorials' calls, through the real clients.

The public MICrONS tutorials hard-code example cells by their real root ids
(``shared/reference/public-example-cells.md`` §1); the generator plants synthetic cells under
those ids (``offline_cave.generator.examples``). Each test makes the calls a tutorial makes
with one of them and checks the answer plays the role. Runs on the generated default sample
(``OFFLINE_CAVE_DATA``, default ``sample-data``); expected values are read from its files.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from offline_cave.contract import layout
from offline_cave.generator.pipeline import ensure_sample
from tests.fixtures.paths import REPO_ROOT
from tests.fixtures.server_harness import serving_sample

DATA = Path(os.environ.get("OFFLINE_CAVE_DATA", REPO_ROOT / "sample-data"))
DATASTACK = "minnie65_public"
LOOKUP_23P = {864691135771677771: 19116, 864691135560505569: 21783, 864691136723556861: 4074}
PYRAMIDAL = 864691135572530981
SYNAPSE_EXAMPLE, SYNAPSE_EXAMPLE_V1300 = 864691136968109774, 864691135808473885
EXPIRED, SUCCESSOR = 864691135919440816, 864691134991067002
CHANGE_LOG = 864691135617152361
BASKET = 864691136210378684
CURRENT = (864691135639556411, 864691135808631069)
V661_ROOT, V1078_ROOT = 864691135851524807, 864691135356151759
SKELETON_FILE_CELL = 864691135122603047
NGL_LINK_CELL = 864691135441799752
PATH_LENGTH_CELL = 864691134918592778
FUNCTIONAL_CELL = 864691135655627458
MESH_CELLS = (864691135545730856, 864691134940133219)
FIRST_PROOFREAD = 864691135686494647
CHANGE_LOG_EDITS = 106  # generator/examples.py: the real 1,249 x synapse keep fraction 0.085


@pytest.fixture(scope="module")
def ds_dir() -> Path:
    return ensure_sample(DATA, DATASTACK, deep=False, log=lambda *_: None)


@pytest.fixture(scope="module")
def served(ds_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving_sample(ds_dir, tmp_path_factory.mktemp("home-examples")) as url:
        yield url


@pytest.fixture(scope="module")
def client(served: str):
    from caveclient import CAVEclient

    return CAVEclient(DATASTACK)


def synapses(ds_dir: Path, version: int) -> pd.DataFrame:
    return pd.read_parquet(ds_dir / f"v{version}" / "synapses_pni_2.parquet",
                           columns=["pre_pt_root_id", "post_pt_root_id"])


@pytest.mark.parametrize("version", [1300, 1822])
def test_the_three_23p_lookups_by_root_id(client, version: int) -> None:
    """MT:qs/02#27: ``aibs_metamodel_celltypes_v661(pt_root_id=[...3 ids...]).query()``."""
    client.materialize.version = version
    df = client.materialize.tables.aibs_metamodel_celltypes_v661(
        pt_root_id=list(LOOKUP_23P)).query()
    assert sorted(df.pt_root_id) == sorted(LOOKUP_23P)
    assert set(df.cell_type) == {"23P"} and set(df.classification_system) == {
        "excitatory_neuron"}
    nucleus_of = dict(zip(df.pt_root_id, df.target_id, strict=True))
    assert nucleus_of == LOOKUP_23P


def test_basket_cell_is_a_basket_cell(client) -> None:
    client.materialize.version = 1300
    df = client.materialize.tables.aibs_metamodel_celltypes_v661(pt_root_id=BASKET).query()
    assert list(df.cell_type) == ["BC"]
    assert list(client.chunkedgraph.is_latest_roots([BASKET])) == [True]


def test_current_examples_are_latest(client) -> None:
    """MT:ex/skeleton_load_and_generate#56: ``is_latest_roots`` answers True; the pcg_skel
    target's nucleus is 267207 through ``nucleus_detection_lookup_v1`` (#46)."""
    assert list(client.chunkedgraph.is_latest_roots(list(CURRENT))) == [True, True]
    client.materialize.version = 1300
    view = client.materialize.query_view("nucleus_detection_lookup_v1",
                                         filter_equal_dict={"pt_root_id": CURRENT[0]})
    assert list(view.id) == [267207]


def test_synapse_query_example_has_the_most_inputs(client, ds_dir: Path) -> None:
    """MT:qs/04#21-24: ``synapse_query(post_ids=...)`` and ``(pre_ids=...)`` at the latest
    version; at 1300 the cell had the older root 864691135808473885 (same inputs)."""
    client.materialize.version = 1822
    inputs = client.materialize.synapse_query(post_ids=SYNAPSE_EXAMPLE)
    outputs = client.materialize.synapse_query(pre_ids=SYNAPSE_EXAMPLE)
    syn = synapses(ds_dir, 1822)
    per_post = syn.post_pt_root_id.value_counts()
    assert len(inputs) == per_post[SYNAPSE_EXAMPLE]
    assert len(outputs) == int((syn.pre_pt_root_id == SYNAPSE_EXAMPLE).sum()) > 0
    # among the sample's many-input neurons (top 1 %)
    assert len(inputs) >= per_post[per_post.index > 0].quantile(0.99)
    client.materialize.version = 1300
    old_inputs = client.materialize.synapse_query(post_ids=SYNAPSE_EXAMPLE_V1300)
    assert sorted(old_inputs.id) == sorted(inputs.id)
    assert list(client.chunkedgraph.is_latest_roots([SYNAPSE_EXAMPLE_V1300, SYNAPSE_EXAMPLE])
                ) == [False, True]


def test_expired_root_and_its_successor(client) -> None:
    """MT:materialization-version#21-32: the expired id, its root timestamp, its successor
    and its nucleus 260620 at the older version (none at the latest)."""
    assert list(client.chunkedgraph.is_latest_roots([EXPIRED])) == [False]
    assert int(client.chunkedgraph.suggest_latest_roots(EXPIRED)) == SUCCESSOR
    stamp = client.chunkedgraph.get_root_timestamps([EXPIRED])[0]
    assert stamp == dt.datetime(2023, 2, 1, 8, 47, 29, 891000, tzinfo=dt.UTC)
    v661 = dt.datetime(2023, 4, 6, 20, 17, 9, 199182, tzinfo=dt.UTC)  # datasets-facts §1.2
    assert int(client.chunkedgraph.suggest_latest_roots(EXPIRED, timestamp=v661)) == EXPIRED
    client.materialize.version = 1300
    old = client.materialize.tables.nucleus_detection_v0(pt_root_id=EXPIRED).query()
    assert list(old.id) == [260620]
    client.materialize.version = 1822
    assert len(client.materialize.tables.nucleus_detection_v0(pt_root_id=EXPIRED).query()) == 0
    now = client.materialize.tables.nucleus_detection_v0(id=260620).query()
    assert list(now.pt_root_id) == [SUCCESSOR]


def test_change_log_cell(client) -> None:
    """WS:ProgrammaticAccess#63: ``get_tabular_change_log(root)[root]``; the root was made by
    the last logged merge (2024-04-24 22:41:33 UTC); proofread axon and dendrite."""
    log = client.chunkedgraph.get_tabular_change_log(CHANGE_LOG)[CHANGE_LOG]
    assert len(log) == CHANGE_LOG_EDITS
    last = log.sort_values("timestamp").iloc[-1]
    assert bool(last.is_merge) and list(last.after_root_ids) == [CHANGE_LOG]
    assert int(last.timestamp) == 1713998493121
    assert log.is_merge.sum() > 0 and (~log.is_merge).sum() > 0  # extensions, corrections
    unfiltered = client.chunkedgraph.get_tabular_change_log(CHANGE_LOG, filtered=False)[CHANGE_LOG]
    assert len(unfiltered) > len(log)  # the merges split off again
    client.materialize.version = 1300
    status = client.materialize.tables.proofreading_status_and_strategy(
        pt_root_id=CHANGE_LOG).query()
    assert list(status.status_axon) == [True] and list(status.status_dendrite) == [True]
    assert list(status.strategy_axon) == ["axon_partially_extended"]
    assert list(status.strategy_dendrite) == ["dendrite_extended"]


def test_example_pyramidal_has_skeleton_and_mesh(client, ds_dir: Path) -> None:
    """MT:qs/07#6 (server skeleton) and MT:qs/06#15 (dynamic mesh) of the example cell."""
    from cloudvolume import CloudVolume

    client.materialize.version = 1300
    nucleus = client.materialize.tables.nucleus_detection_v0(pt_root_id=PYRAMIDAL).query()
    assert len(nucleus) == 1
    roots = pd.read_parquet(ds_dir / layout.ROOTS_PARQUET).set_index("root_id")
    assert int(roots.loc[PYRAMIDAL, "nucleus_id"]) == int(nucleus.id.iloc[0])
    sk = client.skeleton.get_skeleton(PYRAMIDAL, output_format="dict")
    compartments = set(np.asarray(sk["compartment"]).tolist())
    assert {1, 2, 3, 4} <= compartments  # soma, axon, basal and apical dendrite
    swc = client.skeleton.get_skeleton(PYRAMIDAL, output_format="swc")
    assert swc.type.iloc[0] == 1 and swc.parent.iloc[0] == -1
    cv = CloudVolume(client.info.segmentation_source(), use_https=True, progress=False)
    mesh = cv.mesh.get(PYRAMIDAL)[PYRAMIDAL]
    assert len(mesh.vertices) > 1000 and len(mesh.faces) > 0
    assert list(client.chunkedgraph.is_latest_roots([PYRAMIDAL])) == [True]


def test_v661_root_and_its_successor(client) -> None:
    """MT:ex/skeleton_load_and_generate#22-26, #54-55: nucleus 490689's root at v661, and
    ``suggest_latest_roots`` of it at the v1078 time is the root seen in neuroglancer."""
    v661 = dt.datetime(2023, 4, 6, 20, 17, 9, 199182, tzinfo=dt.UTC)
    v1078 = dt.datetime(2024, 6, 5, 10, 10, 1, 203215, tzinfo=dt.UTC)
    old = client.materialize.query_table("nucleus_detection_v0", filter_equal_dict={"id": 490689},
                                         timestamp=v661)
    assert list(old.pt_root_id) == [V661_ROOT]
    assert int(client.chunkedgraph.suggest_latest_roots(V661_ROOT, timestamp=v1078)) == V1078_ROOT
    stamp = client.chunkedgraph.get_root_timestamps([V1078_ROOT])[0]
    assert stamp == dt.datetime(2024, 4, 10, 4, 7, 54, 947000, tzinfo=dt.UTC)
    client.materialize.version = 1300
    now = client.materialize.tables.nucleus_detection_v0(pt_root_id=V1078_ROOT).query()
    assert list(now.id) == [490689]


def test_skeleton_file_cell_has_its_nucleus(client) -> None:
    """MT:ex/skeleton_load_and_generate#14: the file name ``864691135122603047_292685``."""
    client.materialize.version = 1300
    nucleus = client.materialize.tables.nucleus_detection_v0(pt_root_id=SKELETON_FILE_CELL).query()
    assert list(nucleus.id) == [292685]
    assert len(client.skeleton.get_skeleton(SKELETON_FILE_CELL, output_format="swc")) > 100


def test_first_proofread_row_and_its_bulk_skeleton(client) -> None:
    """MT:qs/07#12-14: the first rows of ``proofreading_status_and_strategy(status_axon=True)``
    fetched with ``get_bulk_skeletons(..., skeleton_version=4)``, keyed by string ids, the
    first of them hard-coded."""
    client.materialize.version = 1822
    proof = client.materialize.tables.proofreading_status_and_strategy(
        status_axon=True).query()
    assert int(proof.pt_root_id.iloc[0]) == FIRST_PROOFREAD
    ids = proof.pt_root_id.head(3).tolist()
    skeletons = client.skeleton.get_bulk_skeletons(ids, output_format="dict",
                                                   skeleton_version=4)
    sk = skeletons[str(FIRST_PROOFREAD)]
    assert "lvl2_ids" in sk and len(sk["lvl2_ids"]) == len(sk["vertices"])


def test_neuroglancer_link_cell_has_inputs_and_outputs(client) -> None:
    """MT:qs/09#20 puts the cell's inputs and outputs into a link: it has both, and a
    proofread axon at the version the tutorial's v1300 runs listed it."""
    client.materialize.version = 1300
    status = client.materialize.tables.proofreading_status_and_strategy(
        pt_root_id=NGL_LINK_CELL).query()
    assert list(status.status_axon) == [True]
    assert len(client.materialize.synapse_query(post_ids=NGL_LINK_CELL)) > 0
    assert len(client.materialize.synapse_query(pre_ids=NGL_LINK_CELL)) > 0


def test_path_length_cell_skeleton_has_axon_and_dendrite(client) -> None:
    """WS:SkeletonAccess#7: path length of the dendrite (compartments 1, 3, 4) and the axon
    (2) of the server skeleton."""
    sk = client.skeleton.get_skeleton(PATH_LENGTH_CELL, output_format="dict")
    compartments = set(np.asarray(sk["compartment"]).tolist())
    assert 2 in compartments and compartments & {3, 4}


def test_functional_cell_is_coregistered_with_inputs(client) -> None:
    """MT:ex/functional_inputs_orientation#8,#12: the cell's co-registration row and its
    inputs at v1300."""
    client.materialize.version = 1300
    coreg = client.materialize.tables.coregistration_manual_v4(
        pt_root_id=FUNCTIONAL_CELL).query()
    assert len(coreg) >= 1
    assert len(client.materialize.synapse_query(post_ids=FUNCTIONAL_CELL)) > 0


@pytest.mark.parametrize("root", MESH_CELLS)
def test_mesh_example_cells_are_current_neurons(client, root: int) -> None:
    """SWDB:em-meshes.md#1,#3 and MT:qs/00_skeletons#23: current neurons with a nucleus."""
    assert list(client.chunkedgraph.is_latest_roots([root])) == [True]
    client.materialize.version = 1822
    nucleus = client.materialize.tables.nucleus_detection_v0(pt_root_id=root).query()
    assert len(nucleus) == 1
