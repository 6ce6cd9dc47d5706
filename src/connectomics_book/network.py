"""The connectome as a graph: full and condensed edge lists, reciprocity, triads, null models.

A synapse table (one row per synapse, ``pre_pt_root_id``, ``post_pt_root_id``, ``size``) is
the *full* representation of a connectome: one edge per synapse. The *condensed*
representation has one edge per connected ordered pair of cells, with its number of synapses
and the sum and mean of their sizes (the two forms of the Connectome-utilities release of
MICrONS). :func:`condense` and :func:`expand` convert between them; :func:`to_digraph` and
:func:`from_digraph` between a condensed edge table and a ``networkx.DiGraph``.

The statistics work on a boolean adjacency matrix ``adjacency[i, j]`` = "cell i makes at
least one synapse onto cell j" (no self-loops):

* :func:`reciprocity` counts reciprocal (bidirectionally connected) pairs and compares them
  with a null model: Erdos-Renyi of the same density (``p**2`` per unordered pair), or any
  matrix of connection probabilities (the expected count of a model with independent
  directions is the sum over unordered pairs of ``P[i, j] * P[j, i]``);
* :func:`triad_census` counts the 16 classes of three-cell subgraphs (``networkx``'s MAN
  labels, :data:`TRIAD_TYPES`);
* null graphs: :func:`erdos_renyi`, :func:`degree_preserving_shuffle` (directed edge swaps
  that keep every in- and out-degree) and :func:`sample_from_probabilities` with the
  distance-dependent model of :func:`fit_distance_model`, and :func:`sample_dyads` with
  :func:`fit_dyad_model`, which keeps the reciprocal pairs too (by distance and layer);
* :func:`closed_triads_per_cell` counts each cell's triangles, for a ratio over cells
  (:func:`resampled_ratio`);
* :func:`bootstrap_cells` resamples cells (the unit of replication) with replacement.

Distances are in the unit of the positions given (the pages use µm).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import networkx as nx
import numpy as np
import pandas as pd
from scipy import sparse

from connectomics_book.cortex import add_cortical_position
from connectomics_book.selection import (
    CELL_TYPE_TABLE,
    LAYER_TYPES,
    assign_layer,
    drop_multi_soma,
    estimate_layer_bottoms,
    proofread_cells,
)

#: The 16 triad classes (Holland and Leinhardt's MAN labels: mutual, asymmetric, null
#: dyads), in networkx's order. ``003`` is the empty triad, ``300`` three reciprocal pairs.
TRIAD_TYPES: tuple[str, ...] = (
    "003", "012", "102", "021D", "021U", "021C", "111D", "111U",
    "030T", "030C", "201", "120D", "120U", "120C", "210", "300",
)
#: Columns of a condensed edge table (index: ``pre``, ``post``).
CONDENSED_COLUMNS: tuple[str, ...] = ("n_synapses", "size_sum", "size_mean")
#: The triad classes whose three pairs are all connected (triangles of the undirected graph).
CLOSED_TRIADS: tuple[str, ...] = ("030T", "030C", "120D", "120U", "120C", "210", "300")


# --- full <-> condensed ---------------------------------------------------------------------
def condense(
    synapse_df: pd.DataFrame,
    pre: str = "pre_pt_root_id",
    post: str = "post_pt_root_id",
    size: str = "size",
) -> pd.DataFrame:
    """One row per connected ordered pair: ``n_synapses``, ``size_sum``, ``size_mean``.

    ``synapse_df`` is the full representation (one row per synapse). The result is indexed by
    (``pre``, ``post``) named ``pre`` and ``post``, sorted. Sizes are in the table's unit
    (voxels for ``synapses_pni_2``). Per-synapse sizes are summarised, not kept.
    """
    grouped = synapse_df.groupby([pre, post], sort=True)[size]
    out = pd.DataFrame({
        "n_synapses": grouped.size().astype(np.int64),
        "size_sum": grouped.sum().astype(np.float64),
    })
    out["size_mean"] = out["size_sum"] / out["n_synapses"]
    out.index = out.index.set_names(["pre", "post"])
    return out


def expand(condensed_df: pd.DataFrame, size: str = "size") -> pd.DataFrame:
    """The full representation of a condensed table: ``n_synapses`` rows per pair.

    Columns ``pre``, ``post`` and ``size`` (each synapse gets the pair's ``size_mean``,
    so :func:`condense` of the result gives back ``condensed_df``). The individual sizes
    of the original synapses are not recoverable from a condensed table.
    """
    n = condensed_df["n_synapses"].to_numpy(np.int64)
    pairs = condensed_df.index.to_frame(index=False)
    return pd.DataFrame({
        "pre": np.repeat(pairs.iloc[:, 0].to_numpy(), n),
        "post": np.repeat(pairs.iloc[:, 1].to_numpy(), n),
        size: np.repeat(condensed_df["size_mean"].to_numpy(np.float64), n),
    })


# --- networkx -------------------------------------------------------------------------------
def to_digraph(condensed_df: pd.DataFrame, node_df: pd.DataFrame | None = None) -> nx.DiGraph:
    """A DiGraph with one edge per row of ``condensed_df`` and its columns as attributes.

    ``node_df`` (indexed by the same ids as the edges) adds every one of its rows as a node
    with its columns as node attributes, connected or not; edges between ids missing from
    ``node_df`` are kept (their nodes get no attributes).
    """
    graph = nx.DiGraph()
    if node_df is not None:
        graph.add_nodes_from(
            (int(i) if isinstance(i, np.integer) else i, row)
            for i, row in zip(node_df.index, node_df.to_dict("records"), strict=True)
        )
    columns = list(condensed_df.columns)
    for (a, b), values in zip(condensed_df.index, condensed_df.itertuples(index=False),
                              strict=True):
        graph.add_edge(int(a), int(b), **{c: _py(v) for c, v in zip(columns, values,
                                                                    strict=True)})
    return graph


def _py(value):
    """A numpy scalar as the Python scalar (GraphML and JSON writers need these)."""
    return value.item() if isinstance(value, np.generic) else value


def from_digraph(graph: nx.DiGraph) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(condensed edge table, node table) of a DiGraph made by :func:`to_digraph`.

    Both sorted by id; the edge table is indexed (``pre``, ``post``), the node table by id.
    """
    edges = pd.DataFrame(
        [{"pre": a, "post": b, **data} for a, b, data in graph.edges(data=True)],
        columns=["pre", "post", *CONDENSED_COLUMNS],
    )
    edges = edges.set_index(["pre", "post"]).sort_index()
    nodes = pd.DataFrame.from_dict(dict(graph.nodes(data=True)), orient="index").sort_index()
    return edges, nodes


