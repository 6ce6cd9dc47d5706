"""connectomics_book.selection: the cell selections the Programmatic access pages share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from connectomics_book.selection import (
    assign_layer,
    drop_multi_soma,
    estimate_layer_bottoms,
    proofread_cells,
)
from tests.fixtures.server_harness import Served

# ---- drop_multi_soma


def test_drop_multi_soma_drops_shared_and_zero_roots():
    df = pd.DataFrame({"id": [1, 2, 3, 4, 5], "pt_root_id": [10, 11, 11, 0, 12]})
    assert drop_multi_soma(df)["id"].tolist() == [1, 5]


def test_drop_multi_soma_uses_the_named_column():
    df = pd.DataFrame({"root": [7, 7, 8], "pt_root_id": [1, 2, 3]})
    assert drop_multi_soma(df, root_column="root")["root"].tolist() == [8]


# ---- layers

#: bottoms (µm) planted in the synthetic depths below
PLANTED = {"L1": 100.0, "L2/3": 300.0, "L4": 420.0, "L5": 640.0, "L6": 860.0}


def planted_cells(noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Excitatory cells spread evenly in their planted layers, plus glia everywhere."""
    rng = np.random.default_rng(seed)
    tops = {"L2/3": 100.0, "L4": 300.0, "L5": 420.0, "L6": 640.0}
    types = {"L2/3": ["23P"], "L4": ["4P"], "L5": ["5P-IT", "5P-ET"], "L6": ["6P-IT", "6P-CT"]}
    depth, cell_type = [], []
    for layer, top in tops.items():
        n = 2000
        depth.append(rng.uniform(top, PLANTED[layer], n))
        cell_type.append(rng.choice(types[layer], n))
    depth.append(rng.uniform(0, 950, 1000))
    cell_type.append(np.full(1000, "astrocyte"))
    depth, cell_type = np.concatenate(depth), np.concatenate(cell_type)
    flip = rng.random(depth.size) < noise  # classifier noise: a random excitatory label
    cell_type[flip] = rng.choice(["23P", "4P", "5P-IT", "6P-IT"], flip.sum())
    return depth, cell_type


def test_layer_bottoms_recover_planted_boundaries():
    depth, cell_type = planted_cells()
    bottoms = estimate_layer_bottoms(depth, cell_type)
    assert bottoms.index.tolist() == ["L1", "L2/3", "L4", "L5", "L6"]
    # inner boundaries are exact up to the gap between neighbouring cells; the outer ones
    # are 1 % quantiles of a layer ~200 µm thick
    for layer in ("L2/3", "L4", "L5"):
        assert bottoms[layer] == pytest.approx(PLANTED[layer], abs=1.0)
    assert bottoms["L1"] == pytest.approx(PLANTED["L1"], abs=5.0)
    assert bottoms["L6"] == pytest.approx(PLANTED["L6"], abs=5.0)


def test_layer_bottoms_survive_label_noise():
    depth, cell_type = planted_cells(noise=0.02)
    bottoms = estimate_layer_bottoms(depth, cell_type)
    for layer in ("L2/3", "L4", "L5"):
        assert bottoms[layer] == pytest.approx(PLANTED[layer], abs=10.0)


def test_layer_bottoms_need_every_defining_type():
    depth, cell_type = planted_cells()
    keep = cell_type != "4P"
    with pytest.raises(ValueError, match="L4"):
        estimate_layer_bottoms(depth[keep], cell_type[keep])


def test_assign_layer_names_depths_and_white_matter():
    bottoms = pd.Series(PLANTED)
    layers = assign_layer([-5, 50, 100, 100.5, 350, 500, 700, 900], bottoms)
    assert list(layers) == ["L1", "L1", "L1", "L2/3", "L4", "L5", "L6", "WM"]


def test_layers_of_planted_cells_match_their_types():
    depth, cell_type = planted_cells()
    layers = assign_layer(depth, estimate_layer_bottoms(depth, cell_type))
    is_23p = cell_type == "23P"
    assert (np.asarray(layers)[is_23p] == "L2/3").mean() > 0.97


# ---- proofread_cells, through caveclient against the served fixture


def expected_proofread(sample: Served, version: int, status: str) -> pd.DataFrame:
    def read(name: str) -> pd.DataFrame:
        return pq.read_table(sample.ds_dir / f"v{version}/{name}.parquet").to_pandas()

    nuclei = read("nucleus_detection_v0")[["id", "pt_root_id"]]
    types = read("aibs_metamodel_celltypes_v661").merge(
        nuclei, left_on="target_id", right_on="id", suffixes=("", "_nuc")
    )
    counts = types["pt_root_id"].value_counts()
    single = types[types["pt_root_id"].map(counts).eq(1) & types["pt_root_id"].ne(0)]
    proof = read("proofreading_status_and_strategy")
    proof = proof[proof[status]]
    return single.merge(proof[["pt_root_id", "strategy_axon"]], on="pt_root_id")


@pytest.mark.parametrize("axon", [True, False])
def test_proofread_cells_matches_the_tables(client, served, axon):  # noqa: F811
    client.materialize.version = 1300
    got = proofread_cells(client, axon=axon)
    want = expected_proofread(served, 1300, "status_axon" if axon else "status_dendrite")
    assert len(want) > 0
    assert got.columns.tolist() == [
        "nucleus_id",
        "pt_root_id",
        "classification_system",
        "cell_type",
        "strategy_axon",
        "strategy_dendrite",
    ]
    assert got["nucleus_id"].is_monotonic_increasing and got["pt_root_id"].is_unique
    assert sorted(got["nucleus_id"]) == sorted(want["target_id"])
    merged = got.merge(want, left_on="nucleus_id", right_on="target_id")
    assert (merged["cell_type_x"] == merged["cell_type_y"]).all()
    assert (merged["pt_root_id_x"] == merged["pt_root_id_y"]).all()


def test_proofread_axons_are_a_subset_of_proofread_dendrites(client):  # noqa: F811
    client.materialize.version = 1300
    axons = set(proofread_cells(client, axon=True)["nucleus_id"])
    dendrites = set(proofread_cells(client, axon=False)["nucleus_id"])
    assert axons and axons < dendrites
