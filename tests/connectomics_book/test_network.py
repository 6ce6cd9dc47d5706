"""Tests of ``connectomics_book.network`` on small graphs with known answers."""

from __future__ import annotations

from math import comb

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from connectomics_book import network as N


def _synapses() -> pd.DataFrame:
    """Seven synapses among cells 10, 20, 30: 10->20 x3, 20->10 x1, 20->30 x2, 30->30 x1."""
    return pd.DataFrame({
        "pre_pt_root_id": [10, 10, 10, 20, 20, 20, 30],
        "post_pt_root_id": [20, 20, 20, 10, 30, 30, 30],
        "size": [100, 200, 600, 50, 40, 80, 70],
    })


def test_condense_counts_and_sizes():
    condensed = N.condense(_synapses())
    assert condensed.index.names == ["pre", "post"]
    assert condensed.loc[(10, 20)].tolist() == [3, 900.0, 300.0]
    assert condensed.loc[(20, 10)].tolist() == [1, 50.0, 50.0]
    assert condensed.loc[(20, 30)].tolist() == [2, 120.0, 60.0]
    assert len(condensed) == 4 and condensed["n_synapses"].sum() == 7


def test_full_condensed_full_round_trip():
    full = _synapses()
    condensed = N.condense(full)
    back = N.expand(condensed)
    # the multiset of (pre, post) edges comes back exactly
    original = sorted(zip(full["pre_pt_root_id"], full["post_pt_root_id"], strict=True))
    assert sorted(zip(back["pre"], back["post"], strict=True)) == original
    # condensed -> full -> condensed is exact, sizes included (sum and mean kept)
    pd.testing.assert_frame_equal(N.condense(back, pre="pre", post="post"), condensed)


def test_digraph_round_trip_and_graphml(tmp_path):
    condensed = N.condense(_synapses())
    nodes = pd.DataFrame({"cell_type": ["23P", "BC", "4P", "23P"],
                          "x_um": [1.0, 2.0, 3.0, 4.0]}, index=[10, 20, 30, 40])
    graph = N.to_digraph(condensed, nodes)
    assert graph.number_of_nodes() == 4 and graph.number_of_edges() == 4
    assert graph.nodes[40]["cell_type"] == "23P" and graph.degree(40) == 0
    assert graph.edges[10, 20]["n_synapses"] == 3
    edges, node_table = N.from_digraph(graph)
    pd.testing.assert_frame_equal(edges, condensed)
    pd.testing.assert_frame_equal(node_table, nodes)
    path = tmp_path / "graph.graphml"
    nx.write_graphml(graph, path)
    loaded = nx.read_graphml(path, node_type=int)
    edges_loaded, nodes_loaded = N.from_digraph(loaded)
    pd.testing.assert_frame_equal(edges_loaded, condensed, check_dtype=False)
    pd.testing.assert_frame_equal(nodes_loaded, nodes)


def test_adjacency_matrix_drops_autapses_and_outsiders():
    condensed = N.condense(_synapses())
    a = N.adjacency_matrix(condensed, [10, 20])
    assert a.tolist() == [[False, True], [True, False]]
    full = N.adjacency_matrix(condensed, [10, 20, 30])
    assert full.sum() == 3 and not full[2, 2]
    with pytest.raises(ValueError, match="unique"):
        N.adjacency_matrix(condensed, [10, 10])


def test_reciprocity_of_a_hand_built_graph():
    a = np.zeros((3, 3), dtype=bool)
    a[0, 1] = a[1, 0] = a[1, 2] = True  # one reciprocal pair, one single edge
    r = N.reciprocity(a)
    assert r["n_edges"] == 3 and r["n_reciprocal"] == 1
    assert r["density"] == pytest.approx(0.5)
    assert r["expected"] == pytest.approx(0.25 * 3)  # p^2 per unordered pair, 3 pairs
    # a probability matrix: sum over unordered pairs of P_ij * P_ji
    p = np.full((3, 3), 0.5)
    np.fill_diagonal(p, 0)
    p[0, 1] = 1.0
    assert N.reciprocity(a, p)["expected"] == pytest.approx(0.5 + 0.25 + 0.25)
    with pytest.raises(ValueError, match="self-loops"):
        N.reciprocity(np.eye(3, dtype=bool))


def test_erdos_renyi_reciprocity_is_p_squared():
    rng = np.random.default_rng(0)
    n, p = 400, 0.1
    ratios = [N.reciprocity(N.erdos_renyi(n, p, rng))["ratio"] for _ in range(5)]
    # expected ~798 reciprocal pairs (sd ~28 per graph): the mean ratio of 5 within 5 %
    assert abs(np.mean(ratios) - 1.0) < 0.05, ratios
    assert abs(N.reciprocity(N.erdos_renyi(n, p, rng))["density"] - p) < 0.005


