"""Cell placement and the segmentation edit history."""

import numpy as np
import pytest

from offline_cave.contract import geometry
from offline_cave.contract.params import EXC_SHARES, MINNIE
from offline_cave.generator import population as cells
from offline_cave.generator import segmentation as segments


@pytest.fixture(scope="module")
def cell_frame():
    return cells.place_cells(MINNIE, geometry.slab_for(MINNIE, 1.0), np.random.default_rng(3))


def test_class_shares_match_the_soma_model(cell_frame):
    typed = cell_frame[cell_frame.cell_class != "false_detection"]
    share = typed.cell_class.value_counts(normalize=True)
    # datasets-facts §2.3: 70.6 % E, 8.7 % I, 20.7 % non-neuronal; tolerance 1.5 points
    assert share["excitatory_neuron"] == pytest.approx(0.706, abs=0.015)
    assert share["inhibitory_neuron"] == pytest.approx(0.087, abs=0.015)
    assert share["nonneuron"] == pytest.approx(0.207, abs=0.015)


def test_excitatory_types_sit_in_their_layers(cell_frame):
    exc = cell_frame[cell_frame.cell_class == "excitatory_neuron"]
    assert set(exc.cell_type) == set(EXC_SHARES)
    assert exc.loc[exc.cell_type == "23P", "layer"].eq("L2/3").all()
    assert exc.loc[exc.cell_type == "4P", "layer"].eq("L4").all()
    assert exc.loc[exc.cell_type == "6P-CT", "layer"].eq("L6").all()
    l1 = cell_frame[(cell_frame.layer == "L1")]
    l1_neurons = l1[l1.cell_class.isin(["excitatory_neuron", "inhibitory_neuron"])]
    assert (l1_neurons.cell_type == "NGC").mean() > 0.8


def test_orientations_have_a_cardinal_bias(cell_frame):
    theta = cell_frame.pref_ori_rad.dropna().to_numpy()
    near_cardinal = np.minimum(theta % (np.pi / 2), np.pi / 2 - theta % (np.pi / 2)) < np.pi / 12
    # uniform would put 1/3 within 15 degrees of 0 or 90 degrees
    assert near_cardinal.mean() > 0.4


def _overlaps(xyz: np.ndarray, radius: np.ndarray) -> int:
    from scipy.spatial import cKDTree
    pairs = cKDTree(xyz).query_pairs(2 * radius.max(), output_type="ndarray")
    gap = np.linalg.norm(xyz[pairs[:, 0]] - xyz[pairs[:, 1]], axis=1)
    return int((gap < radius[pairs[:, 0]] + radius[pairs[:, 1]]).sum())


def test_no_two_cells_overlap(cell_frame):
    neurons = cell_frame[cell_frame.cell_class.isin(["excitatory_neuron", "inhibitory_neuron"])]
    radius = neurons.soma_radius_um.to_numpy()
    assert np.isfinite(radius).all() and radius.min() >= 4.0 and radius.max() <= 7.0
    assert _overlaps(neurons[["x_um", "y_um", "z_um"]].to_numpy(), radius) == 0
    others = cell_frame[cell_frame.cell_class == "nonneuron"]
    assert others.soma_radius_um.isna().all()


def test_separation_moves_only_the_later_of_an_overlapping_pair():
    slab = geometry.slab_for(MINNIE, 1.0)
    rng = np.random.default_rng(1)
    x = np.array([800.0, 803.0, 900.0])
    y = np.array([200.0, 201.0, 300.0])
    z = np.array([850.0, 852.0, 900.0])
    radius = np.array([6.0, 6.0, 6.0])
    assert _overlaps(np.c_[x, y, z], radius) == 1
    nx, ny, nz = cells.separate_somata(x, y, z, radius, slab, 3.0, rng)
    assert (nx[[0, 2]] == x[[0, 2]]).all() and (nz[[0, 2]] == z[[0, 2]]).all()
    assert (ny == y).all()  # a free place at its own depth is found first
    assert (nx[1], nz[1]) != (x[1], z[1])
    assert _overlaps(np.c_[nx, ny, nz], radius) == 0


