"""Tests of offline_cave.generator.skeletons: tree invariants, per-type anatomy, clipping, determinism.

Every anatomical check is computed from the grown skeleton (cortical frame, um, y = depth).
"""

from __future__ import annotations

import numpy as np
import pytest

from offline_cave.contract import params
from offline_cave.generator import skeletons as morphology
from offline_cave.generator.skeletons import APICAL, AXON, BASAL, SOMA, Skeleton, grow_skeleton

BOUNDS = params.LAYER_BOUNDS_UM
L1_BOTTOM = BOUNDS["L1"][1]
# a box so large that nothing is clipped (but y >= 0: nothing may exist above the pia)
BIG_MIN = np.array([-5000.0, 0.0, -5000.0])
BIG_MAX = np.array([5000.0, 5000.0, 5000.0])
# typical soma depths (um) per type, inside the type's layer
DEPTH = {"23P": 200.0, "4P": 350.0, "5P-IT": 500.0, "5P-ET": 560.0, "5P-NP": 560.0,
         "6P-IT": 700.0, "6P-CT": 740.0, "BC": 350.0, "MC": 500.0, "BPC": 200.0, "NGC": 50.0}
PYRAMIDAL = params.EXC_TYPES
INTERNEURONS = params.INH_TYPES
SEEDS = range(5)


def grow(cell_type: str, seed: int, depth: float | None = None,
         box_min: np.ndarray = BIG_MIN, box_max: np.ndarray = BIG_MAX) -> Skeleton:
    soma = np.array([0.0, DEPTH[cell_type] if depth is None else depth, 0.0])
    return grow_skeleton(cell_type, soma, np.random.default_rng(seed), BOUNDS, box_min, box_max)


def naive_distance(sk: Skeleton) -> np.ndarray:
    """Reference path distance to the soma: one node at a time (parents come first)."""
    dist = np.zeros(len(sk.parent))
    for i in range(1, len(sk.parent)):
        p = sk.parent[i]
        dist[i] = dist[p] + np.linalg.norm(sk.vertices[i] - sk.vertices[p])
    return dist


# ---------------------------------------------------------------- structure ------------


@pytest.mark.parametrize("cell_type", PYRAMIDAL + INTERNEURONS)
def test_tree_invariants(cell_type: str) -> None:
    for seed in (0, 1):
        sk = grow(cell_type, seed)
        n = len(sk.parent)
        assert sk.vertices.shape == (n, 3) and sk.vertices.dtype == np.float64
        assert sk.parent.dtype == np.int32 and sk.radius.dtype == np.float32
        assert sk.compartment.dtype == np.int8 and len(sk.radius) == len(sk.compartment) == n
        assert sk.parent[0] == -1
        assert np.all(sk.parent[1:] >= 0) and np.all(sk.parent[1:] < np.arange(1, n))
        assert sk.compartment[0] == SOMA and np.all(sk.compartment[1:] != SOMA)
        assert set(np.unique(sk.compartment[1:])) <= {AXON, BASAL, APICAL}
        assert sk.radius[0] == pytest.approx(sk.soma_radius_um)
        lo, hi = (5.0, 7.0) if cell_type in PYRAMIDAL else (4.0, 6.0)
        assert lo <= sk.soma_radius_um <= hi
        assert np.all(sk.radius[1:] > 0.05) and np.all(sk.radius[1:] < 3.0)
        assert np.all(sk.vertices[:, 1] >= 0.0)
        # node spacing: ~3 um on dendrites, ~5 um on axons (soma edges excluded)
        child = np.arange(1, n)[sk.parent[1:] != 0]
        step = np.linalg.norm(sk.vertices[child] - sk.vertices[sk.parent[child]], axis=1)
        comp = sk.compartment[child]
        assert np.median(step[comp == AXON]) == pytest.approx(5.0, rel=0.1)
        assert np.median(step[comp != AXON]) == pytest.approx(3.0, rel=0.1)
        # a neurite never changes compartment except at the soma
        inner = sk.parent[1:] != 0
        assert np.all(sk.compartment[1:][inner] == sk.compartment[sk.parent[1:][inner]])


@pytest.mark.parametrize("cell_type", ["23P", "5P-ET", "MC", "NGC"])
def test_nothing_grows_above_the_pia(cell_type: str) -> None:
    # the box extends 500 um above the pia, so only the growth rules can keep nodes below it
    box_min = np.array([-5000.0, -500.0, -5000.0])
    for seed in SEEDS:
        depth = 15.0 if cell_type == "NGC" else None
        sk = grow(cell_type, seed, depth, box_min=box_min)
        assert sk.vertices[:, 1].min() >= 0.0