def adjacency_matrix(condensed_df: pd.DataFrame, ids: Sequence) -> np.ndarray:
    """Boolean (n, n) matrix: True at [i, j] if ``ids[i]`` connects onto ``ids[j]``.

    Edges touching ids outside ``ids`` are ignored; self-loops (autapses) are dropped.
    """
    ids = pd.Index(ids)
    if not ids.is_unique:
        raise ValueError("ids must be unique")
    pre = ids.get_indexer(condensed_df.index.get_level_values(0))
    post = ids.get_indexer(condensed_df.index.get_level_values(1))
    keep = (pre >= 0) & (post >= 0) & (pre != post)
    adjacency = np.zeros((len(ids), len(ids)), dtype=bool)
    adjacency[pre[keep], post[keep]] = True
    return adjacency


# --- statistics ------------------------------------------------------------------------------
def _check_adjacency(adjacency: np.ndarray) -> np.ndarray:
    a = np.asarray(adjacency, dtype=bool)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"adjacency must be square, got shape {a.shape}")
    if np.any(np.diagonal(a)):
        raise ValueError("adjacency has self-loops; drop autapses first")
    return a


def reciprocity(adjacency: np.ndarray, probability: np.ndarray | None = None) -> dict:
    """Reciprocal pairs observed and expected under a null model of independent directions.

    Without ``probability`` the null is Erdos-Renyi with the observed density ``p``: each
    unordered pair is reciprocal with probability ``p**2``. With ``probability`` (an (n, n)
    matrix of connection probabilities, e.g. :func:`fit_distance_model`'s), the expected
    count is ``sum_{i<j} P[i, j] * P[j, i]``.

    Returns ``n_cells``, ``n_edges`` (connected ordered pairs), ``density``,
    ``n_reciprocal`` (unordered pairs connected both ways), ``expected`` and
    ``ratio`` = observed / expected (NaN when nothing is expected).
    """
    a = _check_adjacency(adjacency)
    n = a.shape[0]
    n_edges = int(a.sum())
    density = n_edges / (n * (n - 1)) if n > 1 else float("nan")
    n_reciprocal = int(np.triu(a & a.T, 1).sum())
    if probability is None:
        expected = density**2 * n * (n - 1) / 2 if n > 1 else 0.0
    else:
        p = np.asarray(probability, dtype=float)
        if p.shape != a.shape:
            raise ValueError(f"probability has shape {p.shape}, adjacency {a.shape}")
        expected = float(np.triu(p * p.T, 1).sum())
    return {
        "n_cells": n,
        "n_edges": n_edges,
        "density": density,
        "n_reciprocal": n_reciprocal,
        "expected": float(expected),
        "ratio": n_reciprocal / expected if expected > 0 else float("nan"),
    }


