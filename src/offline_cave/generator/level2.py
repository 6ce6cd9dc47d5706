"""Level-2 nodes of the skeletonized cells: ids, chunk graph and the level-2 cache attributes.

In the real PyChunkedGraph a level-2 node is one connected piece of an object inside one
chunk of the chunkedgraph grid (256 x 256 x 512 base voxels of 8 x 8 x 40 nm: 2 x 2 x 20 um in
minnie65), and the level-2 cache stores, per node, a representative point and a few volume
statistics (caveclient ``l2cache.get_l2data``; pcg_skel builds its skeletons from them). Here a
node is a maximal run of skeleton vertices connected by skeleton edges, inside one chunk and
one segmentation piece (so every level-2 node belongs to one piece forever and follows its
roots through the edits). The chunk graph joins two nodes where a skeleton edge crosses
between them. Attributes come from the skeleton's radii: each vertex stands for a cylinder of
its radius over half of its incident edges (the soma for a sphere):

* ``rep_coord_nm`` the group's vertex nearest its volume-weighted centroid (a point inside);
* ``size_nm3``, ``area_nm2`` sums over the group (lateral area of the cylinders, sphere area);
* ``max_dt_nm`` the largest radius; ``mean_dt_nm`` the volume-weighted mean distance to the
  surface (r/3 inside a cylinder, r/4 inside a sphere);
* ``pca`` the principal axes (rows, by decreasing variance) and ``pca_val`` their variances
  (nm^2) of the cylinders' volume;
* ``chunk_intersect_count`` the cross-section (in 8 x 8 nm / 8 x 40 nm faces) of the skeleton
  edges leaving the chunk through each of its six faces (bottom x, y, z; top x, y, z).

Level-2 ids follow the id layout of ``contract/ids.py`` with layer 2 (top byte 2, as the real
ids in datasets-facts §1.4); their per-chunk counters start at ``L2_COUNTER_BASE`` so that they
never equal a supervoxel's counter. Only some cells get level-2 data (all proofread neurons
and ``params.level2_other_cells`` others): the whole sample's 14 million skeleton vertices
would double the build time (see ``resources.py``); the server says so for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from offline_cave.contract.geometry import cortical_to_nm
from offline_cave.contract.params import DatastackParams

L2_LAYER = 2 << 56
L2_COUNTER_BASE = 1 << 25
"""Counters of level-2 ids start here; supervoxel counters stay far below (< ~1e6)."""


@dataclass
class Level2:
    """Everything ``layout.LEVEL2_*`` stores, with the columns of the layout."""

    node_tables: list[pa.Table]  # LEVEL2_NODE_COLUMNS per batch, sorted by nucleus_id, l2_id
    edges: pd.DataFrame  # layout.LEVEL2_EDGE_COLUMNS, sorted by nucleus_id
    vertex_l2: dict[int, np.ndarray]  # nucleus id -> level-2 id of each skeleton vertex

    @property
    def nodes(self) -> pd.DataFrame:
        """All nodes as one frame (for tests: the build writes the batches one by one)."""
        return pa.concat_tables(self.node_tables).to_pandas()

    @property
    def n_nodes(self) -> int:
        return sum(t.num_rows for t in self.node_tables)


def select_cells(cells: pd.DataFrame, is_neuron: np.ndarray, n_other: int) -> np.ndarray:
    """Nucleus ids with level-2 data: every proofread neuron and ``n_other`` other neurons
    (evenly spaced in nucleus-id order), sorted."""
    neuron = cells[is_neuron]
    proof = neuron.loc[neuron["proofread_axon"].astype(bool), "nucleus_id"].to_numpy()
    others = np.sort(neuron.loc[~neuron["proofread_axon"].astype(bool), "nucleus_id"].to_numpy())
    if n_other and others.size:
        pick = np.unique(np.linspace(0, others.size - 1, min(n_other, others.size)).astype(int))
        others = others[pick]
    else:
        others = others[:0]
    return np.sort(np.concatenate([proof, others])).astype(np.int64)


def _vertex_pieces(labels: np.ndarray, core: int, frag_pieces: np.ndarray) -> np.ndarray:
    """Piece of each vertex: the core for fragment label 0, else the label's fragment piece."""
    out = np.full(labels.size, core, dtype=np.int64)
    frag = labels > 0
    out[frag] = frag_pieces[labels[frag] - 1]
    return out


BATCH_CELLS = 100
"""Cells per batch: the per-vertex temporaries stay ~100 MB whatever the scale."""