def test_deterministic() -> None:
    a = grow("5P-IT", 7)
    b = grow("5P-IT", 7)
    c = grow("5P-IT", 8)
    for field in ("vertices", "parent", "radius", "compartment"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.soma_radius_um == b.soma_radius_um
    assert len(a.parent) != len(c.parent) or not np.allclose(a.vertices, c.vertices)


def test_unknown_cell_type_raises() -> None:
    with pytest.raises(ValueError, match="astrocyte.*23P"):
        grow_skeleton("astrocyte", np.array([0.0, 300.0, 0.0]), np.random.default_rng(0),
                      BOUNDS, BIG_MIN, BIG_MAX)


def test_soma_outside_box_raises() -> None:
    with pytest.raises(ValueError, match="outside the slab box"):
        grow_skeleton("BC", np.array([0.0, 300.0, 0.0]), np.random.default_rng(0), BOUNDS,
                      np.array([100.0, 0.0, 0.0]), np.array([200.0, 880.0, 100.0]))


# ---------------------------------------------------------------- Skeleton methods -----


def test_skeleton_methods_on_a_hand_made_tree() -> None:
    #      0 (soma) -- 1 -- 2 -- 3        edges of length 1, 2, 3 along x
    #                   \-- 4             edge of length 4 along y
    sk = Skeleton(vertices=np.array([[0, 0, 0], [1, 0, 0], [3, 0, 0], [6, 0, 0], [1, 4, 0]],
                                    dtype=float),
                  parent=np.array([-1, 0, 1, 2, 1], dtype=np.int32),
                  radius=np.ones(5, dtype=np.float32),
                  compartment=np.array([1, 3, 3, 3, 2], dtype=np.int8), soma_radius_um=1.0)
    np.testing.assert_allclose(sk.distance_to_soma_um(), [0, 1, 3, 6, 5])
    assert sk.path_length_um() == pytest.approx(10.0)
    assert sk.path_length_um(BASAL) == pytest.approx(6.0)
    assert sk.path_length_um(AXON) == pytest.approx(4.0)
    assert sk.path_length_um(APICAL) == 0.0
    assert sk.n_branch_points() == 1
    assert sk.n_end_points() == 2


def test_distance_to_soma_matches_naive_walk() -> None:
    sk = grow("23P", 3)
    np.testing.assert_allclose(sk.distance_to_soma_um(), naive_distance(sk), rtol=1e-9)
    assert sk.distance_to_soma_um().max() > 300.0


# ---------------------------------------------------------------- anatomy by type ------


@pytest.mark.parametrize("cell_type", ["23P", "4P", "5P-IT", "5P-ET"])
def test_apical_reaches_layer_1_and_tufts_there(cell_type: str) -> None:
    for seed in SEEDS:
        sk = grow(cell_type, seed)
        apical = sk.vertices[sk.compartment == APICAL]
        assert apical[:, 1].min() < L1_BOTTOM
        in_l1 = apical[apical[:, 1] < L1_BOTTOM]
        # a tuft, not just a trunk tip: spread laterally in L1
        assert np.ptp(in_l1[:, 0]) + np.ptp(in_l1[:, 2]) > 60.0


def test_et_tuft_is_bigger_and_trunk_thicker_than_4p() -> None:
    def tuft_length(sk: Skeleton) -> float:
        child = np.arange(1, len(sk.parent))
        sel = (sk.compartment[child] == APICAL) & (sk.vertices[child, 1] < L1_BOTTOM)
        seg = sk.vertices[child[sel]] - sk.vertices[sk.parent[child[sel]]]
        return float(np.linalg.norm(seg, axis=1).sum())

    for seed in SEEDS:
        et, l4 = grow("5P-ET", seed), grow("4P", seed)
        assert tuft_length(et) > 1.5 * tuft_length(l4)
        trunk_r = [sk.radius[sk.compartment == APICAL][0] for sk in (et, l4)]
        assert trunk_r[0] > 1.5 * trunk_r[1]


@pytest.mark.parametrize("cell_type,top,bottom", [("6P-CT", 250.0, 450.0),
                                                   ("6P-IT", 380.0, 640.0)])
def test_layer6_apicals_end_in_l4_or_l5(cell_type: str, top: float, bottom: float) -> None:
    for seed in SEEDS:
        sk = grow(cell_type, seed)
        highest = sk.vertices[sk.compartment == APICAL, 1].min()
        assert top < highest < bottom


@pytest.mark.parametrize("cell_type", PYRAMIDAL)
def test_pyramidal_layout(cell_type: str) -> None:
    for seed in SEEDS:
        sk = grow(cell_type, seed)
        soma = sk.vertices[0]
        basal_roots = np.nonzero((sk.parent == 0) & (sk.compartment == BASAL))[0]
        assert 4 <= len(basal_roots) <= 8
        assert np.count_nonzero((sk.parent == 0) & (sk.compartment == APICAL)) == 1
        basal = sk.vertices[sk.compartment == BASAL]
        radial = np.linalg.norm(basal - soma, axis=1)
        assert 70.0 < np.percentile(radial, 99) < 300.0
        # the main axon leaves downward toward the white matter
        axon_root = np.nonzero((sk.parent == 0) & (sk.compartment == AXON))[0]
        assert len(axon_root) == 1 and sk.vertices[axon_root[0], 1] > soma[1]
        assert sk.vertices[sk.compartment == AXON, 1].max() > BOUNDS["WM"][0]


def test_axon_collaterals_target_the_right_layers() -> None:
    def axon_length_in(sk: Skeleton, layer: str) -> float:
        lo, hi = BOUNDS[layer]
        child = np.arange(1, len(sk.parent))
        sel = ((sk.compartment[child] == AXON) & (sk.vertices[child, 1] >= lo)
               & (sk.vertices[child, 1] < hi))
        seg = sk.vertices[child[sel]] - sk.vertices[sk.parent[child[sel]]]
        return float(np.linalg.norm(seg, axis=1).sum())

    for seed in SEEDS:
        # 4P: ascending collaterals arborise in L2/3; 6P-CT: ascending collaterals in L4
        assert axon_length_in(grow("4P", seed), "L2/3") > 300.0
        assert axon_length_in(grow("6P-CT", seed), "L4") > 300.0
        # 23P: collaterals in L2/3 and in L5 (beyond the straight main axon)
        l23 = grow("23P", seed)
        assert axon_length_in(l23, "L2/3") > 500.0 and axon_length_in(l23, "L5") > 400.0


def test_basket_axon_is_local() -> None:
    for seed in SEEDS:
        sk = grow("BC", seed)
        axon = sk.vertices[sk.compartment == AXON]
        dist = np.linalg.norm(axon - sk.vertices[0], axis=1)
        assert np.mean(dist < 250.0) > 0.9
        lo, hi = BOUNDS["L4"]  # the soma is in L4 at 350 um
        assert np.mean((axon[:, 1] > lo - 60) & (axon[:, 1] < hi + 60)) > 0.6
        dend_roots = np.count_nonzero((sk.parent == 0) & (sk.compartment == BASAL))
        assert 4 <= dend_roots <= 7
        assert sk.n_branch_points() > 100


def test_martinotti_axon_spreads_in_layer_1() -> None:
    for seed in SEEDS:
        sk = grow("MC", seed)
        child = np.arange(1, len(sk.parent))
        sel = (sk.compartment[child] == AXON) & (sk.vertices[child, 1] < L1_BOTTOM)
        seg = sk.vertices[child[sel]] - sk.vertices[sk.parent[child[sel]]]
        assert np.linalg.norm(seg, axis=1).sum() > 1500.0
        l1 = sk.vertices[child[sel]]
        assert np.ptp(l1[:, 0]) > 200.0


def test_bipolar_is_vertical_and_narrow() -> None:
    for seed in SEEDS:
        sk = grow("BPC", seed)
        soma = sk.vertices[0]
        axon = sk.vertices[sk.compartment == AXON]
        lateral = np.linalg.norm((axon - soma)[:, [0, 2]], axis=1)
        assert lateral.max() < 100.0
        assert axon[:, 1].max() - soma[1] > 200.0
        dend = sk.vertices[sk.compartment == BASAL]
        assert dend[:, 1].min() < soma[1] - 80.0 and dend[:, 1].max() > soma[1] + 80.0
        assert np.percentile(np.linalg.norm((dend - soma)[:, [0, 2]], axis=1), 90) < 80.0


def test_neurogliaform_is_small_and_dense() -> None:
    for seed in SEEDS:
        sk = grow("NGC", seed)
        axon = sk.vertices[sk.compartment == AXON]
        assert np.percentile(np.linalg.norm(axon - sk.vertices[0], axis=1), 95) < 150.0
        assert sk.path_length_um(AXON) > 2500.0


# ---------------------------------------------------------------- sizes ----------------


@pytest.mark.parametrize("cell_type", PYRAMIDAL)
def test_pyramidal_sizes(cell_type: str) -> None:
    lo_depth, hi_depth = params.EXC_DEPTH_BANDS[cell_type]
    for seed, depth in zip(SEEDS, np.linspace(lo_depth + 5, hi_depth - 5, len(SEEDS)),
                           strict=True):
        sk = grow(cell_type, seed, depth)
        dendrite = sk.path_length_um(BASAL) + sk.path_length_um(APICAL)
        assert 3000.0 <= dendrite <= 6000.0
        assert 1500.0 <= sk.path_length_um(AXON) <= 6000.0
        assert 1400 <= len(sk.vertices) <= 3500
        assert (25 if cell_type == "5P-NP" else 40) <= sk.n_branch_points() <= 120


@pytest.mark.parametrize("cell_type", INTERNEURONS)
def test_interneuron_sizes(cell_type: str) -> None:
    for seed in SEEDS:
        sk = grow(cell_type, seed)
        assert 1500.0 <= sk.path_length_um(BASAL) <= 3000.0
        assert sk.path_length_um(APICAL) == 0.0
        if cell_type in ("BC", "MC"):
            assert 5000.0 <= sk.path_length_um(AXON) <= 15000.0


# ---------------------------------------------------------------- clipping -------------


def test_clipping_drops_outside_subtrees_only() -> None:
    box_min = np.array([0.0, 0.0, 0.0])
    box_max = np.array([300.0, 880.0, 240.0])
    soma = np.array([20.0, 450.0, 120.0])  # 20 um from the x = 0 face
    full = grow_skeleton("5P-IT", soma, np.random.default_rng(11), BOUNDS, BIG_MIN, BIG_MAX)
    cut = grow_skeleton("5P-IT", soma, np.random.default_rng(11), BOUNDS, box_min, box_max)
    assert len(cut.vertices) < 0.9 * len(full.vertices)
    assert np.all(cut.vertices >= box_min) and np.all(cut.vertices <= box_max)
    assert cut.parent[0] == -1 and np.all(cut.parent[1:] < np.arange(1, len(cut.parent)))

    # reference: keep a node iff it and all its ancestors are inside the box
    inside = np.all((full.vertices >= box_min) & (full.vertices <= box_max), axis=1)
    keep = np.zeros(len(full.parent), bool)
    keep[0] = True
    for i in range(1, len(full.parent)):
        keep[i] = inside[i] and keep[full.parent[i]]
    np.testing.assert_array_equal(cut.vertices, full.vertices[keep])
    np.testing.assert_array_equal(cut.compartment, full.compartment[keep])
    # parents map to the same physical nodes
    kept_ids = np.nonzero(keep)[0]
    np.testing.assert_array_equal(kept_ids[cut.parent[1:]], full.parent[kept_ids[1:]])
    # some nodes were dropped only because an ancestor left the box (whole subtree cut)
    assert np.any(inside & ~keep)


@pytest.mark.parametrize("depth", [1.0, 60.0, 300.0, 700.0, 879.0])
def test_any_type_grows_at_any_depth_in_the_slab(depth: float) -> None:
    box_min = np.array([0.0, 0.0, 0.0])
    box_max = np.array([300.0, 880.0, 240.0])
    rng = np.random.default_rng(int(depth))
    for cell_type in PYRAMIDAL + INTERNEURONS:
        soma = np.array([rng.uniform(0, 300), depth, rng.uniform(0, 240)])
        sk = grow_skeleton(cell_type, soma, rng, BOUNDS, box_min, box_max)
        n = len(sk.parent)
        assert n > 1 and sk.parent[0] == -1
        assert np.all(sk.parent[1:] < np.arange(1, n)) and np.all(sk.parent[1:] >= 0)
        assert np.all(sk.vertices >= box_min) and np.all(sk.vertices <= box_max)
        np.testing.assert_array_equal(sk.vertices[0], soma)


def test_neuron_types_constant() -> None:
    assert morphology.NEURON_TYPES == params.EXC_TYPES + params.INH_TYPES