def triad_census(adjacency: np.ndarray) -> pd.Series:
    """Counts of the 16 triad classes (:data:`TRIAD_TYPES`) of a directed graph.

    The same counts as ``networkx.triadic_census`` (the tests compare them), computed with
    matrix products in the manner of Moody (1998): with ``M`` the mutual dyads, ``D`` the
    asymmetric ones (i -> j only), ``U = D.T`` and ``E`` the null dyads, a class whose three
    dyads (i, j), (j, k), (i, k) are X, Y, Z occurs ``sum((X @ Y) * Z) / s`` times, ``s`` the
    number of labellings of one triad that fit (``003`` is what is left of all triples).
    With sparse matrices this takes milliseconds for a few hundred sparsely connected cells,
    where networkx takes seconds: it matters for the hundreds of null graphs of a motif
    analysis.
    """
    a = _check_adjacency(adjacency)
    n = a.shape[0]
    # M, D, U sparse (connectomes are sparse), E dense; float32 counts are exact (< 2**24)
    m = sparse.csr_matrix(a & a.T, dtype=np.float32)
    d = sparse.csr_matrix(a & ~a.T, dtype=np.float32)
    u = d.T.tocsr()
    e = (~a & ~a.T).astype(np.float32)
    np.fill_diagonal(e, 0.0)
    products: dict[tuple[int, int], object] = {}

    def count(x, y, z, labellings):
        if x is e:  # only 003: found by subtraction below (the one dense product)
            return 0.0
        key = (id(x), id(y))
        if key not in products:
            products[key] = x @ y  # sparse @ sparse -> sparse; sparse @ dense -> dense
        xy = products[key]
        if sparse.issparse(xy):
            total = xy.multiply(z).sum()
        elif sparse.issparse(z):
            total = z.multiply(xy).sum()
        else:
            total = np.sum(np.asarray(xy) * z, dtype=np.float64)
        return float(total) / labellings

    census = {
        "003": count(e, e, e, 6), "012": count(d, e, e, 1), "102": count(m, e, e, 2),
        "021D": count(d, e, d, 2), "021U": count(u, e, u, 2), "021C": count(d, d, e, 1),
        "111D": count(m, u, e, 1), "111U": count(m, d, e, 1), "030T": count(d, d, d, 1),
        "030C": count(d, d, u, 3), "201": count(m, m, e, 2), "120D": count(d, m, d, 2),
        "120U": count(u, m, u, 2), "120C": count(d, d, m, 1), "210": count(d, m, m, 1),
        "300": count(m, m, m, 6),
    }
    out = pd.Series({t: round(census[t]) for t in TRIAD_TYPES}, name="count", dtype=np.int64)
    out["003"] = n * (n - 1) * (n - 2) // 6 - out.sum()  # every triple is in one class
    return out


# --- null models -----------------------------------------------------------------------------
def erdos_renyi(n: int, density: float, rng: np.random.Generator) -> np.ndarray:
    """A directed Erdos-Renyi graph: every ordered pair connected with ``density``."""
    a = rng.random((n, n)) < density
    np.fill_diagonal(a, False)
    return a


