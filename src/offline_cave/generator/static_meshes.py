"""Static multi-resolution meshes of the flat segmentations ``seg_m943`` and ``seg_m1300``.

The real MICrONS flat segmentations of versions 943 and 1300 come with static meshes at 3-4
levels of detail (datasets-facts §1.1), in Neuroglancer's multi-resolution format
(``neuroglancer_multilod_draco``) in ``neuroglancer_uint64_sharded_v1`` shard files, keyed by
the root ids *of that version*. The sample writes the same for the cells with level-2 data
(every proofread neuron, the tutorials' example cells and ``level2_other_cells`` others: the
cells the pages take meshes and meshworks of), under ``static/seg_m{N}/``:

* ``info``: a precomputed segmentation info (8 x 8 x 40 nm, as the real flat segmentations)
  whose ``mesh`` is ``mesh``;
* ``mesh/info``: ``@type`` ``neuroglancer_multilod_draco``, 16 vertex quantization bits, an
  identity transform (stored model coordinates are nm) and the sharding specification;
* ``mesh/<shard>.shard``: per root, its Draco fragments (LOD 0 first) followed by its
  manifest, which the minishard index points at (what cloud-volume's
  ``ShardedMultiLevelPrecomputedMeshSource`` and Neuroglancer read).

Each level of detail is the cell's tube mesh (:func:`offline_cave.contract.mesh.skeleton_mesh`,
the same builder as the dynamic meshes; LOD 0 *is* the dynamic mesh) built from a thinned
skeleton with fewer sides per ring, so the vertex count falls with the level: about 1, 0.38,
0.13 and 0.05 of LOD 0 (the real ``seg_m1300`` mesh of the example pyramidal cell falls 1,
0.28, 0.048, 0.011; public-example-cells.md §1). This is simplification along the skeleton,
not quadric decimation of a voxel mesh: no package in the lock decimates meshes. One fragment
per level covers the whole cell (the specification allows it; real meshes split each level
into octree chunks).
"""

from __future__ import annotations

import DracoPy
import numpy as np
from cloudvolume.datasource.precomputed.mesh.multilod import MultiLevelPrecomputedMeshManifest
from cloudvolume.datasource.precomputed.sharding import (
    ShardingSpecification,
    compute_shard_params_for_hashed,
    synthesize_shard_files,
)

from offline_cave.contract import layout
from offline_cave.contract.mesh import skeleton_mesh

QUANTIZATION_BITS = 16
"""Vertex quantization bits of the Draco fragments."""

LODS = ((1, 8), (2, 6), (4, 4), (8, 3))
"""(keep every n-th node along unbranched paths, tube sides) of LOD 0..3."""

RESOLUTION = (8, 8, 40)
"""Voxel size of the real flat segmentations (datasets-facts §1.1)."""


