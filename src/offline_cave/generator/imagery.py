"""EM-like imagery and the matching supervoxel (watershed) segmentation of one small region.

The public minnie65 datastack serves its EM at ``aligned_volume.image_source`` (finest stored
level 8 x 8 x 40 nm; datasets-facts §1.1) and its supervoxel segmentation ("watershed", the
layer 1 of the chunkedgraph) under the graphene info's ``data_dir``. The sample renders both
for one box of ``REGION_CHUNKS`` watershed chunks (10.24 x 10.24 x 1.28 um at 8 x 8 x 40 nm)
centred on the largest input synapse of the example pyramidal cell (``examples``) within
``FOCUS_WITHIN_UM`` of its nucleus point,
from the synthetic cells themselves:

* every skeleton edge of a cell crossing the box is a tapered capsule (its node radii), the
  soma a sphere of the soma radius with a nucleus (``NUCLEUS_FRACTION`` of it) inside;
* every synapse in the box gets a presynaptic bouton (a sphere on the ``pre_pt`` side of
  ``ctr_pt``, with a cloud of ~40 nm synaptic vesicles on the cleft side; boutons of axons
  from outside the slab get a thin axon shaft through them) and a postsynaptic head (a sphere
  around ``post_pt``; a spine neck joins it to its dendrite when it sits away from it), a
  ~20 nm cleft between the two and a postsynaptic density;
* the grey values: membranes dark, cytoplasm mid-grey, nucleus lighter with darker
  heterochromatin, vesicles dark rings, and the space no sample cell fills (the sample keeps
  one synapse in 12 and no axon from outside the slab beyond its boutons) an unlabelled
  neuropil texture; then a slight blur and noise. Grey values are *assumed* (they only mimic
  the look of EM: dark membranes and vesicles on a mid-grey cytoplasm).

Supervoxels: a voxel of a sample object carries a supervoxel id *of the sample*, one of those
the synapse and nucleus tables name and ``segments/pieces.parquet`` maps to a piece: the one of
the nearest point (synapse ``pre_pt``/``post_pt``, nucleus ``pt_position``) of the same
segmentation piece, so the chunkedgraph gives every voxel the root of its cell (a Voronoi
"watershed" inside each piece). Pieces with no such point within ``CANDIDATE_PAD_UM`` of the
box, and the unlabelled neuropil, are 0.

Coarser levels (mips), as the real image and watershed layers have them (each halves x and y;
datasets-facts §1.1): mips 1 and 2 (16 and 32 nm) are the full-resolution box averaged down
(image) or sampled (supervoxels), and mip 3 (64 x 64 x 40 nm) covers a wider box,
``WIDE_CHUNKS`` (40.96 x 40.96 x 1.28 um, the sections of the full-resolution box) around
the same synapse, rendered directly at 64 nm
from the same objects (each synapse's bouton, shaft and vesicles come from its own random
stream, so both renders draw it alike): membranes and neuropil lines are blended to the share
of the 64 nm pixel they cover, vesicle clouds are a darker half of the bouton. The full
resolution stays small, so disk and build time stay modest.

Files (``contract.layout``: ``imagery/``): ``imagery/em/<key>/<chunk>`` JPEG chunks of the
image, ``imagery/ws/<key>/<chunk>.gz`` gzipped raw uint64 chunks of the supervoxels (one
``<key>`` per mip, e.g. ``8_8_40``, ``64_64_40``) and ``imagery/imagery.json`` (the mips with
their resolution, box and chunk size, encodings, the focus synapse). Only minnie65_public
(where the example cells are planted) has imagery.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from offline_cave.contract.geometry import cortical_to_nm, cortical_to_voxels

RESOLUTION = (8, 8, 40)  # nm: the finest stored EM level of minnie65 (datasets-facts §1.1)
WS_CHUNK = (256, 256, 16)
IMAGE_CHUNK = (256, 256, 16)
REGION_CHUNKS = (5, 5, 2)  # watershed chunks of the box: 1280 x 1280 x 32 voxels
SMALL_REGION_CHUNKS = (1, 1, 2)  # below scale 1 (the test builds): 2.05 x 2.05 x 1.28 um
SCALES = ((8, 8, 40), (16, 16, 40), (32, 32, 40), (64, 64, 40))  # mips 0-3 (x, y halve)
MIP_CHUNK = ((256, 256, 16), (128, 128, 16), (64, 64, 16), (128, 128, 16))
WIDE_MIP = 3  # the mip rendered over the wide box
WIDE_CHUNKS = (5, 5, 2)  # mip-3 chunks: 640 x 640 x 32 voxels, 40.96 x 40.96 x 1.28 um
# (5.12 um deep, 8 chunks, took 408 s to render under load: over the build-time budget)
SMALL_WIDE_CHUNKS = (1, 1, 2)  # below scale 1: 8.19 x 8.19 x 1.28 um
JPEG_QUALITY = 85
FOCUS_WITHIN_UM = 12.0  # focus: the largest input synapse this close to the nucleus point
CANDIDATE_PAD_UM = 15.0  # supervoxel points this far outside the box may label it
NUCLEUS_FRACTION = 0.65  # nucleus radius / soma radius (*assumed*)
MEMBRANE_NM = 14.0  # half-width of a dark membrane line
CLEFT_NM = 12.0  # half-width of the synaptic cleft (~25 nm across)
BOUTON_RADIUS_NM = (350.0, 500.0)
VESICLES = (150, 300)  # per bouton (a section shows ~20 of them)
VESICLE_RADIUS_NM = 20.0  # synaptic vesicles are ~40 nm across
NECK_RADIUS_NM = 60.0
PSD_RADIUS_NM = 200.0
AXON_SHAFT_NM = (80.0, 1500.0)  # radius, half-length of the shaft through outside boutons
# grey values (assumed; EM-like contrast)
GREY = {"neuropil": 150.0, "neuropil_membrane": 85.0, "cytoplasm": 168.0, "membrane": 62.0,
        "nucleus": 188.0, "chromatin": 140.0, "envelope": 70.0, "vesicle": 55.0,
        "vesicle_lumen": 150.0, "psd": 40.0}


@dataclass
class Cell:
    """A cell crossing the box: its skeleton in nm and each node's fragment label."""

    row: int  # row of ``cells``
    nucleus_id: int
    vertices_nm: np.ndarray
    parent: np.ndarray
    radius_nm: np.ndarray
    labels: np.ndarray  # axon fragment label per node (0 = the cell's core piece)


