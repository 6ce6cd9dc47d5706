"""Skeleton -> tube mesh: geometry, size, the legacy fragment format, atomic caching."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from offline_cave.contract.files import write_atomic
from offline_cave.server.data.mesh import decode_legacy, encode_legacy, skeleton_mesh, uv_sphere


def random_tree(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A pyramidal-cell-sized random tree: parents before children, ~1 um steps (nm)."""
    rng = np.random.default_rng(seed)
    parent = np.full(n, -1, dtype=np.int64)
    verts = np.zeros((n, 3))
    direction = rng.normal(size=(n, 3))
    for i in range(1, n):
        p = i - 1 if rng.random() > 0.02 else int(rng.integers(0, i))
        parent[i] = p
        d = direction[p] + 0.3 * rng.normal(size=3)
        direction[i] = d / np.linalg.norm(d)
        verts[i] = verts[p] + 1000.0 * direction[i]
    radius = np.full(n, 300.0)
    radius[0] = 5000.0
    return verts, parent, radius


def test_straight_tube_has_the_right_radius() -> None:
    verts = np.array([[0, 0, 0], [0, 0, 1000.0], [0, 0, 3000.0]])
    parent = np.array([-1, 0, 1])
    radius = np.array([500.0, 200.0, 200.0])
    mv, mf = skeleton_mesh(verts, parent, radius, soma_radius=500.0, sides=8)
    sphere_v, sphere_f = uv_sphere(np.zeros(3), 500.0)
    tube_v = mv[: len(mv) - len(sphere_v)]
    assert len(tube_v) == 3 * 8  # start ring at the root + one ring per child node
    np.testing.assert_allclose(np.hypot(tube_v[:, 0], tube_v[:, 1]), 200.0, rtol=1e-5)
    assert mf.max() < len(mv) and mf.dtype == np.uint32 and mv.dtype == np.float32
    assert len(mf) == 2 * 8 * 2 + len(sphere_f) + 8  # two tube segments, sphere, stem fan
    soma = mv[len(tube_v):]
    np.testing.assert_allclose(np.linalg.norm(soma, axis=1), 500.0, rtol=1e-5)


def test_branches_start_fresh_rings_and_faces_are_not_degenerate() -> None:
    verts = np.array([[0, 0, 0], [0, 0, 1000.0], [1000.0, 0, 2000.0], [-1000.0, 0, 2000.0]])
    parent = np.array([-1, 0, 1, 1])
    mv, mf = skeleton_mesh(verts, parent, np.full(4, 100.0), soma_radius=300.0, sides=6)
    tri = mv[mf.astype(np.int64)]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    assert (area > 1.0).all()
    # rings: root start ring, node 1, node 2 (continues node 1), fresh ring for node 3, node 3
    assert len(mv) == 5 * 6 + len(uv_sphere(np.zeros(3), 1.0)[0])


def test_the_mesh_of_a_cell_is_one_connected_vertex_graph() -> None:
    verts, parent, radius = random_tree(800)
    mv, mf = skeleton_mesh(verts, parent, radius)
    edges = np.concatenate([mf[:, [0, 1]], mf[:, [1, 2]], mf[:, [2, 0]]]).astype(np.int64)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(mv),) * 2)
    n_components, _ = connected_components(graph, directed=False)
    assert n_components == 1


def test_pyramidal_sized_mesh_is_1e4_to_1e5_vertices() -> None:
    # how long it takes is printed by benchmarks/bench_server.py ("mesh (cold, generated)")
    verts, parent, radius = random_tree(7000)
    mv, mf = skeleton_mesh(verts, parent, radius)
    assert 1e4 <= len(mv) <= 1e5
    lo, hi = verts.min(axis=0) - 5001, verts.max(axis=0) + 5001
    assert (mv >= lo).all() and (mv <= hi).all()