def thin_skeleton(parent: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the root, branch points, tips and every ``step``-th node along the paths between
    them; returns (kept node indices, parent of each kept node as an index into them, -1 at
    the root)."""
    parent = np.asarray(parent, dtype=np.int64)
    n = parent.size
    if step <= 1 or n == 0:
        return np.arange(n), parent.copy()
    is_root = (parent < 0) | (parent >= n)
    n_children = np.bincount(parent[~is_root], minlength=n)
    # topological order: parents before children (breadth first from the roots)
    children: list[list[int]] = [[] for _ in range(n)]
    for i, p in enumerate(parent.tolist()):
        if 0 <= p < n and p != i:
            children[p].append(i)
    order = [int(i) for i in np.nonzero(is_root)[0]]
    k = 0
    while k < len(order):
        order.extend(children[order[k]])
        k += 1
    hops = np.zeros(n, dtype=np.int64)  # hops since the last kept ancestor
    kept_anc = np.full(n, -1, dtype=np.int64)  # nearest kept node at or above each node
    keep = np.zeros(n, dtype=bool)
    pl = parent.tolist()
    special = (is_root | (n_children != 1)).tolist()
    new_parent = np.full(n, -1, dtype=np.int64)
    for i in order:
        p = pl[i]
        if special[i] or p < 0 or p >= n:
            keep[i] = True
        else:
            hops[i] = hops[p] + 1
            keep[i] = hops[i] >= step
        if keep[i]:
            hops[i] = 0
            new_parent[i] = kept_anc[p] if 0 <= p < n and p != i else -1
            kept_anc[i] = i
        else:
            kept_anc[i] = kept_anc[p]
    idx = np.nonzero(keep)[0]
    remap = np.full(n, -1, dtype=np.int64)
    remap[idx] = np.arange(idx.size)
    par = new_parent[idx]
    return idx, np.where(par >= 0, remap[np.maximum(par, 0)], -1)


def lod_meshes(vertices: np.ndarray, parent: np.ndarray, radius: np.ndarray,
               soma_radius: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(vertices nm, faces) of LOD 0..3 of one cell."""
    out = []
    for step, sides in LODS:
        idx, par = thin_skeleton(parent, step)
        out.append(skeleton_mesh(vertices[idx], par, radius[idx], soma_radius=soma_radius,
                                 sides=sides))
    return out


def encode_multilod(meshes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[bytes, int]:
    """One root's shard payload (Draco fragments of every LOD, then the manifest) and the
    manifest's length (the shard's ``data_offset`` of the root)."""
    lo = np.min([v.min(axis=0) for v, _ in meshes], axis=0).astype(np.float64)
    hi = np.max([v.max(axis=0) for v, _ in meshes], axis=0).astype(np.float64)
    extent = float(np.max(hi - lo)) + 1.0
    grid_origin = np.floor(lo) - 1.0
    chunk = np.full(3, np.ceil(extent) + 2.0)  # LOD 0's one fragment covers the cell
    q = 2 ** QUANTIZATION_BITS - 1
    fragments = []
    for lod, (verts, faces) in enumerate(meshes):
        stored = (verts.astype(np.float64) - grid_origin) / (chunk * 2 ** lod) * q
        stored = np.clip(np.round(stored), 0, q)
        fragments.append(DracoPy.encode(stored.astype(np.float32), faces.astype(np.uint32),
                                        quantization_bits=QUANTIZATION_BITS,
                                        compression_level=1, quantization_range=q,
                                        quantization_origin=(0.0, 0.0, 0.0),
                                        create_metadata=True))
    n = len(meshes)
    manifest = MultiLevelPrecomputedMeshManifest(
        segment_id=0, chunk_shape=chunk, grid_origin=grid_origin, num_lods=n,
        lod_scales=[float(2 ** k) for k in range(n)], vertex_offsets=np.zeros((n, 3)),
        num_fragments_per_lod=[1] * n,
        fragment_positions=[np.zeros((1, 3), dtype=np.uint32) for _ in range(n)],
        fragment_offsets=[len(f) for f in fragments]).to_binary()
    return b"".join(fragments) + manifest, len(manifest)


def sharding_spec(n_labels: int) -> ShardingSpecification:
    """The shard layout for ``n_labels`` roots (cloud-volume's rule for hashed labels, as
    igneous uses for the real meshes); data raw (fragments are read by byte range), minishard
    indices gzip."""
    shard_bits, minishard_bits, preshift_bits = compute_shard_params_for_hashed(
        num_labels=max(int(n_labels), 1), shard_index_bytes=2 ** 13,
        minishard_index_bytes=2 ** 15)
    return ShardingSpecification(type="neuroglancer_uint64_sharded_v1",
                                 preshift_bits=int(preshift_bits), hash="murmurhash3_x86_128",
                                 minishard_bits=int(minishard_bits), shard_bits=int(shard_bits),
                                 minishard_index_encoding="gzip", data_encoding="raw")


def segmentation_info(bounds_vx: list, viewer_resolution: tuple) -> dict:
    """The precomputed info of a flat segmentation over the sample's bounds (8 x 8 x 40 nm)."""
    lo = np.asarray(bounds_vx[0], dtype=float) * np.asarray(viewer_resolution) / RESOLUTION
    hi = np.asarray(bounds_vx[1], dtype=float) * np.asarray(viewer_resolution) / RESOLUTION
    lo, hi = np.floor(lo).astype(int), np.ceil(hi).astype(int)
    return {"type": "segmentation", "data_type": "uint64", "num_channels": 1, "mesh": "mesh",
            "scales": [{"key": "8_8_40", "resolution": list(RESOLUTION),
                        "voxel_offset": lo.tolist(), "size": (hi - lo).tolist(),
                        "chunk_sizes": [[256, 256, 32]], "encoding": "compressed_segmentation",
                        "compressed_segmentation_block_size": [8, 8, 8]}]}


def write_static_meshes(out, versions: dict[int, dict[int, int]], payloads: dict[int, tuple],
                        bounds_vx: list, viewer_resolution: tuple) -> dict[int, int]:
    """Write ``static/seg_m{N}/`` for each version N: ``versions[N]`` maps nucleus id -> root
    id at N, ``payloads[nucleus]`` is :func:`encode_multilod`'s output. Returns the number of
    meshes per version."""
    counts = {}
    for version, roots in sorted(versions.items()):
        data = {int(roots[k]): payloads[k][0] for k in sorted(roots) if k in payloads}
        offsets = {int(roots[k]): payloads[k][1] for k in sorted(roots) if k in payloads}
        spec = sharding_spec(len(data))
        base = layout.static_segmentation_dir(version)
        out.put(f"{base}/info", segmentation_info(bounds_vx, viewer_resolution))
        out.put(f"{base}/mesh/info", {
            "@type": "neuroglancer_multilod_draco",
            "vertex_quantization_bits": QUANTIZATION_BITS,
            "transform": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0],
            "lod_scale_multiplier": 1.0,
            "sharding": {k: v if isinstance(v, str) else int(v)
                         for k, v in spec.to_dict().items()}})
        for name, binary in sorted(synthesize_shard_files(spec, data, offsets).items()):
            out.put_bytes(f"{base}/mesh/{name}", binary)
        counts[version] = len(data)
    return counts
