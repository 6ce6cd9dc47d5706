"""connectomics_book.skeletons: skeleton dicts -> navis/meshparty, distances, attachment."""

from __future__ import annotations

import numpy as np
import pytest

from connectomics_book.skeletons import (
    COMPARTMENTS,
    attach_to_skeleton,
    decimate_mesh,
    nearest_vertex,
    parent_indices,
    path_distance_to_root,
    proximal_pairs,
    skeleton_to_meshparty,
    skeleton_to_treeneuron,
)


def y_skeleton(root: int = 0, flip: bool = False) -> dict:
    """A soma (root, 5 um radius) with a 6 um dendrite forking into two 4 um branches, and an
    8 um axon.

    Vertices in nm like the skeleton service; ``root`` moves the soma to another index and
    ``flip`` swaps the order of every edge pair.
    """
    vertices = np.array(
        [
            [0, 0, 0],  # soma
            [0, 6000, 0],  # dendrite
            [4000, 6000, 0],  # branch a
            [-4000, 6000, 0],  # branch b
            [0, -8000, 0],  # axon
        ],
        dtype=float,
    )
    edges = np.array([[1, 0], [2, 1], [3, 1], [4, 0]])
    compartment = np.array([1, 3, 3, 3, 2])
    radius = np.array([5000.0, 500, 300, 300, 100])
    order = np.arange(5)
    if root:
        order[[0, root]] = order[[root, 0]]  # swap soma and vertex `root`
    inverse = np.argsort(order)
    sk = {
        "vertices": vertices[order],
        "edges": inverse[edges][:, ::-1] if flip else inverse[edges],
        "root": int(inverse[0]),
        "radius": radius[order],
        "compartment": compartment[order],
        "meta": {"root_id": 42},
    }
    return sk


def test_compartment_codes_are_the_swc_ones():
    assert COMPARTMENTS == {1: "soma", 2: "axon", 3: "basal dendrite", 4: "apical dendrite"}


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("root", [0, 3])
def test_parents_point_towards_the_soma_whatever_the_edge_order(root, flip):
    sk = y_skeleton(root=root, flip=flip)
    parents = parent_indices(sk)
    assert parents[sk["root"]] == -1
    soma = sk["vertices"][sk["root"]]
    distance = np.linalg.norm(sk["vertices"] - soma, axis=1)
    for child, parent in enumerate(parents):
        if parent >= 0:  # every step goes one edge closer to the soma
            assert path_distance_to_root(sk)[parent] < path_distance_to_root(sk)[child]
    assert (parents >= 0).sum() == 4 and distance.max() > 0


def test_path_distance_follows_the_tree():
    sk = y_skeleton()
    np.testing.assert_allclose(path_distance_to_root(sk), [0, 6000, 10000, 10000, 8000])


def test_disconnected_or_malformed_skeletons_are_rejected():
    sk = y_skeleton()
    broken = dict(sk, edges=np.array([[1, 0], [2, 1], [3, 1], [2, 3]]))  # 4 unreachable
    with pytest.raises(ValueError, match="not connected"):
        parent_indices(broken)
    with pytest.raises(ValueError, match="edges"):
        parent_indices(dict(sk, edges=sk["edges"][:2]))
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        parent_indices(dict(sk, vertices=sk["vertices"][:, :2]))


def test_treeneuron_keeps_vertex_order_compartments_and_lengths():
    sk = y_skeleton(root=3, flip=True)
    neuron = skeleton_to_treeneuron(sk)
    nodes = neuron.nodes.sort_values("node_id")
    assert nodes["node_id"].tolist() == list(range(5))
    np.testing.assert_array_equal(nodes["compartment"], sk["compartment"])
    np.testing.assert_allclose(nodes[["x", "y", "z"]], sk["vertices"])
    assert nodes.loc[nodes["parent_id"] < 0, "node_id"].tolist() == [sk["root"]]
    assert neuron.cable_length == pytest.approx(6000 + 4000 + 4000 + 8000)
    assert neuron.n_branches == 1 and neuron.n_leafs == 3
    assert str(neuron.units) == "1 nanometer"
    assert neuron.name == 42


def test_treeneuron_in_um_scales_radius_with_the_positions():
    sk = y_skeleton()
    neuron = skeleton_to_treeneuron(sk, vertices=sk["vertices"] / 1000, units="um")
    assert neuron.cable_length == pytest.approx(22.0)
    assert neuron.nodes.sort_values("node_id")["radius"].iloc[0] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="shape"):
        skeleton_to_treeneuron(sk, vertices=sk["vertices"][:3])


def test_meshparty_skeleton_agrees_with_the_dict():
    sk = y_skeleton(root=2)
    mp = skeleton_to_meshparty(sk)
    np.testing.assert_allclose(mp.vertices, sk["vertices"])
    assert int(mp.root) == sk["root"]
    np.testing.assert_array_equal(mp.vertex_properties["compartment"], sk["compartment"])
    np.testing.assert_allclose(mp.distance_to_root, path_distance_to_root(sk))
    assert mp.path_length() == pytest.approx(22000.0)