def sample_from_probabilities(probability: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A graph with every ordered pair (i, j) connected independently with ``P[i, j]``."""
    a = rng.random(probability.shape) < probability
    np.fill_diagonal(a, False)
    return a


def degree_preserving_shuffle(
    adjacency: np.ndarray, rng: np.random.Generator, swaps_per_edge: float = 10.0
) -> np.ndarray:
    """Randomise a directed graph keeping every cell's in- and out-degree.

    Repeated double-edge swaps: two edges a->b and c->d become a->d and c->b, unless that
    would create a self-loop or an edge that already exists (then the swap is skipped).
    About ``swaps_per_edge`` swaps are tried per edge (Maslov and Sneppen's null model).
    """
    a = _check_adjacency(adjacency).copy()
    pre, post = np.nonzero(a)
    m = pre.size
    if m < 2:
        return a
    n_tries = int(swaps_per_edge * m)
    first = rng.integers(0, m, size=n_tries)
    second = rng.integers(0, m, size=n_tries)
    for i, j in zip(first.tolist(), second.tolist(), strict=True):
        p1, q1, p2, q2 = pre[i], post[i], pre[j], post[j]
        if p1 == q2 or p2 == q1 or a[p1, q2] or a[p2, q1]:
            continue
        a[p1, q1] = a[p2, q2] = False
        a[p1, q2] = a[p2, q1] = True
        post[i], post[j] = q2, q1
    return a


def pairwise_distances(positions: np.ndarray) -> np.ndarray:
    """(n, n) Euclidean distances between the rows of ``positions`` (n, 3)."""
    p = np.asarray(positions, dtype=float)
    return np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(axis=-1))


def connection_probability_by_distance(
    adjacency: np.ndarray, distance: np.ndarray, bin_edges: Sequence[float]
) -> pd.DataFrame:
    """Connection probability of ordered pairs in each distance bin.

    Returns one row per bin: ``lower``, ``upper``, ``n_pairs``, ``n_connected`` and
    ``probability`` (NaN for an empty bin). Pairs outside the bins are ignored.
    """
    a = _check_adjacency(adjacency)
    off = ~np.eye(a.shape[0], dtype=bool)
    d, c = distance[off], a[off]
    edges = np.asarray(bin_edges, dtype=float)
    which = np.digitize(d, edges) - 1
    inside = (which >= 0) & (which < edges.size - 1)
    n_pairs = np.bincount(which[inside], minlength=edges.size - 1)
    n_conn = np.bincount(which[inside], weights=c[inside], minlength=edges.size - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        prob = np.where(n_pairs > 0, n_conn / n_pairs, np.nan)
    return pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], "n_pairs": n_pairs,
                         "n_connected": n_conn.astype(np.int64), "probability": prob})


def fit_distance_model(
    adjacency: np.ndarray, distance: np.ndarray, bin_edges: Sequence[float]
) -> tuple[np.ndarray, pd.DataFrame]:
    """The distance-dependent null model: ``P[i, j]`` = connection probability at d_ij.

    Connection probability is estimated in the distance bins ``bin_edges`` (the maximum
    likelihood estimate of a model whose probability is constant within each bin); every
    ordered pair gets the probability of its bin (0 beyond the last edge and on the
    diagonal). Returns (P, the table of :func:`connection_probability_by_distance`).
    """
    table = connection_probability_by_distance(adjacency, distance, bin_edges)
    edges = np.asarray(bin_edges, dtype=float)
    which = np.digitize(distance, edges) - 1
    inside = (which >= 0) & (which < edges.size - 1)
    per_bin = table["probability"].fillna(0.0).to_numpy()
    probability = np.where(inside, per_bin[np.clip(which, 0, edges.size - 2)], 0.0)
    np.fill_diagonal(probability, 0.0)
    return probability, table


def fit_dyad_model(
    adjacency: np.ndarray, distance: np.ndarray, bin_edges: Sequence[float],
    groups: Sequence | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A null model that keeps the pair statistics: dyads drawn independently per pair.

    Every unordered pair {i, j} is in one of four dyad states: unconnected, i -> j only,
    j -> i only, or reciprocal. The model estimates the probability of each state among the
    pairs of the same distance bin (and, with ``groups``, the same pair of groups, e.g. the
    layers of the two cells; an asymmetric dyad's direction is counted from the lower group
    to the higher one, so that L4 -> L2/3 and L2/3 -> L4 stay apart) and draws every pair's
    state independently with those probabilities. So it keeps, in expectation, the number of
    connections *and* of reciprocal pairs at every distance, which the distance model of
    :func:`fit_distance_model` does not: what is left over against it in a triad census is
    structure beyond the pairs (the null of Song et al. 2005). Pairs outside the bins are
    never connected.

    Returns ``(p_mutual, p_one_way)``: ``p_mutual[i, j]`` (symmetric) is the probability that
    the pair is reciprocal, ``p_one_way[i, j]`` that only i -> j exists. Sample graphs with
    :func:`sample_dyads`.
    """
    a = _check_adjacency(adjacency)
    n = a.shape[0]
    edges = np.asarray(bin_edges, dtype=float)
    n_bins = edges.size - 1
    g = np.zeros(n, dtype=np.int64) if groups is None else pd.factorize(
        pd.Series(list(groups), dtype=object).astype(str), sort=True)[0]
    if g.size != n:
        raise ValueError(f"groups has {g.size} entries for {n} cells")
    n_groups = int(g.max(initial=0)) + 1
    i, j = np.triu_indices(n, 1)
    which = np.digitize(distance[i, j], edges) - 1
    inside = (which >= 0) & (which < n_bins)
    swap = g[i] > g[j]  # orient every pair from the lower group to the higher
    lo, hi = np.where(swap, j, i), np.where(swap, i, j)
    key = (np.clip(which, 0, n_bins - 1) * n_groups + g[lo]) * n_groups + g[hi]
    n_keys = n_bins * n_groups * n_groups
    fwd, bwd = a[lo, hi], a[hi, lo]

    def share(x):
        total = np.bincount(key[inside], minlength=n_keys)
        hits = np.bincount(key[inside], weights=x[inside], minlength=n_keys)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, hits / np.maximum(total, 1), 0.0)

    p_m, p_f, p_b = share(fwd & bwd), share(fwd & ~bwd), share(~fwd & bwd)
    p_mutual = np.zeros((n, n))
    p_one_way = np.zeros((n, n))
    k = key[inside]
    li, hj = lo[inside], hi[inside]
    p_mutual[li, hj] = p_mutual[hj, li] = p_m[k]
    p_one_way[li, hj] = p_f[k]
    p_one_way[hj, li] = p_b[k]
    return p_mutual, p_one_way


def sample_dyads(model: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A graph drawn from :func:`fit_dyad_model`'s model: one dyad state per unordered pair."""
    p_mutual, p_one_way = model
    n = p_mutual.shape[0]
    i, j = np.triu_indices(n, 1)
    u = rng.random(i.size)
    pm, pf = p_mutual[i, j], p_one_way[i, j]
    mutual = u < pm
    forward = mutual | ((u >= pm) & (u < pm + pf))
    backward = mutual | ((u >= pm + pf) & (u < pm + pf + p_one_way[j, i]))
    a = np.zeros((n, n), dtype=bool)
    a[i[forward], j[forward]] = True
    a[j[backward], i[backward]] = True
    return a


def closed_triads_per_cell(adjacency: np.ndarray) -> np.ndarray:
    """How many closed triads each cell is part of: three cells with all three pairs connected.

    A closed triad is one of the classes ``030T``, ``030C``, ``120D``, ``120U``, ``120C``,
    ``210`` and ``300`` (:data:`CLOSED_TRIADS`), i.e. a triangle of the undirected graph;
    the per-cell counts sum to three times the number of closed triads. Per-cell counts let
    a bootstrap resample cells (:func:`resampled_ratio`).
    """
    a = _check_adjacency(adjacency)
    b = sparse.csr_matrix(a | a.T, dtype=np.float64)
    return np.asarray((b @ b).multiply(b).sum(axis=1)).ravel() / 2.0


def expected_closed_triads_per_cell(
    model: tuple[np.ndarray, np.ndarray] | np.ndarray,
) -> np.ndarray:
    """Closed triads per cell expected under a null model with independent pairs (exact).

    ``model`` is :func:`fit_dyad_model`'s ``(p_mutual, p_one_way)``, or an (n, n) matrix
    ``P`` of connection probabilities with independent directions (Erdos-Renyi, the distance
    model). A pair is connected (either way) with ``C = p_mutual + p_one_way + p_one_way.T``,
    or ``C = P + P.T - P * P.T``; three cells are connected all round with the product of
    their three pairs' ``C``, which summed over the triads of cell i is ``(C @ C @ C)[i, i]
    / 2``.
    """
    if isinstance(model, tuple):
        p_mutual, p_one_way = model
        c = p_mutual + p_one_way + p_one_way.T
    else:
        p = np.asarray(model, dtype=float)
        c = p + p.T - p * p.T
    c = np.array(c, dtype=float)
    np.fill_diagonal(c, 0.0)
    return np.sum((c @ c) * c, axis=1) / 2.0


def resampled_ratio(observed: np.ndarray, expected: np.ndarray, cells: np.ndarray) -> float:
    """``sum(observed[cells]) / sum(expected[cells])``: a ratio of per-cell counts over a
    resample of cells (for :func:`bootstrap_cells`); NaN when nothing is expected."""
    total = float(np.sum(np.asarray(expected, dtype=float)[cells]))
    return float(np.sum(np.asarray(observed, dtype=float)[cells])) / total if total > 0 \
        else float("nan")


def null_triad_census(
    sample: Callable[[np.random.Generator], np.ndarray], n_samples: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Triad census of ``n_samples`` null graphs ``sample(rng)``: one row per sample."""
    return pd.DataFrame([triad_census(sample(rng)) for _ in range(n_samples)],
                        columns=list(TRIAD_TYPES))


# --- bootstrap over cells ---------------------------------------------------------------------
def bootstrap_cells(
    statistic: Callable[[np.ndarray], float], n_cells: int, n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``statistic(cells)`` for ``n_boot`` resamples of ``n_cells`` cells with replacement.

    ``cells`` is an int array of cell indices (with repeats); the statistic must ignore the
    pairs of a cell with its own copy (:func:`resampled_reciprocity` does).
    """
    return np.array([statistic(rng.integers(0, n_cells, size=n_cells))
                     for _ in range(n_boot)])


def resampled_reciprocity(
    adjacency: np.ndarray, cells: np.ndarray, probability: np.ndarray | None = None
) -> float:
    """Observed / expected reciprocal pairs among the resampled ``cells`` (with repeats).

    Pairs of two copies of one cell are left out, both of the count and of the null
    (Erdos-Renyi at the resample's density, or ``probability``).
    """
    a = np.asarray(adjacency, dtype=bool)[np.ix_(cells, cells)]
    distinct = cells[:, None] != cells[None, :]
    upper = np.triu(distinct, 1)
    if not upper.any():
        return float("nan")
    observed = float((a & a.T)[upper].sum())
    if probability is None:
        density = a[distinct].mean()
        expected = density**2 * upper.sum()
    else:
        p = np.asarray(probability, dtype=float)[np.ix_(cells, cells)]
        expected = float((p * p.T)[upper].sum())
    return observed / expected if expected > 0 else float("nan")


# --- the proofread connectome of a datastack -------------------------------------------------
#: Excitatory types of ``aibs_metamodel_celltypes_v661`` (every type that defines a layer).
EXCITATORY_TYPES: tuple[str, ...] = tuple(t for types in LAYER_TYPES.values() for t in types)


def cell_table(client) -> pd.DataFrame:
    """Single-soma typed cells with their cortical position (µm) and layer, by root id.

    Queries :data:`~connectomics_book.selection.CELL_TYPE_TABLE` in nm, adds ``x_um``,
    ``depth_um`` (below the pia), ``z_um`` (:func:`~connectomics_book.cortex.add_cortical_position`)
    and ``layer`` (from :func:`~connectomics_book.selection.estimate_layer_bottoms`), and
    drops multi-soma objects. Indexed by ``pt_root_id``.
    """
    cell_type_df = client.materialize.query_table(CELL_TYPE_TABLE, desired_resolution=[1, 1, 1])
    cell_type_df = add_cortical_position(cell_type_df)
    bottoms = estimate_layer_bottoms(cell_type_df["depth_um"], cell_type_df["cell_type"])
    cell_type_df["layer"] = assign_layer(cell_type_df["depth_um"], bottoms).astype(str)
    cells = drop_multi_soma(cell_type_df).rename(columns={"target_id": "nucleus_id"})
    columns = ["nucleus_id", "cell_type", "x_um", "depth_um", "z_um", "layer"]
    return cells.set_index("pt_root_id")[columns].sort_index()


def proofread_connectome(client) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(node table, synapse table) of the cells with a proofread axon.

    Nodes: :func:`cell_table` columns plus ``strategy_axon`` and ``strategy_dendrite``, one
    row per cell with a proofread axon (:func:`~connectomics_book.selection.proofread_cells`),
    indexed by root id. Synapses: every synapse from one of them onto another at the
    client's materialization version (``synapse_query`` with both id lists), autapses
    dropped; the full representation that :func:`condense` turns into a graph.
    """
    cells = cell_table(client)
    proofread = proofread_cells(client, axon=True).set_index("pt_root_id")
    node_df = cells.join(proofread[["strategy_axon", "strategy_dendrite"]], how="inner")
    roots = node_df.index.astype(int).tolist()
    synapse_df = client.materialize.synapse_query(pre_ids=roots, post_ids=roots)
    synapse_df = synapse_df[synapse_df["pre_pt_root_id"] != synapse_df["post_pt_root_id"]]
    return node_df, synapse_df.reset_index(drop=True)