def test_parent_order_does_not_matter() -> None:
    verts, parent, radius = random_tree(200, seed=3)
    perm = np.random.default_rng(1).permutation(len(verts))
    inv = np.argsort(perm)
    p2 = np.where(parent[perm] >= 0, inv[np.maximum(parent[perm], 0)], -1)
    a = skeleton_mesh(verts, parent, radius)
    b = skeleton_mesh(verts[perm], p2, radius[perm])
    assert len(a[0]) == len(b[0]) and len(a[1]) == len(b[1])


def test_legacy_round_trip_and_cloudvolume_reads_it() -> None:
    verts, parent, radius = random_tree(100)
    mv, mf = skeleton_mesh(verts, parent, radius)
    data = encode_legacy(mv, mf)
    v2, f2 = decode_legacy(data)
    np.testing.assert_array_equal(v2, mv)
    np.testing.assert_array_equal(f2, mf)
    from cloudvolume.mesh import Mesh

    m = Mesh.from_precomputed(data)
    assert len(m.vertices) == len(mv) and len(m.faces) == len(mf)


def test_write_atomic(tmp_path) -> None:
    path = tmp_path / "cache" / "meshes" / "x.frag"
    write_atomic(path, b"abc")
    write_atomic(path, b"defg")
    assert path.read_bytes() == b"defg"
    assert [p.name for p in path.parent.iterdir()] == ["x.frag"]


def test_empty_skeleton() -> None:
    mv, mf = skeleton_mesh(np.zeros((0, 3)), np.zeros(0), np.zeros(0))
    assert mv.shape == (0, 3) and mf.shape == (0, 3)


@pytest.mark.parametrize("sides", [3, 8, 12])
def test_sides(sides: int) -> None:
    verts = np.array([[0, 0, 0], [0, 0, 1000.0]])
    mv, mf = skeleton_mesh(verts, np.array([-1, 0]), np.array([100.0, 100.0]),
                           soma_radius=0.0001, sides=sides)
    assert len(mv) - len(uv_sphere(np.zeros(3), 1.0)[0]) == 2 * sides


def test_damaged_fragments_are_recognised() -> None:
    from offline_cave.server.data.mesh import is_valid_legacy

    verts, parent, radius = random_tree(50)
    data = encode_legacy(*skeleton_mesh(verts, parent, radius))
    assert is_valid_legacy(data)
    assert not is_valid_legacy(data[:-5])  # truncated mid-face
    assert not is_valid_legacy(data[:1000])  # truncated in the vertices
    assert not is_valid_legacy(b"") and not is_valid_legacy(b"\x00\x00\x00\x00")
    nv = int.from_bytes(data[:4], "little")
    bad_face = bytearray(data)
    bad_face[-4:] = (nv + 7).to_bytes(4, "little")  # a face pointing past the vertices
    assert not is_valid_legacy(bytes(bad_face))
    nan_vertex = bytearray(data)
    nan_vertex[4:8] = np.array([np.nan], dtype="<f4").tobytes()
    assert not is_valid_legacy(bytes(nan_vertex))


@pytest.mark.parametrize("n,seed,extra_roots,digest", [
    (3000, 5, False, "4474ad0eb4810d37565f8810ee5da89a3e7a3a4d58e08984cf1a14c56f4bbf8a"),
    (500, 9, True, "4aada2ac5fd8026205e8b5abd243449573c44a94b12d731c587af027e4831a4f"),
])
def test_mesh_bytes_are_those_cached_under_this_mesh_version(n: int, seed: int,
                                                             extra_roots: bool,
                                                             digest: str) -> None:
    """The digests are those of the per-node builder that wrote MESH_VERSION 2 caches; the
    array rewrite (14x faster) must give the same bytes, or MESH_VERSION must be bumped."""
    import hashlib

    verts, parent, radius = random_tree(n, seed=seed)
    if extra_roots:
        parent[n // 2] = -1  # a second root
        parent[n // 2 + 50] = n // 2 + 50  # a node that is its own parent counts as a root
    soma = None if extra_roots else 4000.0
    data = encode_legacy(*skeleton_mesh(verts, parent, radius, soma_radius=soma))
    assert hashlib.sha256(data).hexdigest() == digest