@dataclass
class Plan:
    """What the render stage needs, kept while the skeletons are still in memory."""

    lo_vx: np.ndarray  # box start, base voxels (RESOLUTION)
    shape: tuple[int, int, int]
    focus: int  # synapse row of the focus synapse
    cells: list[Cell]
    syn_rows: np.ndarray  # synapse rows with a point within CANDIDATE_PAD_UM of the box
    pre_nm: np.ndarray
    post_nm: np.ndarray
    ctr_nm: np.ndarray
    post_nucleus: np.ndarray
    stats: dict = field(default_factory=dict)
    wide_lo_vx: np.ndarray | None = None  # the wide box at mip WIDE_MIP (None: none)
    wide_shape: tuple[int, int, int] | None = None
    seed: int = 0  # of the per-synapse random streams

    def region_nm(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) corner in nm of all the imaged boxes together."""
        lo, hi = box_of(self.lo_vx, self.shape)
        if self.wide_lo_vx is not None:
            wlo, whi = box_of(self.wide_lo_vx, self.wide_shape, SCALES[WIDE_MIP])
            lo, hi = np.minimum(lo, wlo), np.maximum(hi, whi)
        return lo, hi


def box_of(lo_vx: np.ndarray, shape: tuple[int, int, int],
           resolution=RESOLUTION) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) corner of the box in nm (voxels of ``resolution``)."""
    res = np.asarray(resolution, float)
    return lo_vx * res, (lo_vx + np.asarray(shape)) * res


def mip_offset(chunk_offset_vx, mip: int) -> np.ndarray:
    """The voxel offset of a mip (its chunk grid's origin): the mip-0 offset divided by the
    mip's factor, rounded down (cloud-volume's convention for downsampled scales)."""
    factor = np.asarray(SCALES[mip]) // np.asarray(SCALES[0])
    return np.asarray(chunk_offset_vx) // factor


