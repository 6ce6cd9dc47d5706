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


def test_dyad_model_estimates_the_four_dyad_states():
    # cells 0, 1 (group A) and 2 (group B), all 1 um apart: 0<->1 reciprocal, 0->2, 2->1
    a = np.zeros((3, 3), dtype=bool)
    a[0, 1] = a[1, 0] = a[0, 2] = a[2, 1] = True
    d = np.ones((3, 3)) - np.eye(3)
    p_mutual, p_one = N.fit_dyad_model(a, d, [0, 2])
    # one bin, three pairs: one reciprocal, two one-way (forward i<j: 0->2; backward: 2->1)
    assert p_mutual[0, 1] == p_mutual[1, 0] == pytest.approx(1 / 3)
    assert p_one[0, 2] == pytest.approx(1 / 3) and p_one[2, 0] == pytest.approx(1 / 3)
    # by group pair: A-A pairs are reciprocal; the A-B pairs are oriented A -> B
    p_mutual, p_one = N.fit_dyad_model(a, d, [0, 2], groups=["A", "A", "B"])
    assert p_mutual[0, 1] == 1.0 and p_one[0, 1] == p_one[1, 0] == 0.0
    assert p_mutual[0, 2] == 0.0
    assert p_one[0, 2] == p_one[1, 2] == pytest.approx(0.5)  # A -> B: 0->2 of two A-B pairs
    assert p_one[2, 0] == p_one[2, 1] == pytest.approx(0.5)  # B -> A: 2->1
    # pairs outside the bins are never connected
    p_mutual, p_one = N.fit_dyad_model(a, d * 5, [0, 2])
    assert not p_mutual.any() and not p_one.any()
    with pytest.raises(ValueError, match="groups"):
        N.fit_dyad_model(a, d, [0, 2], groups=["A"])


def test_dyad_null_keeps_reciprocity_that_the_distance_null_misses():
    rng = np.random.default_rng(5)
    positions = rng.uniform(0, 300, size=(300, 3))
    distance = N.pairwise_distances(positions)
    # plant reciprocity: each near pair reciprocal w.p. 0.1, one-way w.p. 0.1 per direction
    i, j = np.triu_indices(300, 1)
    u = rng.random(i.size)
    near = distance[i, j] < 100
    mutual = near & (u < 0.1)
    forward = near & (u >= 0.1) & (u < 0.2)
    backward = near & (u >= 0.2) & (u < 0.3)
    a = np.zeros((300, 300), dtype=bool)
    a[i[mutual | forward], j[mutual | forward]] = True
    a[j[mutual | backward], i[mutual | backward]] = True
    edges = [0, 100, 600]
    model = N.fit_dyad_model(a, distance, edges)
    assert model[0][i[near], j[near]].mean() == pytest.approx(0.1, abs=0.01)
    assert model[1][i[near], j[near]].mean() == pytest.approx(0.1, abs=0.01)
    sampled = [N.sample_dyads(model, rng) for _ in range(20)]
    observed = N.reciprocity(a)
    kept = np.mean([N.reciprocity(g)["n_reciprocal"] for g in sampled])
    assert kept == pytest.approx(observed["n_reciprocal"], rel=0.05)
    assert np.mean([g.sum() for g in sampled]) == pytest.approx(a.sum(), rel=0.03)
    assert not any(np.diagonal(g).any() for g in sampled)
    # the distance null (independent directions) expects far fewer reciprocal pairs
    distance_p, _ = N.fit_distance_model(a, distance, edges)
    assert N.reciprocity(a, distance_p)["ratio"] > 1.8


def test_closed_triads_per_cell_and_resampled_ratio():
    # a feed-forward triangle 0->1->2, 0->2, a reciprocal pair 2<->3 and a lone edge 3->4
    a = np.zeros((5, 5), dtype=bool)
    for pre, post in [(0, 1), (1, 2), (0, 2), (2, 3), (3, 2), (3, 4)]:
        a[pre, post] = True
    per_cell = N.closed_triads_per_cell(a)
    assert per_cell.tolist() == [1, 1, 1, 0, 0]
    census = N.triad_census(a)
    assert per_cell.sum() == 3 * census[list(N.CLOSED_TRIADS)].sum()
    rng = np.random.default_rng(6)
    g = N.erdos_renyi(60, 0.2, rng)
    assert N.closed_triads_per_cell(g).sum() == 3 * N.triad_census(g)[
        list(N.CLOSED_TRIADS)].sum()
    expected = np.array([0.5, 0.5, 0.5, 1.0, 1.0])
    assert N.resampled_ratio(per_cell, expected, np.arange(5)) == pytest.approx(3 / 3.5)
    assert N.resampled_ratio(per_cell, expected, np.array([0, 0])) == pytest.approx(2.0)
    assert np.isnan(N.resampled_ratio(per_cell, np.zeros(5), np.arange(5)))


def test_expected_closed_triads_match_the_sampled_null():
    rng = np.random.default_rng(7)
    positions = rng.uniform(0, 200, size=(120, 3))
    distance = N.pairwise_distances(positions)
    a = N.sample_from_probabilities(np.where(distance < 80, 0.15, 0.02), rng)
    model = N.fit_dyad_model(a, distance, [0, 80, 400])
    expected = N.expected_closed_triads_per_cell(model)
    sampled = np.mean([N.closed_triads_per_cell(N.sample_dyads(model, rng)).sum()
                       for _ in range(40)])
    assert expected.sum() == pytest.approx(sampled, rel=0.05)
    # a hand-checked case: three cells, every pair connected with probability 0.5
    p_mutual = np.full((3, 3), 0.25) - 0.25 * np.eye(3)
    p_one = np.full((3, 3), 0.125) - 0.125 * np.eye(3)
    assert N.expected_closed_triads_per_cell((p_mutual, p_one)).tolist() == \
        pytest.approx([0.125] * 3)


def test_expected_closed_triads_of_erdos_renyi():
    # Erdos-Renyi: a pair is connected with q = 2p - p^2; a cell is in C(n-1, 2) triads
    n, p = 50, 0.1
    probability = np.full((n, n), p)
    np.fill_diagonal(probability, 0)
    q = 2 * p - p * p
    expected = N.expected_closed_triads_per_cell(probability)
    assert expected == pytest.approx(np.full(n, comb(n - 1, 2) * q**3))
    rng = np.random.default_rng(8)
    sampled = np.mean([N.closed_triads_per_cell(N.erdos_renyi(n, p, rng)).mean()
                       for _ in range(200)])
    assert sampled == pytest.approx(expected[0], rel=0.05)
