"""Skeleton -> triangle mesh (tubes along every edge plus a soma sphere), legacy precomputed.

The sample has no voxel segmentation, so the server *derives* a presentation mesh from each
cell's stored skeleton: a tube of ``sides`` vertices per ring follows every skeleton edge with
the stored radius, rings are oriented by parallel transport (no twisting), branches start a
fresh ring at the branch point stitched to the parent's ring, and a UV sphere of the soma
radius sits at the root node with every neurite fanned onto one of its vertices, so the
vertices of a cell form one connected graph (what meshparty's mesh graph sees); the joins are
not manifold, as in real dynamic meshes.
A pyramidal cell with ~7,000 skeleton vertices gives ~60,000 mesh vertices.

Units: input and output vertices are in nm (the physical frame shared with skeletons and with
cloud-volume meshes). Output faces index the output vertices.

The legacy precomputed fragment format (what cloud-volume reads for an unsharded
``neuroglancer_legacy_mesh``) is ``uint32 nv | nv*3 float32 xyz | uint32 triangle indices``,
all little-endian.
"""

from __future__ import annotations

import math
import struct

import numpy as np

MESH_VERSION = 2  # bump when skeleton_mesh output changes (part of the cache path)

def _perpendicular(t: np.ndarray) -> np.ndarray:
    """Any unit vector perpendicular to the unit vector ``t``."""
    axis = np.array([1.0, 0.0, 0.0]) if abs(t[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    n = np.cross(t, axis)
    return n / np.linalg.norm(n)


def _topological_order(parent: np.ndarray) -> tuple[list[int], list[list[int]]]:
    """Nodes ordered parents-first, and the children of each node."""
    n = len(parent)
    children: list[list[int]] = [[] for _ in range(n)]
    roots = []
    for i, p in enumerate(parent):
        if 0 <= p < n and p != i:
            children[p].append(i)
        else:
            roots.append(i)
    order: list[int] = []
    stack = list(reversed(roots))
    seen = np.zeros(n, bool)
    while stack:
        i = stack.pop()
        if seen[i]:
            continue
        seen[i] = True
        order.append(i)
        stack.extend(reversed(children[i]))
    return order, children


def uv_sphere(center: np.ndarray, radius: float, rings: int = 12,
              segments: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A closed UV sphere: ``(vertices (N,3), faces (M,3))``."""
    verts = [center + np.array([0.0, 0.0, radius])]
    for i in range(1, rings):
        theta = np.pi * i / rings
        for j in range(segments):
            phi = 2 * np.pi * j / segments
            verts.append(center + radius * np.array([np.sin(theta) * np.cos(phi),
                                                     np.sin(theta) * np.sin(phi),
                                                     np.cos(theta)]))
    verts.append(center + np.array([0.0, 0.0, -radius]))
    faces = []
    for j in range(segments):
        faces.append((0, 1 + j, 1 + (j + 1) % segments))
    for i in range(rings - 2):
        a0 = 1 + i * segments
        b0 = a0 + segments
        for j in range(segments):
            a, a1 = a0 + j, a0 + (j + 1) % segments
            b, b1 = b0 + j, b0 + (j + 1) % segments
            faces.append((a, b, a1))
            faces.append((a1, b, b1))
    last = len(verts) - 1
    base = 1 + (rings - 2) * segments
    for j in range(segments):
        faces.append((base + j, last, base + (j + 1) % segments))
    return np.asarray(verts, dtype=np.float64), np.asarray(faces, dtype=np.int64)


def _frames(pts: np.ndarray, parent: np.ndarray, order: list[int],
            is_root: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit tangent (from the parent), segment length and parallel-transported normal of every
    node (zeros at roots and unreached nodes).

    The tangents are one array operation; the transport is inherently sequential (a node's
    normal is its parent's, made perpendicular to its own tangent), so it is one pass in plain
    Python floats: numpy's per-call overhead on 3-vectors made this the classroom server's
    hottest loop (60 % of its busy time with 32 clients).
    """
    n = len(pts)
    safe_parent = np.where(is_root, np.arange(n), parent)
    d = pts - pts[safe_parent]
    length = np.sqrt(np.einsum("ij,ij->i", d, d))
    tangent = np.zeros((n, 3))
    moving = length > 0
    tangent[moving] = d[moving] / length[moving, None]
    tangent[~moving] = (0.0, 0.0, 1.0)
    tl = tangent.tolist()
    pl = parent.tolist()
    normals: list[tuple[float, float, float] | None] = [None] * n
    for i in order:
        if is_root[i]:
            continue
        tx, ty, tz = tl[i]
        prev = normals[pl[i]]
        if prev is None:
            prev = _perpendicular_f(tx, ty, tz)
        px, py, pz = prev
        dot = px * tx + py * ty + pz * tz
        nx, ny, nz = px - dot * tx, py - dot * ty, pz - dot * tz
        nn = math.sqrt(nx * nx + ny * ny + nz * nz)
        normals[i] = (nx / nn, ny / nn, nz / nn) if nn > 1e-6 else _perpendicular_f(tx, ty, tz)
    normal = np.array([v if v is not None else (0.0, 0.0, 0.0) for v in normals],
                      dtype=np.float64).reshape(n, 3)
    return tangent, length, normal


def _perpendicular_f(tx: float, ty: float, tz: float) -> tuple[float, float, float]:
    """:func:`_perpendicular` in plain floats."""
    ax, ay, az = (1.0, 0.0, 0.0) if abs(tx) < 0.9 else (0.0, 1.0, 0.0)
    nx, ny, nz = ty * az - tz * ay, tz * ax - tx * az, tx * ay - ty * ax
    nn = math.sqrt(nx * nx + ny * ny + nz * nz)
    return nx / nn, ny / nn, nz / nn


# skeleton_mesh is long on purpose (~80 lines): one pass over the nodes in topological order
# decides which rings exist and which pairs of rings are joined; the ring vertices and the
# faces are then built as whole arrays. Its output bytes are cached under MESH_VERSION.
def skeleton_mesh(vertices: np.ndarray, parent: np.ndarray, radius: np.ndarray, *,
                  soma_radius: float | None = None, sides: int = 8,
                  min_radius: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    """Tube mesh of a skeleton.

    ``vertices`` (N,3) nm; ``parent`` (N,) index of each node's parent (-1 for the root);
    ``radius`` (N,) nm. The root node gets a sphere of ``soma_radius`` (default: its own
    radius). Returns ``(vertices float32 (V,3) nm, faces uint32 (F,3))``.
    """
    pts = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    parent = np.asarray(parent, dtype=np.int64).reshape(-1)
    rad = np.maximum(np.asarray(radius, dtype=np.float64).reshape(-1), min_radius)
    n = len(pts)
    if n == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32)
    order, children = _topological_order(parent)
    is_root = (parent < 0) | (parent >= n) | (parent == np.arange(n))
    tangent, length, normal = _frames(pts, parent, order, is_root)
    pl = parent.tolist()
    radl = rad.tolist()

    # rings: (node whose frame orients it, centre node, offset along the tangent, radius)
    ring_node: list[int] = []
    ring_center: list[int] = []
    ring_shift: list[float] = []
    ring_radius: list[float] = []
    joins: list[tuple[int, int]] = []  # (ring, ring) pairs joined by a band of 2*sides faces
    ring_of = [-1] * n
    roots: set[int] = set()
    soma_stems: list[tuple[int, int]] = []  # (root, ring)

    def add_ring(node: int, center: int, shift: float, r: float) -> int:
        ring_node.append(node)
        ring_center.append(center)
        ring_shift.append(shift)
        ring_radius.append(r)
        return len(ring_node) - 1

    def soma_r(r: int) -> float:
        return float(soma_radius) if soma_radius else radl[r]

    for i in order:
        if is_root[i]:
            roots.add(i)
            continue
        p = pl[i]
        if ring_of[p] >= 0 and children[p] and children[p][0] == i:  # the path continues
            start = ring_of[p]
        elif p in roots:  # a neurite leaving the soma: starts on the sphere, fanned onto it
            start = add_ring(i, p, 0.9 * soma_r(p), radl[i])
            soma_stems.append((p, start))
        else:  # an extra branch: a fresh ring at the branch point, stitched to the parent's
            start = add_ring(i, p, 0.0, 0.8 * min(radl[p], radl[i]))
            joins.append((ring_of[p], start))
        ring_of[i] = add_ring(i, i, 0.0, radl[i])
        if length[i] > 0:
            joins.append((start, ring_of[i]))

    angles = 2 * np.pi * np.arange(sides) / sides
    cos_a, sin_a = np.cos(angles)[None, :, None], np.sin(angles)[None, :, None]
    node = np.asarray(ring_node, dtype=np.int64)
    t, nrm = tangent[node], normal[node]
    center = pts[np.asarray(ring_center, dtype=np.int64)] \
        + np.asarray(ring_shift)[:, None] * t
    b = np.cross(t, nrm)
    rings = (center[:, None, :] + np.asarray(ring_radius)[:, None, None]
             * (cos_a * nrm[:, None, :] + sin_a * b[:, None, :])).reshape(-1, 3)
    k = np.arange(sides)
    k1 = (k + 1) % sides
    pairs = np.asarray(joins, dtype=np.int64).reshape(-1, 2) * sides
    a0, b0 = pairs[:, :1], pairs[:, 1:]
    bands = np.stack([np.stack([a0 + k, a0 + k1, b0 + k], axis=2),
                      np.stack([b0 + k, a0 + k1, b0 + k1], axis=2)], axis=1).reshape(-1, 3)
    out_verts: list[np.ndarray] = [rings]
    out_faces: list[np.ndarray] = [bands]
    count = len(rings)
    for r in sorted(roots):
        sr = soma_r(r)
        if sr <= 0:
            continue
        sv, sf = uv_sphere(pts[r], sr)
        out_verts.append(sv)
        out_faces.append(sf + count)
        # each neurite's first ring is fanned onto the sphere vertex it leaves from, so the
        # whole cell is one connected surface (as a real neuron mesh is)
        for root, ring in soma_stems:
            if root == r:
                hub = count + int(np.argmax((sv - pts[r]) @ tangent[ring_node[ring]]))
                out_faces.append(np.stack([np.full(sides, hub), ring * sides + k1,
                                           ring * sides + k], axis=1))
        count += len(sv)
    verts = np.concatenate(out_verts).astype(np.float32)
    faces = np.concatenate(out_faces).astype(np.uint32)
    return verts, faces


def encode_legacy(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    """Legacy precomputed mesh fragment bytes."""
    v = np.ascontiguousarray(vertices, dtype="<f4").reshape(-1, 3)
    f = np.ascontiguousarray(faces, dtype="<u4").reshape(-1, 3)
    return struct.pack("<I", len(v)) + v.tobytes() + f.tobytes()


def is_valid_legacy(data: bytes) -> bool:
    """Whether ``data`` is a whole legacy fragment: its size matches its vertex count, and
    every face points at a vertex (a truncated or damaged cache file fails this)."""
    if len(data) < 4:
        return False
    (nv,) = struct.unpack_from("<I", data, 0)
    rest = len(data) - 4 - 12 * nv
    if nv == 0 or rest < 0 or rest % 12:
        return False
    faces = np.frombuffer(data, dtype="<u4", offset=4 + nv * 12)
    verts = np.frombuffer(data, dtype="<f4", count=nv * 3, offset=4)
    return bool((faces.size == 0 or faces.max() < nv) and np.isfinite(verts).all())


def decode_legacy(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_legacy`."""
    (nv,) = struct.unpack_from("<I", data, 0)
    verts = np.frombuffer(data, dtype="<f4", count=nv * 3, offset=4).reshape(-1, 3)
    faces = np.frombuffer(data, dtype="<u4", offset=4 + nv * 12).reshape(-1, 3)
    return verts, faces


def legacy_to_draco(data: bytes) -> bytes:
    """A legacy fragment re-encoded as Draco, the encoding of the graphene dynamic meshes
    (Neuroglancer's graphene source decodes its unsharded fragments as Draco; cloud-volume
    reads either). Positions are quantized to 16 bits over the mesh's bounding box."""
    import DracoPy

    vertices, faces = decode_legacy(data)
    return DracoPy.encode(vertices, faces, quantization_bits=16, compression_level=1,
                          preserve_order=True)