def plan(params, cells, syn, skeletons: dict, frag_labels: dict, example_row: int,
         chunk_offset_vx, scale: float = 1.0) -> Plan | None:
    """Choose the box around a synapse onto the example cell and keep what it needs (None
    when the cell has no input synapse)."""
    t0 = time.perf_counter()
    nid = int(cells["nucleus_id"].iloc[example_row])
    table_res = np.asarray(params.voxel_resolution, float)
    nucleus_nm = cells[["pt_x", "pt_y", "pt_z"]].to_numpy(float)[example_row] * table_res
    onto = np.flatnonzero(syn["post_nucleus_id"].to_numpy() == nid)
    ctr_um = syn[["ctr_x_um", "ctr_y_um", "ctr_z_um"]].to_numpy()[onto]
    ctr_vx = np.rint(cortical_to_voxels(ctr_um, params))  # as the synapse table stores it
    dist = np.linalg.norm(ctr_vx * table_res - nucleus_nm, axis=1)
    size = syn["size"].to_numpy()[onto]
    fits = np.flatnonzero(dist < FOCUS_WITHIN_UM * 1000)
    if fits.size == 0:
        fits = np.argsort(dist)[:1]
    if fits.size == 0:  # no input synapse at all (a tiny test sample): no imagery
        return None
    # the largest input synapse near the nucleus (ties: the nearest), as the page picks it
    pick = int(fits[np.lexsort((dist[fits], -size[fits]))[0]])
    focus = int(onto[pick])
    ctr = ctr_vx * table_res
    res = np.asarray(RESOLUTION, float)
    chunk = np.asarray(WS_CHUNK)
    off = np.asarray(chunk_offset_vx)
    n = np.asarray(REGION_CHUNKS if scale >= 1 else SMALL_REGION_CHUNKS)
    c_vx = ctr[pick] / res
    # the box of n chunks whose middle is nearest the synapse
    lo = off + np.floor((c_vx - off) / chunk - (n - 1) / 2).astype(int) * chunk
    shape = tuple(int(v) for v in n * chunk)
    # the wide box at mip WIDE_MIP, its middle nearest the synapse too
    w_chunk = np.asarray(MIP_CHUNK[WIDE_MIP])
    w_off = mip_offset(off, WIDE_MIP)
    w_n = np.asarray(WIDE_CHUNKS if scale >= 1 else SMALL_WIDE_CHUNKS)
    w_c = ctr[pick] / np.asarray(SCALES[WIDE_MIP], float)
    w_lo = w_off + np.floor((w_c - w_off) / w_chunk - (w_n - 1) / 2).astype(int) * w_chunk
    w_shape = tuple(int(v) for v in w_n * w_chunk)
    box_lo, box_hi = box_of(lo, shape)
    w_lo_nm, w_hi_nm = box_of(w_lo, w_shape, SCALES[WIDE_MIP])
    box_lo, box_hi = np.minimum(box_lo, w_lo_nm), np.maximum(box_hi, w_hi_nm)
    pad = CANDIDATE_PAD_UM * 1000

    kept: list[Cell] = []
    row_of = dict(zip(cells["nucleus_id"].to_numpy().tolist(), range(len(cells)), strict=True))
    for k, s in skeletons.items():
        v = cortical_to_nm(s.vertices, params)
        r = np.asarray(s.radius, float) * 1000
        reach = r.max() + 5000  # edges are at most a few um
        if np.any(np.all((v > box_lo - reach) & (v < box_hi + reach), axis=1)):
            kept.append(Cell(row_of[int(k)], int(k), v, np.asarray(s.parent), r,
                             np.asarray(frag_labels[k])))
    # the synapses near the box, a block of rows at a time (memory flat in the scale)
    found: dict[str, list[np.ndarray]] = {"rows": [], "pre": [], "post": [], "ctr": []}
    for start in range(0, len(syn), PLAN_BLOCK_ROWS):
        block = syn.iloc[start:start + PLAN_BLOCK_ROWS]
        pts = {p: cortical_to_nm(block[[f"{p}_x_um", f"{p}_y_um", f"{p}_z_um"]].to_numpy(),
                                 params) for p in ("pre", "post", "ctr")}
        inside = np.zeros(len(block), bool)
        for p in ("pre", "post"):
            inside |= np.all((pts[p] > box_lo - pad) & (pts[p] < box_hi + pad), axis=1)
        at = np.flatnonzero(inside)
        found["rows"].append(start + at)
        for p in ("pre", "post", "ctr"):
            found[p].append(pts[p][at])
    rows = np.concatenate(found["rows"]) if found["rows"] else np.zeros(0, np.int64)
    pre, post, ctr = (np.concatenate(found[k]) if found[k] else np.zeros((0, 3))
                      for k in ("pre", "post", "ctr"))
    stats = {"plan_s": round(time.perf_counter() - t0, 2), "cells": len(kept),
             "focus_ctr_vx": ctr_vx[pick].astype(int).tolist()}
    return Plan(lo, shape, focus, kept, rows, pre, post, ctr,
                syn["post_nucleus_id"].to_numpy()[rows], stats, w_lo, w_shape)


PLAN_BLOCK_ROWS = 1 << 20  # synapse rows per block when looking for those near the box


# ------------------------------------------------------------------------------ primitives
@dataclass
class _Prims:
    """Capsules (a, b, ra, rb, piece) and spheres (c, r, piece) of the sample objects."""

    a: list = field(default_factory=list)
    b: list = field(default_factory=list)
    ra: list = field(default_factory=list)
    rb: list = field(default_factory=list)
    piece: list = field(default_factory=list)

    def capsule(self, a, b, ra, rb, piece) -> None:
        self.a.append(np.asarray(a, float))
        self.b.append(np.asarray(b, float))
        self.ra.append(float(ra))
        self.rb.append(float(rb))
        self.piece.append(int(piece))

    def sphere(self, c, r, piece) -> None:
        self.capsule(c, c, r, r, piece)

    def arrays(self):
        return (np.array(self.a).reshape(-1, 3), np.array(self.b).reshape(-1, 3),
                np.array(self.ra), np.array(self.rb), np.array(self.piece, np.int64))


@dataclass
class _Synapse:
    ctr: np.ndarray
    u: np.ndarray  # unit vector post -> pre
    bouton_c: np.ndarray
    bouton_r: float
    head_c: np.ndarray
    head_r: float
    pre_piece: int
    post_piece: int
    vesicles: np.ndarray  # (n, 3) nm


