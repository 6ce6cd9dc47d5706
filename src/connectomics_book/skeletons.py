"""Skeletons and meshes of single cells: conversions and the measurements the book repeats.

A skeleton from the CAVE skeleton service
(``client.skeleton.get_skeleton(root_id, output_format="dict")``) is a dict with

* ``vertices`` -- ``(n, 3)`` positions in nm,
* ``edges`` -- ``(n - 1, 2)`` pairs of vertex indices (the skeleton is a tree),
* ``root`` -- index of the root vertex, placed at the soma,
* ``radius`` -- ``(n,)`` radius in nm,
* ``compartment`` -- ``(n,)`` SWC codes: 1 soma, 2 axon, 3 basal dendrite, 4 apical dendrite,

plus ``meta``, ``mesh_to_skel_map`` and, from the real service, ``lvl2_ids``. The functions
below turn it into a ``navis.TreeNeuron`` or a ``meshparty`` skeleton, measure path distances
along it and attach points (synapses) to its vertices. Mesh vertices are in nm as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: SWC compartment codes used by the skeleton service.
COMPARTMENTS: dict[int, str] = {1: "soma", 2: "axon", 3: "basal dendrite", 4: "apical dendrite"}

#: Colours per compartment code (the defaults of ``skeleton_plot``).
COMPARTMENT_COLORS: dict[int, str] = {
    1: "olive",
    2: "steelblue",
    3: "firebrick",
    4: "salmon",
}


def _tree_arrays(sk: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
    vertices = np.asarray(sk["vertices"], dtype=float)
    edges = np.asarray(sk["edges"], dtype=np.int64).reshape(-1, 2)
    root = int(sk["root"])
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"skeleton vertices must have shape (n, 3), got {vertices.shape}")
    if len(edges) != len(vertices) - 1:
        raise ValueError(
            f"a tree with {len(vertices)} vertices has {len(vertices) - 1} edges, got {len(edges)}"
        )
    return vertices, edges, root


def _graph(vertices: np.ndarray, edges: np.ndarray):
    """Undirected sparse graph of the skeleton, weighted by edge length (nm)."""
    from scipy.sparse import coo_matrix

    n = len(vertices)
    length = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    # csgraph treats explicit zeros as missing edges: give coincident vertices a tiny length
    length = np.maximum(length, 1e-9)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    return coo_matrix((np.concatenate([length, length]), (rows, cols)), shape=(n, n)).tocsr()


def parent_indices(sk: Mapping[str, Any]) -> np.ndarray:
    """Parent vertex index of every skeleton vertex, -1 at the root.

    Works whatever the orientation of the pairs in ``sk["edges"]``; raises ``ValueError``
    if the edges do not connect every vertex to the root.
    """
    from scipy.sparse.csgraph import breadth_first_order

    vertices, edges, root = _tree_arrays(sk)
    order, predecessors = breadth_first_order(
        _graph(vertices, edges), root, directed=False, return_predecessors=True
    )
    if len(order) != len(vertices):
        raise ValueError(
            f"the skeleton is not connected: {len(vertices) - len(order)} of {len(vertices)} "
            "vertices cannot be reached from the root"
        )
    parents = predecessors.astype(np.int64)
    parents[root] = -1
    return parents


def path_distance_to_root(sk: Mapping[str, Any]) -> np.ndarray:
    """Distance along the skeleton from every vertex to the root (soma), in the units of
    ``sk["vertices"]`` (nm for the skeleton service)."""
    from scipy.sparse.csgraph import dijkstra

    vertices, edges, root = _tree_arrays(sk)
    distance = dijkstra(_graph(vertices, edges), directed=False, indices=root)
    if not np.isfinite(distance).all():
        raise ValueError("the skeleton is not connected: some vertices cannot reach the root")
    return distance


def skeleton_to_treeneuron(
    sk: Mapping[str, Any],
    vertices: np.ndarray | None = None,
    units: str = "nm",
    name: str | None = None,
):
    """A ``navis.TreeNeuron`` of a skeleton-service dict.

    Node ids are the vertex indices of ``sk``; the node table carries ``radius`` and
    ``compartment`` (SWC code) columns, and the soma is the root node. Pass ``vertices``
    (e.g. the skeleton's vertices in the cortical frame, µm) to replace the positions, with
    their ``units``; radii are converted from nm to match when ``units`` is ``"um"``.
    """
    import navis
    import pandas as pd

    original, _, root = _tree_arrays(sk)
    positions = original if vertices is None else np.asarray(vertices, dtype=float)
    if positions.shape != original.shape:
        raise ValueError(f"vertices must have shape {original.shape}, got {positions.shape}")
    n = len(positions)
    radius = np.asarray(sk.get("radius", np.zeros(n)), dtype=float)
    if units in ("um", "µm", "micron", "microns"):
        radius = radius / 1000.0
    nodes = pd.DataFrame(
        {
            "node_id": np.arange(n),
            "parent_id": parent_indices(sk),
            "x": positions[:, 0],
            "y": positions[:, 1],
            "z": positions[:, 2],
            "radius": radius,
            "compartment": np.asarray(sk.get("compartment", np.zeros(n)), dtype=int),
        }
    )
    meta = sk.get("meta") or {}
    neuron = navis.TreeNeuron(nodes, units=units, name=name or meta.get("root_id"))
    neuron.soma = root
    return neuron


def skeleton_to_meshparty(sk: Mapping[str, Any], vertices: np.ndarray | None = None):
    """A ``meshparty.skeleton.Skeleton`` of a skeleton-service dict, vertex order kept.

    ``vertex_properties`` holds ``radius`` (nm) and ``compartment`` (SWC code), which is
    what ``skeleton_plot.plot_tools.plot_skel(..., pull_compartment_colors=True)`` reads.
    ``vertices`` optionally replaces the positions (e.g. cortical-frame µm).
    """
    from meshparty import skeleton

    original, edges, root = _tree_arrays(sk)
    positions = original if vertices is None else np.asarray(vertices, dtype=float)
    if positions.shape != original.shape:
        raise ValueError(f"vertices must have shape {original.shape}, got {positions.shape}")
    n = len(positions)
    properties = {
        "radius": np.asarray(sk.get("radius", np.zeros(n)), dtype=float),
        "compartment": np.asarray(sk.get("compartment", np.zeros(n)), dtype=int),
    }
    return skeleton.Skeleton(
        positions,
        edges,
        root=root,
        radius=properties["radius"],
        vertex_properties=properties,
        remove_zero_length_edges=False,
        meta=dict(sk.get("meta") or {}),
    )


def nearest_vertex(vertices: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the vertex nearest to each point, and the distance to it.

    ``vertices`` ``(n, 3)`` and ``points`` ``(m, 3)`` must be in the same units (e.g. nm
    for skeleton or mesh vertices and synapse positions queried with
    ``desired_resolution=[1, 1, 1]``).
    """
    from scipy.spatial import cKDTree

    vertices = np.asarray(vertices, dtype=float)
    points = np.atleast_2d(np.asarray(points, dtype=float))
    if len(points) == 0 or points.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    distance, index = cKDTree(vertices).query(points)
    return index.astype(np.int64), distance


def attach_to_skeleton(
    sk: Mapping[str, Any], points: np.ndarray, soma_margin: float = 1000.0
) -> tuple[np.ndarray, np.ndarray]:
    """Skeleton vertex of each point (e.g. a synapse), and the point's distance to it.

    A skeleton collapses the soma into its root vertex, while synapses on the soma sit on its
    surface, microns away and often nearer to the first vertex of a dendrite. Points within
    the root's radius plus ``soma_margin`` of the root vertex therefore go to the root; every
    other point goes to its nearest vertex (:func:`nearest_vertex`). ``points`` are in the
    units of ``sk["vertices"]`` (nm for the skeleton service), and so is ``soma_margin``.
    """
    vertices, _, root = _tree_arrays(sk)
    index, distance = nearest_vertex(vertices, points)
    if len(index) == 0:
        return index, distance
    points = np.atleast_2d(np.asarray(points, dtype=float))
    radius = np.asarray(sk.get("radius", np.zeros(len(vertices))), dtype=float)
    to_root = np.linalg.norm(points - vertices[root], axis=1)
    in_soma = to_root <= radius[root] + soma_margin
    index[in_soma] = root
    distance[in_soma] = to_root[in_soma]
    return index, distance


def decimate_mesh(
    vertices: np.ndarray, faces: np.ndarray, cell_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """A coarser copy of a triangle mesh by vertex clustering.

    All vertices inside one cube of side ``cell_size`` (units of ``vertices``) merge into
    their mean; triangles that collapse are dropped. Crude but fast and dependency-free:
    good enough to send a mesh of millions of vertices to an interactive 3-D view.
    """
    vertices = np.asarray(vertices, dtype=float)
    faces = np.asarray(faces, dtype=np.int64)
    if cell_size <= 0:
        raise ValueError(f"cell_size must be positive, got {cell_size}")
    cells = np.floor((vertices - vertices.min(axis=0)) / cell_size).astype(np.int64)
    _, cluster, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    cluster = cluster.reshape(-1)
    sums = np.zeros((len(counts), 3))
    np.add.at(sums, cluster, vertices)
    new_vertices = sums / counts[:, None]
    new_faces = cluster[faces]
    keep = (
        (new_faces[:, 0] != new_faces[:, 1])
        & (new_faces[:, 1] != new_faces[:, 2])
        & (new_faces[:, 0] != new_faces[:, 2])
    )
    new_faces = new_faces[keep]
    # drop duplicated triangles but keep the first copy's vertex order (its orientation)
    _, first = np.unique(np.sort(new_faces, axis=1), axis=0, return_index=True)
    return new_vertices, new_faces[np.sort(first)]


#: Compartment codes counted as the dendrite of a postsynaptic cell in
#: :func:`proximal_pairs`: soma, basal and apical dendrite (synapses land on all three).
DENDRITE_CODES = (1, 3, 4)
#: Compartment code of the axon.
AXON_CODE = 2


def proximal_pairs(
    skeletons: Mapping[int, Mapping[str, Any]], radius_nm: float = 5000.0
) -> pd.DataFrame:
    """Ordered pairs of cells whose axon passes within ``radius_nm`` of the other's dendrite.

    A synapse needs an axon next to a dendrite, so "connected vs not connected" compares
    like with like only among pairs that *could* connect: a proximity control in the sense
    of axon-dendrite proximity in Ding et al. 2025. ``skeletons`` maps root id -> skeleton
    dict (vertices in nm, SWC ``compartment`` codes); the axon is every vertex with code 2,
    the dendrite every vertex with a code in :data:`DENDRITE_CODES`. One KD-tree holds the
    dendrite vertices of all cells; each cell's axon vertices are looked up in it.

    Returns a DataFrame with one row per ordered pair (``pre_pt_root_id``,
    ``post_pt_root_id``) with ``n_axon_vertices`` > 0, the number of the presynaptic cell's
    axon vertices within ``radius_nm`` of the postsynaptic dendrite (times the axon's vertex
    spacing, about the length of axon running near the dendrite). A cell is never paired with
    itself; cells without axon or dendrite vertices take part only on the side they have.
    """
    import pandas as pd
    from scipy.spatial import cKDTree

    columns = ["pre_pt_root_id", "post_pt_root_id", "n_axon_vertices"]
    dendrite_points, dendrite_owner, axons = [], [], {}
    for root, sk in skeletons.items():
        vertices = np.asarray(sk["vertices"], dtype=float).reshape(-1, 3)
        codes = np.asarray(sk["compartment"])
        is_dendrite = np.isin(codes, DENDRITE_CODES)
        dendrite_points.append(vertices[is_dendrite])
        dendrite_owner.append(np.full(int(is_dendrite.sum()), int(root), dtype=np.int64))
        if np.any(codes == AXON_CODE):
            axons[int(root)] = vertices[codes == AXON_CODE]
    points = np.concatenate(dendrite_points) if dendrite_points else np.zeros((0, 3))
    if len(points) == 0 or not axons:
        return pd.DataFrame({name: pd.Series(dtype=np.int64) for name in columns})
    owner = np.concatenate(dendrite_owner)
    tree = cKDTree(points)
    pre_parts, post_parts = [], []
    for pre_root, axon_vertices in axons.items():
        near = tree.query_ball_point(axon_vertices, r=radius_nm)
        counts = np.fromiter(map(len, near), dtype=np.int64, count=len(near))
        if not counts.any():
            continue
        vertex = np.repeat(np.arange(len(near)), counts)
        post = owner[np.fromiter(chain.from_iterable(near), dtype=np.int64,
                                 count=int(counts.sum()))]
        # each axon vertex counts once per postsynaptic cell, however many of its
        # dendrite vertices are near
        post = np.unique(np.column_stack([vertex, post]), axis=0)[:, 1]
        post = post[post != pre_root]
        pre_parts.append(np.full(post.size, pre_root, dtype=np.int64))
        post_parts.append(post)
    if not pre_parts or not sum(p.size for p in post_parts):
        return pd.DataFrame({name: pd.Series(dtype=np.int64) for name in columns})
    pair_df = pd.DataFrame({columns[0]: np.concatenate(pre_parts),
                            columns[1]: np.concatenate(post_parts)})
    return (pair_df.groupby(columns[:2]).size().rename("n_axon_vertices").reset_index()
            .astype(np.int64))