def build_level2(params: DatastackParams, skeletons: dict, nuclei: np.ndarray,
                 frag_labels: dict[int, np.ndarray], core_piece_of: dict[int, int],
                 frag_pieces_of: dict[int, np.ndarray]) -> Level2:
    """Level-2 nodes, edges and attributes of the cells ``nuclei`` (skeletons in the
    cortical frame, um; written in the dataset's nm frame like ``skeletons.parquet``),
    computed :data:`BATCH_CELLS` cells at a time."""
    used: dict[int, int] = {}  # chunk key -> counters handed out so far
    batches = [_build_batch(params, skeletons, nuclei[i:i + BATCH_CELLS], frag_labels,
                            core_piece_of, frag_pieces_of, used)
               for i in range(0, len(nuclei), BATCH_CELLS)]
    if not batches:
        return Level2([pa.table({"l2_id": np.zeros(0, np.int64)})],
                      pd.DataFrame({c: np.zeros(0, np.int64)
                                    for c in ("nucleus_id", "l2_id_a", "l2_id_b")}), {})
    # ``nuclei`` is sorted, so the batches come in nucleus order
    return Level2([t for b in batches for t in b.node_tables],
                  pd.concat([b.edges for b in batches], ignore_index=True),
                  {k: v for b in batches for k, v in b.vertex_l2.items()})