def test_nearest_vertex_returns_index_and_distance():
    vertices = np.array([[0, 0, 0], [10, 0, 0], [20, 0, 0]], dtype=float)
    index, distance = nearest_vertex(vertices, [[11, 1, 0], [-3, 0, 4]])
    assert index.tolist() == [1, 0]
    np.testing.assert_allclose(distance, [np.sqrt(2), 5])
    empty_index, empty_distance = nearest_vertex(vertices, np.zeros((0, 3)))
    assert empty_index.shape == (0,) and empty_distance.shape == (0,)


def test_synapses_on_the_soma_attach_to_the_root():
    sk = y_skeleton()
    # on the soma surface (5 um radius), 1 um from the dendrite's first vertex
    on_soma = [0, 5000, 0]
    on_branch = [4000, 6500, 0]
    beyond_soma = [0, -8500, 0]  # past the axon vertex, outside radius + margin
    index, distance = attach_to_skeleton(sk, [on_soma, on_branch, beyond_soma])
    assert index.tolist() == [sk["root"], 2, 4]
    np.testing.assert_allclose(distance, [5000, 500, 500])
    plain, _ = nearest_vertex(sk["vertices"], [on_soma])
    assert plain.tolist() == [1]  # what a plain nearest-vertex lookup would have said


def test_decimate_mesh_coarsens_without_degenerate_faces():
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=4, radius=10.0)
    same_v, same_f = decimate_mesh(sphere.vertices, sphere.faces, cell_size=1e-6)
    assert len(same_v) == len(sphere.vertices) and len(same_f) == len(sphere.faces)
    coarse_v, coarse_f = decimate_mesh(sphere.vertices, sphere.faces, cell_size=4.0)
    assert 10 < len(coarse_v) < len(sphere.vertices) / 4
    assert coarse_f.max() < len(coarse_v)
    assert (coarse_f[:, 0] != coarse_f[:, 1]).all() and (coarse_f[:, 1] != coarse_f[:, 2]).all()
    assert len(np.unique(np.sort(coarse_f, axis=1), axis=0)) == len(coarse_f)
    radius = np.linalg.norm(coarse_v, axis=1)
    assert radius.max() <= 10.0 + 1e-9 and radius.min() > 5.0
    with pytest.raises(ValueError, match="positive"):
        decimate_mesh(sphere.vertices, sphere.faces, cell_size=0)


def arbor(origin_nm, axon_direction, dendrite_direction, n=5, spacing_nm=2000.0) -> dict:
    """A soma at ``origin_nm`` with a straight axon and a straight dendrite of ``n`` vertices."""
    origin = np.asarray(origin_nm, dtype=float)
    steps = spacing_nm * np.arange(1, n + 1)[:, None]
    axon = origin + steps * np.asarray(axon_direction, dtype=float)
    dendrite = origin + steps * np.asarray(dendrite_direction, dtype=float)
    vertices = np.vstack([origin, axon, dendrite])
    edges = [(i, i - 1) for i in range(2, n + 1)] + [(1, 0), (n + 1, 0)]
    edges += [(i, i - 1) for i in range(n + 2, 2 * n + 1)]
    return {"vertices": vertices, "edges": np.array(edges), "root": 0,
            "radius": np.full(len(vertices), 100.0),
            "compartment": np.array([1] + [2] * n + [3] * n)}


def test_proximal_pairs_counts_axon_vertices_near_dendrites_in_one_direction():
    # cell 1's axon runs along +x to 10 um; cell 2's dendrite runs along +x 3 um above it,
    # starting 4 um out, while cell 2's axon goes away (-y) and cell 1's dendrite too (-z)
    cell_1 = arbor([0, 0, 0], [1, 0, 0], [0, 0, -1])
    cell_2 = arbor([2000, 3000, 0], [0, 1, 0], [1, 0, 0])
    cell_3 = arbor([500_000, 0, 0], [1, 0, 0], [0, 1, 0])  # far from both
    pairs = proximal_pairs({1: cell_1, 2: cell_2, 3: cell_3}, radius_nm=5000)
    assert pairs[["pre_pt_root_id", "post_pt_root_id"]].values.tolist() == [[1, 2]]
    # axon vertices at x = 2..10 um, y = 0; dendrite of 2 (soma included) at x = 2..12, y = 3
    assert pairs["n_axon_vertices"].tolist() == [5]
    # a radius below the 3 um gap finds nothing
    assert proximal_pairs({1: cell_1, 2: cell_2}, radius_nm=2900).empty


def test_proximal_pairs_never_pairs_a_cell_with_itself_and_handles_no_axon():
    cell = arbor([0, 0, 0], [1, 0, 0], [1, 0, 0])  # axon on top of its own dendrite
    assert proximal_pairs({7: cell}).empty
    no_axon = dict(cell, compartment=np.array([1] + [3] * 10))
    pairs = proximal_pairs({7: cell, 8: no_axon})
    assert pairs[["pre_pt_root_id", "post_pt_root_id"]].values.tolist() == [[7, 8]]
    assert proximal_pairs({}).columns.tolist() == ["pre_pt_root_id", "post_pt_root_id",
                                                   "n_axon_vertices"]