@dataclass
class _Layer:
    """Primitives painted into one slice: the smallest signed distance (nm, < 0 inside) of
    any primitive, the piece it belongs to, and the smallest of any *other* piece (so that
    touching objects of two pieces are parted by a membrane, objects of one piece fuse)."""

    a: np.ndarray
    b: np.ndarray
    ra: np.ndarray
    rb: np.ndarray
    piece: np.ndarray

    def __post_init__(self) -> None:
        reach = np.maximum(self.ra, self.rb)[:, None] + 2 * MEMBRANE_NM
        self.lo = np.minimum(self.a, self.b) - reach
        self.hi = np.maximum(self.a, self.b) + reach

    def paint(self, z: float, xs: np.ndarray, ys: np.ndarray):
        shape = (xs.size, ys.size)
        s1 = np.full(shape, np.inf, np.float32)
        s2 = np.full(shape, np.inf, np.float32)
        own = np.full(shape, -1, np.int64)
        hit = np.flatnonzero((self.lo[:, 2] <= z) & (self.hi[:, 2] >= z)
                             & (self.hi[:, 0] >= xs[0]) & (self.lo[:, 0] <= xs[-1])
                             & (self.hi[:, 1] >= ys[0]) & (self.lo[:, 1] <= ys[-1]))
        for m in hit:
            a, ab = self.a[m], self.b[m] - self.a[m]
            reach = max(self.ra[m], self.rb[m]) + 2 * MEMBRANE_NM
            # the part of the capsule within reach of this slice, and its xy extent
            t0, t1 = 0.0, 1.0
            if abs(ab[2]) > 1e-6:
                t0, t1 = sorted(((z - reach - a[2]) / ab[2], (z + reach - a[2]) / ab[2]))
                t0, t1 = max(t0, 0.0), min(t1, 1.0)
            ends = np.array([a + t0 * ab, a + t1 * ab])
            half = np.sqrt(max(reach ** 2 - (min(abs(z - ends[:, 2]).min(), reach)) ** 2, 0)
                           ) if ab[2] == 0 or t0 == t1 else reach
            lo_xy, hi_xy = ends[:, :2].min(axis=0) - half, ends[:, :2].max(axis=0) + half
            i0, i1 = np.searchsorted(xs, [lo_xy[0], hi_xy[0]])
            j0, j1 = np.searchsorted(ys, [lo_xy[1], hi_xy[1]])
            if i1 <= i0 or j1 <= j0:
                continue
            px = (xs[i0:i1] - a[0])[:, None]
            py = (ys[j0:j1] - a[1])[None, :]
            pz = z - a[2]
            L2 = float(ab @ ab)
            t = np.clip((px * ab[0] + py * ab[1] + pz * ab[2]) / L2, 0, 1) if L2 > 0 else 0.0
            d = np.sqrt((px - t * ab[0]) ** 2 + (py - t * ab[1]) ** 2 + (pz - t * ab[2]) ** 2)
            s = (d - (self.ra[m] + t * (self.rb[m] - self.ra[m]))).astype(np.float32)
            v1, v2, vo = s1[i0:i1, j0:j1], s2[i0:i1, j0:j1], own[i0:i1, j0:j1]
            same = vo == self.piece[m]
            better = s < v1
            other = better & ~same
            v2[other] = v1[other]
            v1[better] = s[better]
            vo[other] = self.piece[m]
            lower2 = ~better & ~same & (s < v2)
            v2[lower2] = s[lower2]
        return s1, s2, own


def _node_pieces(cell: Cell, core_piece, cell_fragments) -> np.ndarray:
    frags = cell_fragments.get(cell.nucleus_id, np.zeros(0, np.int64))
    core = int(core_piece[cell.row])
    out = np.full(cell.labels.size, core, np.int64)
    has = cell.labels > 0
    out[has] = frags[cell.labels[has] - 1]
    return out


def _objects(p: Plan, box_lo, box_hi, core_piece, cell_fragments, pre_piece, post_piece,
             seed: int):
    """The primitives of the cells, those of the synapses (boutons, heads, necks, shafts of
    outside axons: drawn over the cells), somata (centre, radius, piece) and synapses. Each
    synapse draws from its own stream (``seed``, its row), so every box draws it alike."""
    prims = _Prims()
    somata = []
    margin = 1000.0
    for cell in p.cells:
        pieces = _node_pieces(cell, core_piece, cell_fragments)
        v, r = cell.vertices_nm, cell.radius_nm
        child = np.arange(1, v.shape[0])
        par = cell.parent[1:]
        lo = np.minimum(v[child], v[par]) - np.maximum(r[child], r[par])[:, None] - margin
        hi = np.maximum(v[child], v[par]) + np.maximum(r[child], r[par])[:, None] + margin
        hit = np.all((hi > box_lo) & (lo < box_hi), axis=1)
        for c, q in zip(child[hit], par[hit], strict=True):
            # the edge belongs to the child's piece; the soma node keeps its sphere below
            rq = r[q] if q != 0 else r[c]
            prims.capsule(v[c], v[q], r[c], rq, pieces[c])
        if np.all((v[0] + r[0] > box_lo) & (v[0] - r[0] < box_hi)):
            prims.sphere(v[0], r[0], pieces[0])
            somata.append((v[0], r[0], int(pieces[0])))
    synapses = []
    parts: dict[int, list] = {}  # skeleton nodes of each piece, for spine necks
    for cell in p.cells:
        pieces = _node_pieces(cell, core_piece, cell_fragments)
        for piece in np.unique(pieces):
            sel = pieces == piece
            parts.setdefault(int(piece), []).append((cell.vertices_nm[sel],
                                                     cell.radius_nm[sel]))
    by_piece = {k: (np.concatenate([x[0] for x in v]), np.concatenate([x[1] for x in v]))
                for k, v in parts.items()}
    front = _Prims()  # the synaptic structures, drawn over whatever else is there
    for i, row in enumerate(p.syn_rows):
        ctr = p.ctr_nm[i]
        if not np.all((ctr > box_lo - margin) & (ctr < box_hi + margin)):
            continue
        pre, post = p.pre_nm[i], p.post_nm[i]
        rng = np.random.default_rng([seed, int(row)])
        u = pre - post
        u = u / max(np.linalg.norm(u), 1e-6)
        rb = float(rng.uniform(*BOUTON_RADIUS_NM))
        bc = ctr + u * (rb + CLEFT_NM)
        rh = max(float(np.dot(ctr - post, u)) - CLEFT_NM, 120.0)
        hc = ctr - u * (rh + CLEFT_NM)
        pp, qp = int(pre_piece[row]), int(post_piece[row])
        front.sphere(bc, rb, pp)
        front.sphere(hc, rh, qp)
        if qp in by_piece:  # spine neck: from the head to the nearest node of its piece
            v, r = by_piece[qp]
            d = np.linalg.norm(v - hc, axis=1) - r
            j = int(np.argmin(d))
            if rh < d[j] < 3000:
                front.capsule(hc, v[j], NECK_RADIUS_NM, NECK_RADIUS_NM, qp)
        if pp not in by_piece:
            # an axon without a skeleton here (outside the slab): a thin shaft through it
            w = np.cross(u, rng.normal(size=3))
            w /= max(np.linalg.norm(w), 1e-6)
            r_ax, half = AXON_SHAFT_NM
            front.capsule(bc - w * half, bc + w * half, r_ax, r_ax, pp)
        n_ves = int(rng.integers(*VESICLES))
        cand = rng.normal(size=(n_ves * 4, 3))
        cand *= ((rb - 2 * VESICLE_RADIUS_NM) * rng.uniform(0, 1, size=(n_ves * 4, 1)) ** (1 / 3)
                 / np.linalg.norm(cand, axis=1, keepdims=True))
        cand = cand[np.dot(cand, u) < -0.1 * rb][:n_ves]  # the half facing the cleft
        synapses.append(_Synapse(ctr, u, bc, rb, hc, rh, pp, qp, bc + cand))
    return prims, front, somata, synapses