def test_separation_keeps_cells_in_their_layers_in_a_thin_slab():
    frame = cells.place_cells(MINNIE, geometry.slab_for(MINNIE, 0.05), np.random.default_rng(0))
    neurons = frame[frame.soma_radius_um.notna()]
    assert _overlaps(neurons[["x_um", "y_um", "z_um"]].to_numpy(),
                     neurons.soma_radius_um.to_numpy()) == 0
    assert (frame.layer == geometry.layer_of_depth(frame.depth_um)).all()
    assert (frame.y_um == frame.depth_um).all()


def test_separation_refuses_cells_that_cannot_fit():
    slab = geometry.slab_for(MINNIE, 1.0)
    # 2,000 spheres of 20 um in L4 (109 um deep) of a 294 x 234 um slab: 8.4e6 um^3 of
    # spheres in 7.5e6 um^3, more than the layer holds (a cell may not leave its layer)
    n = 2000
    rng = np.random.default_rng(2)
    x, z = rng.uniform(660, 940, n), rng.uniform(750, 970, n)
    with pytest.raises(RuntimeError, match="still overlap"):
        cells.separate_somata(x, rng.uniform(305, 405, n), z, np.full(n, 10.0), slab, 3.0, rng)


def test_place_cells_refuses_a_tiny_slab():
    with pytest.raises(ValueError, match="larger scale"):
        cells.place_cells(MINNIE, geometry.slab_for(MINNIE, 0.0005), np.random.default_rng(0))


def test_simulate_merge_and_split_lineage():
    t0 = segments.unix("2025-01-13T10:10:01.286229")
    t1 = segments.unix("2026-06-27T14:05:22.813147")
    nucleus = np.array([11, 0, 0, 22, 0])
    edits = [segments.Edit(t0 + 10, "split", [np.array([0]), np.array([3])]),
             segments.Edit(t0 + 20, "merge", [np.array([0]), np.array([1])])]
    hist = segments.simulate(5, [np.array([0, 3])], edits, nucleus, [t0, t1],
                             np.random.default_rng(0))
    before, after = hist.snapshots[t0], hist.snapshots[t1]
    assert before[0] == before[3] and before[0] != before[1]
    assert after[0] == after[1] != after[3]
    assert after[2] == before[2] and after[4] == before[4]  # untouched pieces keep their roots
    roots = hist.roots.set_index("root_id")
    assert roots.loc[after[0], "nucleus_id"] == 11 and roots.loc[after[3], "nucleus_id"] == 22
    assert np.isinf(roots.loc[after[0], "expired"]) and roots.loc[before[0], "expired"] == t0 + 10
    # new roots get larger counters than the ones they replace
    assert after[0] > before[0] and after[3] > before[0]
    lineage = hist.lineage
    split_children = set(lineage.loc[lineage.parent_root_id == before[0], "child_root_id"])
    assert after[3] in split_children and len(split_children) == 2
    merge_parents = set(lineage.loc[lineage.child_root_id == after[0], "parent_root_id"])
    assert merge_parents == {before[1], (split_children - {after[3]}).pop()}
    assert len(lineage) == 4 and lineage.operation_id.nunique() == 2


def test_a_two_soma_root_maps_to_the_nucleus_the_table_lists():
    """The cell served for a merged root is one whose nucleus row names that root."""
    t0 = segments.unix("2025-01-13T10:10:01.286229")
    nucleus = np.array([11, 22, 0, 33, 44])
    groups = [np.array([0, 1]), np.array([3, 4])]
    plain = segments.simulate(5, groups, [], nucleus, [t0], np.random.default_rng(0))
    hidden = segments.simulate(5, groups, [], nucleus, [t0], np.random.default_rng(0),
                               unlisted_nuclei=np.array([11, 33, 44]))
    for hist, expected in ((plain, (11, 33)), (hidden, (22, 33))):
        roots = hist.roots.set_index("root_id")
        snap = hist.snapshots[t0]
        # the smallest listed nucleus wins; with none listed, the smallest of all
        assert (roots.loc[snap[0], "nucleus_id"], roots.loc[snap[3], "nucleus_id"]) == expected
