"""Level-2 nodes from a skeleton: one node per run of vertices in one chunk and one piece."""

from __future__ import annotations

import numpy as np
import pytest

from offline_cave.contract.geometry import cortical_to_nm, slab_for
from offline_cave.contract.params import MINNIE
from offline_cave.generator.level2 import build_level2, vertex_lookup
from tests.fixtures.toy_skeletons import ToySkeleton


def straight_cell() -> ToySkeleton:
    """A soma and one straight dendrite of 40 vertices 0.5 um apart along x (cortical um),
    radius 0.5 um; the last 10 vertices are an axon fragment (label 1)."""
    n = 41
    verts = np.zeros((n, 3))
    verts[:, 0] = np.arange(n) * 0.5
    slab = slab_for(MINNIE, 1.0)
    verts += (np.asarray(slab.box_min) + np.asarray(slab.box_max)) / 2
    parent = np.arange(-1, n - 1)
    radius = np.full(n, 0.5)
    radius[0] = 6.0
    comp = np.full(n, 3, np.int8)
    comp[0] = 1
    return ToySkeleton(verts, parent.astype(np.int32), radius.astype(np.float32), comp, 6.0)


@pytest.fixture(scope="module")
def level2():
    sk = straight_cell()
    labels = np.zeros(41, np.int32)
    labels[31:] = 1
    out = build_level2(MINNIE, {7: sk}, np.array([7]), {7: labels}, {7: 3},
                       {7: np.array([99])})
    return sk, labels, out


def chunks_of(sk: ToySkeleton) -> np.ndarray:
    nm = cortical_to_nm(sk.vertices, MINNIE)
    vx = nm / np.asarray(MINNIE.base_resolution) - np.asarray(MINNIE.chunk_offset_vx)
    return np.floor(vx / np.asarray(MINNIE.chunk_size)).astype(np.int64)


def test_nodes_are_runs_within_one_chunk_and_one_piece(level2) -> None:
    sk, labels, out = level2
    vl2 = out.vertex_l2[7]
    chunks = chunks_of(sk)
    keys = [(tuple(c), int(lab)) for c, lab in zip(chunks, labels, strict=True)]
    for l2 in np.unique(vl2):
        members = np.flatnonzero(vl2 == l2)
        assert len({keys[i] for i in members}) == 1
        assert np.all(np.diff(members) == 1)  # a run along the dendrite
    # a new node exactly where the chunk or the piece changes
    changes = sum(keys[i] != keys[i - 1] for i in range(1, len(keys)))
    assert len(np.unique(vl2)) == changes + 1 == len(out.nodes)
    assert len(out.edges) == changes
    assert set(out.nodes.piece_id) == {3, 99}


def test_ids_have_layer_2_and_the_chunk_of_their_point(level2) -> None:
    sk, _, out = level2
    ids = out.nodes.l2_id.to_numpy()
    assert ((ids >> 56) == 2).all()
    rep = out.nodes[["rep_coord_x", "rep_coord_y", "rep_coord_z"]].to_numpy()
    vx = rep / np.asarray(MINNIE.base_resolution) - np.asarray(MINNIE.chunk_offset_vx)
    chunk = np.floor(vx / np.asarray(MINNIE.chunk_size)).astype(np.int64)
    assert ((ids >> 46) & 1023 == chunk[:, 0]).all()
    assert ((ids >> 36) & 1023 == chunk[:, 1]).all()
    assert ((ids >> 26) & 1023 == chunk[:, 2]).all()


def test_sizes_come_from_the_radii(level2) -> None:
    sk, _, out = level2
    cable_nm = 40 * 500.0
    soma = 4 / 3 * np.pi * 6000.0 ** 3
    assert out.nodes.size_nm3.sum() == pytest.approx(soma + np.pi * 500.0 ** 2 * cable_nm,
                                                     rel=1e-3)
    soma_row = out.nodes.loc[out.nodes.l2_id == out.vertex_l2[7][0]].iloc[0]
    assert soma_row.max_dt_nm == pytest.approx(6000.0)
    dend = out.nodes[out.nodes.l2_id != out.vertex_l2[7][0]]
    assert np.allclose(dend.max_dt_nm, 500.0) and np.allclose(dend.mean_dt_nm, 500.0 / 3)
    # the first principal axis of a straight dendrite lies along it (x in cortical frame)
    axis = cortical_to_nm(np.array([[1.0, 0, 0]]), MINNIE) - cortical_to_nm(
        np.zeros((1, 3)), MINNIE)
    axis = axis[0] / np.linalg.norm(axis[0])
    big = dend[dend.pca_val_0 > 4 * dend.pca_val_1]
    assert len(big) and np.allclose(np.abs(big[["pca_0_x", "pca_0_y", "pca_0_z"]].to_numpy()
                                           @ axis), 1.0, atol=1e-3)


def test_vertex_lookup(level2) -> None:
    _, _, out = level2
    got = vertex_lookup(out.vertex_l2, np.array([7, 0, 7, 8]), np.array([0, 3, 40, 1]))
    assert got.tolist() == [out.vertex_l2[7][0], 0, out.vertex_l2[7][40], 0]


def test_ids_stay_unique_across_batches(monkeypatch) -> None:
    import offline_cave.generator.level2 as level2_module

    sk = straight_cell()
    labels = np.zeros(41, np.int32)
    monkeypatch.setattr(level2_module, "BATCH_CELLS", 1)
    # two cells with the same vertices: the same chunks, in two batches
    out = build_level2(MINNIE, {7: sk, 8: sk}, np.array([7, 8]), {7: labels, 8: labels},
                       {7: 3, 8: 4}, {})
    assert out.nodes.l2_id.is_unique
    assert len(out.nodes) == 2 * len(np.unique(out.vertex_l2[7]))
    assert not set(out.vertex_l2[7]) & set(out.vertex_l2[8])