@pytest.mark.parametrize("edges, triad", [
    ([], "003"),
    ([(0, 1)], "012"),
    ([(0, 1), (1, 0)], "102"),
    ([(0, 1), (0, 2)], "021D"),
    ([(1, 0), (2, 0)], "021U"),
    ([(0, 1), (1, 2)], "021C"),
    ([(0, 1), (1, 2), (2, 0)], "030C"),
    ([(0, 1), (1, 2), (0, 2)], "030T"),
    ([(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)], "300"),
])
def test_triad_census_of_three_cells(edges, triad):
    a = np.zeros((3, 3), dtype=bool)
    for i, j in edges:
        a[i, j] = True
    census = N.triad_census(a)
    assert list(census.index) == list(N.TRIAD_TYPES)
    assert census[triad] == 1 and census.sum() == 1


def test_triad_census_sums_to_all_triples():
    rng = np.random.default_rng(1)
    a = N.erdos_renyi(30, 0.2, rng)
    census = N.triad_census(a)
    assert census.sum() == comb(30, 3)
    # a feed-forward chain of 4 cells: 0->1->2->3
    chain = np.zeros((4, 4), dtype=bool)
    chain[[0, 1, 2], [1, 2, 3]] = True
    c = N.triad_census(chain)
    assert c["021C"] == 2 and c["012"] == 2 and c.sum() == 4


@pytest.mark.parametrize("seed", [5, 6])
def test_triad_census_matches_networkx(seed):
    rng = np.random.default_rng(seed)
    a = N.erdos_renyi(40, 0.15, rng)
    a[:10, :10] |= a[:10, :10].T  # a reciprocal core, so every class occurs
    np.fill_diagonal(a, False)
    expected = nx.triadic_census(nx.from_numpy_array(a.astype(int), create_using=nx.DiGraph))
    census = N.triad_census(a)
    assert census.to_dict() == {t: expected[t] for t in N.TRIAD_TYPES}
    assert (census > 0).sum() >= 14


def test_degree_preserving_shuffle_keeps_degrees():
    rng = np.random.default_rng(2)
    a = N.erdos_renyi(60, 0.1, rng)
    a |= a.T  # every edge reciprocal: the shuffle must destroy most reciprocity
    np.fill_diagonal(a, False)
    shuffled = N.degree_preserving_shuffle(a, rng)
    assert (shuffled.sum(axis=0) == a.sum(axis=0)).all()
    assert (shuffled.sum(axis=1) == a.sum(axis=1)).all()
    assert not np.diagonal(shuffled).any()
    assert (shuffled != a).sum() > 0.5 * a.sum()  # most edges moved
    before = N.reciprocity(a)["n_reciprocal"]
    after = N.reciprocity(shuffled)["n_reciprocal"]
    assert before == a.sum() // 2 and after < 0.3 * before


def test_distance_model_recovers_planted_probabilities():
    rng = np.random.default_rng(3)
    positions = rng.uniform(0, 300, size=(300, 3))
    distance = N.pairwise_distances(positions)
    assert distance[0, 1] == pytest.approx(np.linalg.norm(positions[0] - positions[1]))
    planted = np.where(distance < 100, 0.3, 0.05)
    np.fill_diagonal(planted, 0)
    a = N.sample_from_probabilities(planted, rng)
    probability, table = N.fit_distance_model(a, distance, [0, 100, 600])
    assert table["probability"].tolist() == pytest.approx([0.3, 0.05], abs=0.01)
    assert table["n_pairs"].sum() == 300 * 299
    # reciprocity of a graph drawn from the model is what the model expects
    r = N.reciprocity(a, probability)
    assert abs(r["ratio"] - 1) < 0.1, r
    # ... while Erdos-Renyi at the same density sees over-representation from distance alone
    assert N.reciprocity(a)["ratio"] > 1.3


def test_resampled_reciprocity_and_bootstrap():
    rng = np.random.default_rng(4)
    a = N.erdos_renyi(200, 0.1, rng)
    identity = np.arange(200)
    assert N.resampled_reciprocity(a, identity) == pytest.approx(N.reciprocity(a)["ratio"])
    p = np.full((200, 200), 0.1)
    np.fill_diagonal(p, 0)
    assert N.resampled_reciprocity(a, identity, p) == pytest.approx(
        N.reciprocity(a, p)["ratio"])
    # copies of one cell never count as a pair: a resample of one cell twice has no pairs
    assert np.isnan(N.resampled_reciprocity(a, np.array([5, 5])))
    boot = N.bootstrap_cells(lambda cells: N.resampled_reciprocity(a, cells), 200, 100, rng)
    low, high = np.percentile(boot, [2.5, 97.5])
    assert low < 1.0 < high and high - low < 0.6


def test_connection_probability_by_distance_counts():
    a = np.zeros((3, 3), dtype=bool)
    a[0, 1] = True
    d = np.array([[0, 1, 5], [1, 0, 5], [5, 5, 0]], dtype=float)
    table = N.connection_probability_by_distance(a, d, [0, 2, 10])
    assert table["n_pairs"].tolist() == [2, 4]
    assert table["n_connected"].tolist() == [1, 0]
    assert table["probability"].tolist() == [0.5, 0.0]