# --------------------------------------------------------------------------------- render
def _texture(shape2: tuple[int, int], nz: int, rng: np.random.Generator, step: int, sigma):
    """A smooth random field on a coarse grid (``step`` voxels in x and y, 1 in z)."""
    coarse = rng.normal(size=(shape2[0] // step + 3, shape2[1] // step + 3, nz + 2))
    return ndimage.gaussian_filter(coarse, sigma).astype(np.float32)


def _interpolation(n: int, step: int) -> np.ndarray:
    """(n, n // step + 3) matrix of linear interpolation from a coarse grid of ``step``
    pixels (coarse index c sits at fine pixel (c - 1) * step) to the fine pixels."""
    pos = np.arange(n) / step + 1
    lo = np.floor(pos).astype(int)
    w = np.zeros((n, n // step + 3), np.float32)
    w[np.arange(n), lo] = 1 - (pos - lo)
    w[np.arange(n), lo + 1] = pos - lo
    return w


def _sample(field3: np.ndarray, k: int, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """Slice ``k`` of a coarse field on the fine pixels the rows of ``wx``, ``wy`` give."""
    return wx @ field3[:, :, k + 1] @ wy.T


def render(p: Plan, core_piece, cell_fragments, pre_piece, post_piece, candidates,
           rng: np.random.Generator, box=None, emit=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(image uint8, supervoxels uint64, stats), both (x, y, z) arrays of the box.

    ``candidates`` = (supervoxel ids, their pieces, their points in nm): the sample's
    supervoxels that may label the box. ``box`` = (low corner in voxels, shape, resolution)
    renders another box than the full-resolution one (the wide mip); with ``emit``, every
    ``IMAGE_CHUNK[2]`` sections are handed to ``emit(k0, image, supervoxels)`` instead of
    being kept (the returned arrays are then None).
    """
    t0 = time.perf_counter()
    lo_vx, shape, resolution = box if box is not None else (p.lo_vx, p.shape, RESOLUTION)
    res = np.asarray(resolution, float)
    px = float(res[0])
    box_lo, box_hi = box_of(lo_vx, shape, resolution)
    prims, front, somata, synapses = _objects(p, box_lo, box_hi, core_piece, cell_fragments,
                                              pre_piece, post_piece, p.seed)
    layers = [_Layer(*prims.arrays()), _Layer(*front.arrays())]
    nx, ny, nz = shape
    slab = IMAGE_CHUNK[2] if emit is not None else nz
    image = np.empty((nx, ny, slab), np.uint8)
    ws = np.zeros((nx, ny, slab), np.uint64)
    # textures on a 64 nm grid (at least 2 pixels where the pixels are coarser)
    step = max(2, int(round(64 / px))) if px > 8 else 8
    neuropil = _texture((nx, ny), nz, rng, step, (1.6, 1.6, 3.0))
    chromatin = _texture((nx, ny), nz, rng, step, (1.5, 1.5, 1.0))
    # lines thinner than a pixel are drawn one pixel wide, blended to the share they cover
    mem = max(MEMBRANE_NM, 0.5 * px)
    mem_grey = GREY["cytoplasm"] + (GREY["membrane"] - GREY["cytoplasm"]) * MEMBRANE_NM / mem
    np_half = 1.5 if px <= 8 else max(0.5, 12.0 / px)  # pixels either side of the line
    np_grey = GREY["neuropil"] + (GREY["neuropil_membrane"] - GREY["neuropil"]) * min(
        1.0, 12.0 / (np_half * px))
    grain = 14.0 * min(1.0, 8.0 / px) ** 0.5
    sv_id, sv_piece, sv_nm = candidates
    trees: dict = {}
    xs = box_lo[0] + (np.arange(nx) + 0.5) * res[0]
    ys = box_lo[1] + (np.arange(ny) + 0.5) * res[1]
    wx, wy = _interpolation(nx, step), _interpolation(ny, step)
    for k in range(nz):
        z = box_lo[2] + (k + 0.5) * res[2]
        (s1, s2, own), (t1, t2, town) = (layer.paint(z, xs, ys) for layer in layers)
        on_top = t1 < 0
        s1[on_top], s2[on_top], own[on_top] = t1[on_top], t2[on_top], town[on_top]
        inside = s1 < 0
        # unlabelled neuropil: membranes on the zero level set of a smooth random field,
        # ~1.5 pixels either side of it (|F| / |grad F| is the distance to the level set)
        field2 = _sample(neuropil, k, wx, wy)
        gx, gy = np.gradient(field2)
        near_zero = np.abs(field2) < np_half * np.hypot(gx, gy)
        grey = np.where(near_zero, np_grey, GREY["neuropil"]).astype(np.float32)
        grey[inside] = GREY["cytoplasm"]
        envelope = max(2 * MEMBRANE_NM, 0.5 * px)
        for c, r, soma_piece in somata:  # nucleus: lighter, heterochromatin, dark envelope
            rn = NUCLEUS_FRACTION * r
            if abs(z - c[2]) >= rn + envelope:
                continue
            i0, i1 = np.searchsorted(xs, [c[0] - rn - 50, c[0] + rn + 50])
            j0, j1 = np.searchsorted(ys, [c[1] - rn - 50, c[1] + rn + 50])
            d = np.sqrt((xs[i0:i1, None] - c[0]) ** 2 + (ys[None, j0:j1] - c[1]) ** 2
                        + (z - c[2]) ** 2)
            sub = grey[i0:i1, j0:j1]
            chrom = _sample(chromatin, k, wx[i0:i1], wy[j0:j1]) > 0.12
            ours = own[i0:i1, j0:j1] == soma_piece
            nuc = (d < rn) & ours
            sub[nuc] = np.where(chrom[nuc], GREY["chromatin"], GREY["nucleus"])
            sub[(np.abs(d - rn) < envelope) & ours] = GREY["envelope"]
        for syn in synapses:  # vesicle clouds and the postsynaptic density
            if px <= 16:
                _vesicles(grey, own, xs, ys, z, syn)
            else:  # vesicles of ~40 nm are below a pixel: the half of the bouton they fill
                _vesicle_cloud(grey, own, xs, ys, z, syn)
            dz = z - syn.ctr[2]
            if abs(dz) < PSD_RADIUS_NM:
                i0, i1 = np.searchsorted(xs, [syn.ctr[0] - 300, syn.ctr[0] + 300])
                j0, j1 = np.searchsorted(ys, [syn.ctr[1] - 300, syn.ctr[1] + 300])
                rel_x = xs[i0:i1, None] - syn.ctr[0]
                rel_y = ys[None, j0:j1] - syn.ctr[1]
                along = rel_x * syn.u[0] + rel_y * syn.u[1] + dz * syn.u[2]
                lat2 = rel_x ** 2 + rel_y ** 2 + dz ** 2 - along ** 2
                psd = ((along < -CLEFT_NM) & (along > -CLEFT_NM - max(60.0, px))
                       & (lat2 < PSD_RADIUS_NM ** 2))
                sub = grey[i0:i1, j0:j1]
                sub[psd & (own[i0:i1, j0:j1] == syn.post_piece)] = GREY["psd"]
        with np.errstate(invalid="ignore"):
            gap = s2 - s1
        membrane = (inside & (s1 > -mem)) | (inside & (gap < 2 * mem))
        membrane |= ~inside & (s1 < mem / 2)  # the outer leaflet, against neuropil
        grey[membrane] = mem_grey
        grey += rng.normal(0, grain, size=grey.shape).astype(np.float32)  # grain
        grey = ndimage.gaussian_filter(grey, 0.8)
        grey += rng.normal(0, 4.0, size=grey.shape).astype(np.float32)
        image[:, :, k % slab] = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        ws[:, :, k % slab] = _label_slice(own, inside, xs, ys, z, sv_id, sv_piece, sv_nm,
                                          trees, 4 if px <= 8 else 2)
        if emit is not None and ((k + 1) % slab == 0 or k + 1 == nz):
            n = k % slab + 1
            emit(k + 1 - n, image[:, :, :n], ws[:, :, :n])
    stats = {"render_s": round(time.perf_counter() - t0, 2),
             "primitives": sum(int(x.piece.size) for x in layers),
             "synapses": len(synapses), "somata": len(somata)}
    if emit is not None:
        return None, None, stats
    return image, ws, stats


def _vesicles(grey, own, xs, ys, z, syn: _Synapse) -> None:
    """Draw the synapse's vesicles that this section cuts: dark rings, lighter lumen."""
    for ves in syn.vesicles:
        dz = z - ves[2]
        if abs(dz) >= VESICLE_RADIUS_NM + 10:
            continue
        rr = np.sqrt(max(VESICLE_RADIUS_NM ** 2 - dz ** 2, 25.0))
        i0, i1 = np.searchsorted(xs, [ves[0] - rr - 16, ves[0] + rr + 16])
        j0, j1 = np.searchsorted(ys, [ves[1] - rr - 16, ves[1] + rr + 16])
        d = np.sqrt((xs[i0:i1, None] - ves[0]) ** 2 + (ys[None, j0:j1] - ves[1]) ** 2)
        sub = grey[i0:i1, j0:j1]
        ours = own[i0:i1, j0:j1] == syn.pre_piece
        sub[(d < rr - 8) & ours] = GREY["vesicle_lumen"]
        sub[(np.abs(d - rr) <= 8) & ours] = GREY["vesicle"]


def _vesicle_cloud(grey, own, xs, ys, z, syn: _Synapse) -> None:
    """At coarse pixels: the cleft-side half of the bouton, darkened by the vesicles in it
    (ring and lumen mixed at the share a section of the cloud shows)."""
    c, rb = syn.bouton_c, syn.bouton_r
    if abs(z - c[2]) >= rb:
        return
    i0, i1 = np.searchsorted(xs, [c[0] - rb, c[0] + rb])
    j0, j1 = np.searchsorted(ys, [c[1] - rb, c[1] + rb])
    rel_x, rel_y, dz = xs[i0:i1, None] - c[0], ys[None, j0:j1] - c[1], z - c[2]
    cloud = ((rel_x ** 2 + rel_y ** 2 + dz ** 2 < (rb - 2 * VESICLE_RADIUS_NM) ** 2)
             & (rel_x * syn.u[0] + rel_y * syn.u[1] + dz * syn.u[2] < -0.1 * rb)
             & (own[i0:i1, j0:j1] == syn.pre_piece))
    sub = grey[i0:i1, j0:j1]
    sub[cloud] = 0.6 * sub[cloud] + 0.4 * GREY["vesicle"]


def _label_slice(own, inside, xs, ys, z, sv_id, sv_piece, sv_nm, trees,
                 step: int = 4) -> np.ndarray:
    """Supervoxel of every voxel: that of the nearest point of the voxel's piece (0 outside
    the sample's objects and for pieces without a point nearby). The Voronoi boundaries
    inside a piece are found on every ``step``-th pixel (4 at 8 nm: no 8 nm precision
    needed)."""
    out = np.zeros(own.size, np.uint64)
    flat = np.flatnonzero(inside.ravel())
    owners = own.ravel()[flat]
    order = np.argsort(owners, kind="stable")
    flat, owners = flat[order], owners[order]
    starts = np.r_[0, np.flatnonzero(np.diff(owners)) + 1, owners.size]
    ny = own.shape[1]
    for g in range(starts.size - 1):
        piece = int(owners[starts[g]])
        if piece not in trees:
            sel = np.flatnonzero(sv_piece == piece)
            trees[piece] = (cKDTree(sv_nm[sel]), sv_id[sel]) if sel.size else None
        if trees[piece] is None:
            continue
        tree, ids = trees[piece]
        members = flat[starts[g]:starts[g + 1]]
        if ids.size == 1:
            out[members] = np.uint64(ids[0])
            continue
        ci, cj = (members // ny) // step, (members % ny) // step
        uniq, inv = np.unique(ci * (ny // step + 1) + cj, return_inverse=True)
        qi, qj = uniq // (ny // step + 1), uniq % (ny // step + 1)
        qx = xs[np.minimum(qi * step + step // 2, xs.size - 1)]
        qy = ys[np.minimum(qj * step + step // 2, ys.size - 1)]
        _, nearest = tree.query(np.c_[qx, qy, np.full(qx.size, z)])
        out[members] = ids[nearest[inv]].astype(np.uint64)
    return out.reshape(own.shape)


# ---------------------------------------------------------------------------------- files
def chunk_name(lo: np.ndarray, size) -> str:
    hi = lo + np.asarray(size)
    return "_".join(f"{a}-{b}" for a, b in zip(lo.tolist(), hi.tolist(), strict=True))


def scale_key(mip: int) -> str:
    return "_".join(str(v) for v in SCALES[mip])


def _write_block(out, mip: int, lo_vx: np.ndarray, image: np.ndarray, ws: np.ndarray,
                 n_bytes: dict) -> None:
    """Write the chunks of one block of mip ``mip`` starting at voxel ``lo_vx`` (on the
    mip's chunk grid); adds the bytes written to ``n_bytes``."""
    from cloudvolume.chunks import encode  # the encoders cloud-volume decodes with

    from offline_cave.contract import layout

    key, chunk = scale_key(mip), MIP_CHUNK[mip]
    for i in range(0, image.shape[0], chunk[0]):
        for j in range(0, image.shape[1], chunk[1]):
            for k in range(0, image.shape[2], chunk[2]):
                cut = (slice(i, i + chunk[0]), slice(j, j + chunk[1]), slice(k, k + chunk[2]))
                name = chunk_name(lo_vx + np.array([i, j, k]), chunk)
                data = encode(image[cut][..., None], "jpeg",
                              compression_params={"level": JPEG_QUALITY})
                out.put_bytes(f"{layout.IMAGERY_EM_DIR}/{key}/{name}", data)
                n_bytes["em"] += len(data)
                data = gzip.compress(encode(ws[cut][..., None], "raw"), compresslevel=6,
                                     mtime=0)
                out.put_bytes(f"{layout.IMAGERY_WS_DIR}/{key}/{name}.gz", data)
                n_bytes["ws"] += len(data)


def downsample(image: np.ndarray, ws: np.ndarray, lo_vx: np.ndarray, mip: int):
    """(low corner, image, supervoxels) of mip ``mip`` over the full-resolution box: a mip
    voxel covers ``f x f`` voxels of mip 0 (f = 2, 4, ...; its first at ``f * index``); the
    image is their mean, the supervoxel the one at the block's middle. Blocks that reach out
    of the box repeat its edge voxels."""
    f = int(SCALES[mip][0] // SCALES[0][0])
    lo = np.asarray(lo_vx) // np.array([f, f, 1])
    shift = int(lo_vx[0] - f * lo[0]), int(lo_vx[1] - f * lo[1])
    nx, ny = image.shape[0] // f, image.shape[1] // f
    pads = ((shift[0], f * nx - image.shape[0] - shift[0] + f),
            (shift[1], f * ny - image.shape[1] - shift[1] + f), (0, 0))
    img = np.pad(image, pads, mode="edge")[:f * nx, :f * ny].astype(np.float32)
    img = img.reshape(nx, f, ny, f, -1).mean(axis=(1, 3))
    seg = np.pad(ws, pads, mode="edge")[f // 2:f * nx:f, f // 2:f * ny:f]
    return lo, np.clip(np.rint(img), 0, 255).astype(np.uint8), np.ascontiguousarray(seg)


def write(out, p: Plan, image: np.ndarray, ws: np.ndarray, stats: dict, wide=None) -> dict:
    """Write the chunks of every mip and ``imagery/imagery.json``; returns the summary it
    holds. Mips 1-2 are ``downsample``s of the full-resolution box; ``wide(emit)`` renders
    the wide box of mip ``WIDE_MIP`` (``render(..., box, emit)``) when the plan has one."""
    from offline_cave.contract import layout

    scales = []
    n_bytes = {"em": 0, "ws": 0}
    _write_block(out, 0, p.lo_vx, image, ws, n_bytes)
    supervoxels = set(np.unique(ws[ws > 0]).tolist())
    scales.append({"key": scale_key(0), "resolution": list(SCALES[0]),
                   "box_vx": [p.lo_vx.tolist(), (p.lo_vx + np.asarray(p.shape)).tolist()],
                   "chunk_size": list(MIP_CHUNK[0]), **n_bytes})
    for mip in range(1, WIDE_MIP):
        lo, img, seg = downsample(image, ws, p.lo_vx, mip)
        n_bytes = {"em": 0, "ws": 0}
        _write_block(out, mip, lo, img, seg, n_bytes)
        scales.append({"key": scale_key(mip), "resolution": list(SCALES[mip]),
                       "box_vx": [lo.tolist(), (lo + np.asarray(img.shape)).tolist()],
                       "chunk_size": list(MIP_CHUNK[mip]), **n_bytes})
    wide_stats: dict = {}
    if wide is not None and p.wide_lo_vx is not None:
        n_bytes = {"em": 0, "ws": 0}

        def emit(k0: int, img: np.ndarray, seg: np.ndarray) -> None:
            _write_block(out, WIDE_MIP, p.wide_lo_vx + np.array([0, 0, k0]), img, seg,
                         n_bytes)
            supervoxels.update(np.unique(seg[seg > 0]).tolist())

        wide_stats = wide(emit)
        lo = p.wide_lo_vx
        scales.append({"key": scale_key(WIDE_MIP), "resolution": list(SCALES[WIDE_MIP]),
                       "box_vx": [lo.tolist(), (lo + np.asarray(p.wide_shape)).tolist()],
                       "chunk_size": list(MIP_CHUNK[WIDE_MIP]), **n_bytes})
    meta = {
        "resolution": list(RESOLUTION), "key": scale_key(0),
        "box_vx": scales[0]["box_vx"],
        "image": {"chunk_size": list(IMAGE_CHUNK), "encoding": "jpeg",
                  "bytes": sum(sc["em"] for sc in scales)},
        "watershed": {"chunk_size": list(WS_CHUNK), "encoding": "raw", "compression": "gzip",
                      "bytes": sum(sc["ws"] for sc in scales)},
        "scales": scales,
        "focus_synapse_row": int(p.focus),
        "n_supervoxels": len(supervoxels),
        "stats": {**p.stats, **stats, **{f"wide_{k}": v for k, v in wide_stats.items()}},
    }
    out.put(layout.IMAGERY_JSON, meta)
    return meta