def _build_batch(params: DatastackParams, skeletons: dict, nuclei: np.ndarray,
                 frag_labels: dict[int, np.ndarray], core_piece_of: dict[int, int],
                 frag_pieces_of: dict[int, np.ndarray], used: dict[int, int]) -> Level2:
    """:func:`build_level2` for one batch of cells; ``used`` keeps the per-chunk counters
    unique across batches."""
    base = np.asarray(params.base_resolution, dtype=np.float64)
    chunk = np.asarray(params.chunk_size, dtype=np.float64)
    offset = np.asarray(params.chunk_offset_vx, dtype=np.float64)
    parts = []
    start = 0
    for nid in nuclei:
        sk = skeletons[int(nid)]
        n = len(sk.parent)
        parts.append((int(nid), start, n, sk))
        start += n
    total = start
    if total == 0:
        empty = pd.DataFrame({c: [] for c in ("l2_id",)})
        return Level2(empty, pd.DataFrame(), {})
    xyz = cortical_to_nm(np.concatenate([p[3].vertices for p in parts]).astype(np.float64),
                         params)
    radius = np.concatenate([p[3].radius for p in parts]).astype(np.float64) * 1000.0
    comp = np.concatenate([p[3].compartment for p in parts]).astype(np.int64)
    parent = np.concatenate([np.where(p[3].parent >= 0, p[3].parent + p[1], -1)
                             for p in parts]).astype(np.int64)
    nucleus = np.concatenate([np.full(p[2], p[0], np.int64) for p in parts])
    piece = np.concatenate([_vertex_pieces(frag_labels[p[0]], core_piece_of[p[0]],
                                           frag_pieces_of.get(p[0], np.zeros(0, np.int64)))
                            for p in parts])
    cc = np.clip(np.floor((xyz / base - offset) / chunk), 0, 1023).astype(np.int64)
    chunk_key = (cc[:, 0] << 20) | (cc[:, 1] << 10) | cc[:, 2]

    child = np.flatnonzero(parent >= 0)
    par = parent[child]
    same = (chunk_key[child] == chunk_key[par]) & (piece[child] == piece[par])
    graph = coo_matrix((np.ones(int(same.sum())), (child[same], par[same])),
                       shape=(total, total))
    n_groups, group = connected_components(graph, directed=False)

    # per-vertex share of cable: half of its parent edge plus half of each child edge
    seg_vec = np.zeros((total, 3))
    seg_vec[child] = xyz[child] - xyz[par]
    seg_len = np.sqrt(np.einsum("ij,ij->i", seg_vec, seg_vec))
    cable = 0.5 * seg_len + 0.5 * np.bincount(par, weights=seg_len[child], minlength=total)
    direction = np.zeros((total, 3))
    has = seg_len > 0
    direction[has] = seg_vec[has] / seg_len[has, None]
    # a root vertex takes the direction of its first child edge
    no_dir = ~has
    if no_dir.any():
        first_child = np.full(total, -1, np.int64)
        first_child[par[::-1]] = child[::-1]
        fc = first_child[no_dir]
        direction[no_dir] = np.where((fc >= 0)[:, None], direction[np.maximum(fc, 0)], [1, 0, 0])
    soma = comp == 1
    volume = np.where(soma, 4.0 / 3.0 * np.pi * radius ** 3, np.pi * radius ** 2 * cable)
    area = np.where(soma, 4.0 * np.pi * radius ** 2, 2.0 * np.pi * radius * cable)
    mean_dt_v = np.where(soma, radius / 4.0, radius / 3.0)

    def gsum(values: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=values, minlength=n_groups)

    size = gsum(volume)
    w = np.maximum(size, 1e-9)
    centroid = np.stack([gsum(volume * xyz[:, a]) for a in range(3)], axis=1) / w[:, None]
    # representative point: the vertex nearest the centroid
    d2 = np.einsum("ij,ij->i", xyz - centroid[group], xyz - centroid[group])
    order = np.lexsort((d2, group))
    first = np.r_[0, np.flatnonzero(np.diff(group[order])) + 1]
    rep = order[first]
    by_radius = np.lexsort((radius, group))  # the last of each group has the largest radius
    last = np.r_[np.flatnonzero(np.diff(group[by_radius])), total - 1]
    max_dt = radius[by_radius[last]]
    # covariance of the cylinders: along-axis L^2/12, across r^2/4, plus the centres' scatter
    along = np.where(soma, radius ** 2 / 5.0, cable ** 2 / 12.0)
    across = np.where(soma, radius ** 2 / 5.0, radius ** 2 / 4.0)
    rel = xyz - centroid[group]
    cov = np.empty((n_groups, 3, 3))
    for a in range(3):  # one weighted sum per matrix entry: no (n, 3, 3) temporaries
        for b in range(a, 3):
            entry = (along - across) * direction[:, a] * direction[:, b] + rel[:, a] * rel[:, b]
            if a == b:
                entry += across
            cov[:, a, b] = cov[:, b, a] = gsum(volume * entry) / w
    del rel
    vals, vecs = np.linalg.eigh(cov)
    vals, vecs = vals[:, ::-1], vecs[:, :, ::-1]  # decreasing variance; columns = axes
    pca = np.transpose(vecs, (0, 2, 1))  # rows = axes

    # chunk faces crossed by the skeleton edges leaving each group
    cross = child[~same & (chunk_key[child] != chunk_key[par])]
    faces = np.zeros((n_groups, 6))
    face_area = np.array([base[1] * base[2], base[0] * base[2], base[0] * base[1]])
    for a_vertex, b_vertex in ((cross, parent[cross]), (parent[cross], cross)):
        step = cc[b_vertex] - cc[a_vertex]
        section = np.pi * radius[a_vertex] ** 2
        for axis in range(3):
            for side, sel in ((0, step[:, axis] < 0), (1, step[:, axis] > 0)):
                faces[:, side * 3 + axis] += np.bincount(
                    group[a_vertex[sel]], weights=section[sel] / face_area[axis],
                    minlength=n_groups)

    # ids: chunk of the group, counter per chunk from L2_COUNTER_BASE
    g_key = chunk_key[rep]
    g_order = np.argsort(g_key, kind="stable")
    sorted_key = g_key[g_order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_key)) + 1]
    counts = np.diff(np.r_[starts, n_groups])
    uniq = sorted_key[starts]
    first_k = np.array([used.get(int(u), 0) for u in uniq], dtype=np.int64)
    used.update(zip(uniq.tolist(), (first_k + counts).tolist(), strict=True))
    k = np.empty(n_groups, dtype=np.int64)
    k[g_order] = (np.arange(n_groups) - np.repeat(starts, counts) + np.repeat(first_k, counts)
                  + L2_COUNTER_BASE)
    gx, gy, gz = (g_key >> 20) & 1023, (g_key >> 10) & 1023, g_key & 1023
    l2_id = (np.int64(L2_LAYER) | (gx << 46) | (gy << 36) | (gz << 26) | k).astype(np.int64)

    f32 = np.float32
    order = np.lexsort((l2_id, nucleus[rep]))
    nodes = pa.table({
        "l2_id": l2_id, "nucleus_id": nucleus[rep], "piece_id": piece[rep],
        "rep_coord_x": xyz[rep, 0], "rep_coord_y": xyz[rep, 1], "rep_coord_z": xyz[rep, 2],
        "size_nm3": size.astype(f32), "area_nm2": gsum(area).astype(f32),
        "max_dt_nm": max_dt.astype(f32), "mean_dt_nm": (gsum(volume * mean_dt_v) / w).astype(f32),
        **{f"pca_{i}_{a}": pca[:, i, j].astype(f32) for i in range(3)
           for j, a in enumerate("xyz")},
        **{f"pca_val_{i}": vals[:, i].astype(f32) for i in range(3)},
        **{f"chunk_intersect_count_{i}": np.rint(faces[:, i]).astype(np.int32)
           for i in range(6)},
    }).take(order)
    vl2 = l2_id[group]
    cut = child[~same]
    edges = pd.DataFrame({"nucleus_id": nucleus[cut], "l2_id_a": vl2[cut],
                          "l2_id_b": vl2[parent[cut]], "piece_id_a": piece[cut],
                          "piece_id_b": piece[parent[cut]]})
    vertex_l2 = {nid: vl2[s:s + n] for nid, s, n, _ in parts}
    return Level2([nodes], edges.reset_index(drop=True), vertex_l2)


def vertex_lookup(vertex_l2: dict[int, np.ndarray], nucleus: np.ndarray,
                  node: np.ndarray) -> np.ndarray:
    """Level-2 id of the skeleton vertex ``node`` of cell ``nucleus`` (0 where the cell has
    no level-2 data or there is no cell)."""
    nucleus = np.asarray(nucleus, dtype=np.int64)
    out = np.zeros(len(nucleus), dtype=np.int64)
    if not vertex_l2 or not len(nucleus):
        return out
    nids = np.array(sorted(vertex_l2), dtype=np.int64)
    sizes = np.array([len(vertex_l2[k]) for k in nids])
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    flat = np.concatenate([vertex_l2[k] for k in nids])
    pos = np.clip(np.searchsorted(nids, nucleus), 0, len(nids) - 1)
    found = nids[pos] == nucleus
    out[found] = flat[starts[pos[found]] + np.asarray(node)[found]]
    return out
