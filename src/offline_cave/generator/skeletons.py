"""Synthetic neuron skeletons for every MICrONS neuron type, grown in the cortical frame.

Frame and units
---------------
Everything here is in the *cortical frame*, micrometres: x lateral, y = depth below the pia
(0 at the pia, increasing downward, so "up" toward the pia is -y), z the second lateral axis.
Radii are micrometres. Compartments use the SWC codes of the real skeleton service
(1 soma, 2 axon, 3 basal dendrite, 4 apical dendrite).

How a cell is grown
-------------------
A neuron is a set of *segments* (unbranched polylines). Each segment belongs to a *kind*
(basal dendrite, apical trunk, tuft, axon collateral, ...) that fixes its node spacing,
tortuosity, drift, radius taper, branching rule and the depth band it may occupy. Growth runs
in *waves*: every pending segment of the cell is generated at once, vectorised, as a
cumulative sum of randomly perturbed unit directions (a persistent random walk); then all
segments that bifurcate spawn their two children at once, and a few segments with a special
rule (apical trunk -> obliques + tuft, main axon -> layer-specific collaterals, ...) call a
small Python callback. A cell needs ~10-20 waves, so the Python work is per wave and per
special segment, never per node.

Segments that would leave their depth band are *folded* back into it (reflected at the band
edges), which keeps every node below the pia (y >= 0) and confines e.g. Martinotti axon arbors
to layer 1. Finally the skeleton is clipped to the slab box: nodes outside the box and their
whole subtrees are dropped, as neurites leaving the real EM volume are cut.

The morphology rules follow the textbook picture of mouse visual cortex neurons (pyramidal
apical/basal/axon layout by type; PV basket, SST Martinotti, VIP bipolar and layer-1
neurogliaform interneurons); the numbers (lengths, branch orders, radii) are *assumed* priors
(see ``_PyrSpec`` and the interneuron builders), sized against the one public proofread example
(7,445 vertices, 92 branch points, dendrite 7.24 mm, axon 7.60 mm; datasets-facts section 3.12):
inside the slab a pyramidal cell has 3-6 mm of dendrite, ~1,500-3,500 vertices and 40-120
branch points, an interneuron 1.5-3 mm of dendrite; unclipped local axons are 2-6 mm
(pyramidal) and 5-15 mm (basket, Martinotti).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from offline_cave.contract import params

SOMA, AXON, BASAL, APICAL = 1, 2, 3, 4
"""SWC compartment codes used by the real skeleton service."""

_BIG = 1e9  # "unbounded" band edge, um
_KIND_FIELDS = (
    "comp", "step", "sigma", "jitter", "drift", "lo", "hi", "r0", "taper", "rmin", "p", "always",
    "amin", "amax", "len0", "lgrow", "lterm", "lcv", "scale", "tether", "center", "tref",
)


@dataclass
class Skeleton:
    """A neuron skeleton (tree) in the cortical frame.

    Attributes:
        vertices: (n, 3) float64 node positions, um, cortical frame (y = depth below pia).
        parent: (n,) int32 parent index of each node; ``parent[0] == -1`` (node 0 is the soma)
            and the nodes are topologically sorted (``parent[i] < i``).
        radius: (n,) float32 node radius, um.
        compartment: (n,) int8 SWC code (1 soma, 2 axon, 3 basal dendrite, 4 apical dendrite).
        soma_radius_um: radius of the soma, um (also ``radius[0]``).
    """

    vertices: np.ndarray
    parent: np.ndarray
    radius: np.ndarray
    compartment: np.ndarray
    soma_radius_um: float

    def _edge_lengths(self) -> np.ndarray:
        """Length (um) of the edge from each node to its parent; 0 for the root."""
        lengths = np.zeros(len(self.parent))
        if len(self.parent) > 1:
            delta = self.vertices[1:] - self.vertices[self.parent[1:]]
            lengths[1:] = np.sqrt(np.einsum("ij,ij->i", delta, delta))
        return lengths

    def _n_children(self) -> np.ndarray:
        return np.bincount(self.parent[1:], minlength=len(self.parent))

    def path_length_um(self, compartment: int | None = None) -> float:
        """Total cable length in um, optionally of one SWC compartment only.

        Each edge is attributed to its child node, so the edge from the soma centre to the
        first node of a neurite counts toward that neurite's compartment.
        """
        lengths = self._edge_lengths()
        if compartment is not None:
            lengths = lengths[self.compartment == compartment]
        return float(lengths.sum())

    def distance_to_soma_um(self) -> np.ndarray:
        """Path distance (um) from every node to the soma along the tree; 0 at the soma."""
        dist = self._edge_lengths()
        if len(dist) <= 1:
            return dist
        # pointer jumping: after each round dist[i] is the distance from i to anc[i]
        anc = self.parent.astype(np.int64)
        anc[0] = 0
        while np.any(anc):
            dist = dist + dist[anc]
            anc = anc[anc]
        return dist

    def n_branch_points(self) -> int:
        """Number of nodes with two or more children (the soma counts if it has >= 2)."""
        return int(np.count_nonzero(self._n_children() >= 2))

    def n_end_points(self) -> int:
        """Number of non-root nodes without children (neurite tips)."""
        n_children = self._n_children()
        return int(np.count_nonzero(n_children[1:] == 0))


# --------------------------------------------------------------------------------------
# the growth engine
# --------------------------------------------------------------------------------------


@dataclass
class _Segment:
    """What a special-rule callback learns about one grown segment."""

    node_ids: np.ndarray  # (k,) global node ids of the segment's nodes
    pos: np.ndarray  # (k, 3) their positions, um
    end_dir: np.ndarray  # (3,) unit direction of the last step


_Callback = Callable[["_Grower", _Segment], None]


def _unit(vectors: np.ndarray) -> np.ndarray:
    norm = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    return vectors / np.maximum(norm, 1e-12)[:, None]


class _Grower:
    """Grows one cell: kinds are registered first, then segments are queued, then :meth:`run`.

    A segment of order k ends in a fork if k < its tree's ``maxorder`` and either
    k < ``always`` or a coin with probability ``p`` says so. The fork is decided when the
    segment is born, so that its length can follow the real statistics of dendrites and axons:
    internal segments are short (``len0 * (1 + lgrow * order)``), terminal ones long
    (``lterm``), both scaled by a lognormal factor of sd ``lcv``.
    """

    def __init__(self, rng: np.random.Generator, soma: np.ndarray, soma_r: float) -> None:
        self.rng = rng
        self.soma = soma
        self.soma_r = soma_r
        self._kinds: list[tuple] = []
        self._callbacks: list[_Callback | None] = []
        self._pos = [soma[None, :]]
        self._par = [np.array([-1], dtype=np.int64)]
        self._rad = [np.array([soma_r])]
        self._comp = [np.array([SOMA], dtype=np.int8)]
        self.n_nodes = 1
        self._blocks: list[tuple] = []

    def kind(self, *, comp: int, step: float, sigma: float = 0.08, jitter: float = 0.12,
             drift: tuple = (0.0, 0.0, 0.0), lo: tuple = (-_BIG, 0.0, -_BIG),
             hi: tuple = (_BIG, _BIG, _BIG), r0: float = 0.8, taper: float = 0.8,
             rmin: float = 0.3, p: float = 0.0, always: int = 0, amin: float = 0.35,
             amax: float = 0.8, len0: float = 30.0, lgrow: float = 0.0,
             lterm: float | None = None, lcv: float = 0.3, scale: tuple = (1.0, 1.0, 1.0),
             tether: float = 0.0, center: tuple | None = None, tref: float = 100.0,
             cb: _Callback | None = None) -> int:
        """Register a segment kind and return its index. Lengths in um, angles in rad.

        comp: SWC code; step: node spacing; sigma: per-step direction noise that accumulates
        (a random walk of the heading); jitter: per-step direction noise that does not
        accumulate (local wiggle); drift: per-step pull added to the heading; lo/hi: the
        (x, y, z) band (cortical frame) the segment is folded into, by reflection at its
        edges; r0/taper/rmin: radius r0 * taper**order, floored at rmin; p/always: fork rule
        (see class doc); amin/amax: half-angle range of a fork; len0/lgrow/lterm/lcv:
        segment lengths (see class doc; lterm defaults to len0); scale: anisotropic weights
        on child headings (e.g. (1, 0.3, 1) keeps an arbor horizontal); tether/center/tref:
        pull of child headings toward ``center`` (default the soma) of strength
        tether * distance / tref; cb: callback run after each segment of this kind is grown.
        """
        center = tuple(self.soma) if center is None else center
        lterm = len0 if lterm is None else lterm
        self._kinds.append((comp, step, sigma, jitter, drift, lo, hi, r0, taper, rmin, p,
                            always, amin, amax, len0, lgrow, lterm, lcv, scale, tether,
                            center, tref))
        self._callbacks.append(cb)
        return len(self._kinds) - 1

    def add(self, parent, start, direction, kind, maxorder, order=0, length=None) -> None:
        """Queue segments (scalars or arrays of B) to grow in the next wave.

        parent: node id each segment hangs from; start: (B, 3) position of that node (um);
        direction: (B, 3) initial heading (normalised here); kind: kind index;
        maxorder: forks allowed below this segment's tree root; order: this segment's order;
        length: (B,) um, or None to draw it from the kind's length rule.
        """
        start = np.atleast_2d(np.asarray(start, dtype=float))
        direction = _unit(np.atleast_2d(np.asarray(direction, dtype=float)))
        b = max(len(start), len(direction))

        def column(value, dtype) -> np.ndarray:
            col = np.asarray(value, dtype=dtype)
            return col if col.shape == (b,) else np.full(b, col, dtype=dtype)

        if len(start) != b:
            start = np.repeat(start, b, axis=0)
        if len(direction) != b:
            direction = np.repeat(direction, b, axis=0)
        self._blocks.append((column(parent, np.int64), start, direction,
                             column(np.nan if length is None else length, float),
                             column(kind, np.int64), column(order, np.int64),
                             column(maxorder, np.int64)))

    def _table(self) -> dict[str, np.ndarray]:
        cols = zip(*self._kinds, strict=True)
        return {name: np.asarray(col, dtype=float)
                for name, col in zip(_KIND_FIELDS, cols, strict=True)}

    def run(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Grow all queued segments wave by wave; return (vertices, parent, radius, comp)."""
        rng = self.rng
        tab = self._table()
        has_cb = np.array([cb is not None for cb in self._callbacks])
        while self._blocks:
            blocks, self._blocks = self._blocks, []
            parent, start, direc, length, kind, order, maxorder = (
                np.concatenate(c) for c in zip(*blocks, strict=True))
            fork, length = _fork_and_length(tab, kind, order, maxorder, length, rng)
            step = tab["step"][kind]
            counts = np.maximum(1, np.rint(length / step).astype(np.int64))
            ends = np.cumsum(counts) - 1
            offs = ends - counts + 1
            seg = np.repeat(np.arange(len(parent)), counts)
            local = np.arange(1, int(counts.sum()) + 1) - offs[seg]  # 1..k within each segment
            pos = _walk(tab, kind, start, direc, step, offs, seg, local, rng)
            _fold_into_bands(pos, tab, kind, start, seg)
            ids = self._store(tab, kind, order, parent, pos, offs, seg, local, counts)

            end_pos = pos[ends]
            prev = pos[np.maximum(ends - 1, 0)]
            single = counts == 1
            prev[single] = start[single]
            end_dir = _unit(end_pos - prev)
            end_ids = ids[ends]

            if fork.any():
                self._fork(tab, np.nonzero(fork)[0], kind, order, maxorder, end_ids, end_pos,
                           end_dir)
            for j in np.nonzero(has_cb[kind])[0].tolist():
                sl = slice(offs[j], ends[j] + 1)
                self._callbacks[kind[j]](self, _Segment(ids[sl], pos[sl], end_dir[j]))

        return (np.concatenate(self._pos), np.concatenate(self._par),
                np.concatenate(self._rad), np.concatenate(self._comp))

    def _store(self, tab: dict[str, np.ndarray], kind: np.ndarray, order: np.ndarray,
               parent: np.ndarray, pos: np.ndarray, offs: np.ndarray, seg: np.ndarray,
               local: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Append a wave's nodes (positions, parents, tapered radii, compartments); their ids."""
        # radii taper linearly from r(order) to r(order + 1) along the segment
        r0, taper, rmin = tab["r0"][kind], tab["taper"][kind], tab["rmin"][kind]
        ra = np.maximum(rmin, r0 * taper ** order)
        rb = np.maximum(rmin, r0 * taper ** (order + 1))
        rad = ra[seg] + (rb - ra)[seg] * (local / counts[seg])

        n = len(pos)
        ids = self.n_nodes + np.arange(n)
        par = ids - 1
        par[offs] = parent
        self._pos.append(pos)
        self._par.append(par)
        self._rad.append(rad)
        self._comp.append(tab["comp"][kind].astype(np.int8)[seg])
        self.n_nodes += n
        return ids

    def _fork(self, tab, idx, kind, order, maxorder, end_ids, end_pos, end_dir) -> None:
        """Queue the two children of every segment ``idx`` of the wave (vectorised)."""
        rng = self.rng
        b = len(idx)
        k = kind[idx]
        d = end_dir[idx]
        rnd = rng.standard_normal((b, 3))
        perp = _unit(rnd - np.einsum("ij,ij->i", rnd, d)[:, None] * d)
        th = tab["amin"][k][:, None] + (tab["amax"] - tab["amin"])[k][:, None] * rng.random(
            (b, 2))
        c1 = np.cos(th[:, :1]) * d + np.sin(th[:, :1]) * perp
        c2 = np.cos(th[:, 1:]) * d - np.sin(th[:, 1:]) * perp
        k2 = np.concatenate([k, k])
        pnt2 = np.concatenate([end_pos[idx], end_pos[idx]])
        child = np.concatenate([c1, c2]) * tab["scale"][k2]
        child += (tab["tether"][k2] / tab["tref"][k2])[:, None] * (tab["center"][k2] - pnt2)
        self.add(np.concatenate([end_ids[idx], end_ids[idx]]), pnt2, child, k2,
                 np.concatenate([maxorder[idx], maxorder[idx]]),
                 np.concatenate([order[idx], order[idx]]) + 1)


def _fork_and_length(tab: dict[str, np.ndarray], kind: np.ndarray, order: np.ndarray,
                     maxorder: np.ndarray, length: np.ndarray,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fork decisions of a wave's segments and their lengths (drawn where ``length`` is NaN)."""
    m = len(kind)
    # fork decisions and drawn lengths (one random draw per segment each)
    fork = (order < maxorder) & ((order < tab["always"][kind])
                                 | (rng.random(m) < tab["p"][kind]))
    drawn = (np.where(fork, tab["len0"][kind] * (1.0 + tab["lgrow"][kind] * order),
                      tab["lterm"][kind])
             * np.exp(tab["lcv"][kind] * rng.standard_normal(m)))
    return fork, np.where(np.isnan(length), drawn, length)


def _walk(tab: dict[str, np.ndarray], kind: np.ndarray, start: np.ndarray, direc: np.ndarray,
          step: np.ndarray, offs: np.ndarray, seg: np.ndarray, local: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    """Node positions (n, 3) of a wave's segments, stepping along a noisy heading."""
    m = len(kind)
    n = len(seg)
    # heading: initial + random walk (segment-wise cumulative sum) + drift + wiggle
    noise = rng.standard_normal((n, 3))
    walk = np.cumsum(noise * tab["sigma"][kind][seg, None], axis=0)
    base = np.zeros((m, 3))
    base[1:] = walk[offs[1:] - 1]
    dirs = (direc[seg] + walk - base[seg] + tab["drift"][kind][seg] * local[:, None]
            + noise * tab["jitter"][kind][seg, None])
    dirs = _unit(dirs) * step[seg, None]
    walk = np.cumsum(dirs, axis=0)
    base[1:] = walk[offs[1:] - 1]
    return walk - base[seg] + start[seg]


def _fold_into_bands(pos: np.ndarray, tab: dict[str, np.ndarray], kind: np.ndarray,
                     start: np.ndarray, seg: np.ndarray) -> None:
    """Reflect (in place) the nodes that left their segment's band back into it."""
    # fold into each segment's band (widened to contain its start point); only the
    # few nodes that left their band need the (costly) reflection arithmetic
    lo = np.minimum(tab["lo"][kind], start)
    hi = np.maximum(tab["hi"][kind], start)
    out = np.nonzero(((pos < lo[seg]) | (pos > hi[seg])).any(axis=1))[0]
    if len(out):
        lo_o = lo[seg[out]]
        width = hi[seg[out]] - lo_o
        t = np.mod(pos[out] - lo_o, 2.0 * width)
        pos[out] = lo_o + np.where(t > width, 2.0 * width - t, t)


# --------------------------------------------------------------------------------------
# direction helpers (y is depth: "up" toward the pia is -y)
# --------------------------------------------------------------------------------------


def _dirs_from_angles(azimuth, polar_from_up) -> np.ndarray:
    """Unit vectors ``polar_from_up`` rad away from straight up (-y), azimuth in the x-z plane."""
    azimuth = np.atleast_1d(azimuth)
    polar_from_up = np.atleast_1d(polar_from_up)
    s = np.sin(polar_from_up)
    return np.stack([s * np.cos(azimuth), -np.cos(polar_from_up), s * np.sin(azimuth)], axis=1)


def _spread_azimuths(rng: np.random.Generator, n: int, jitter: float = 0.5) -> np.ndarray:
    """n azimuths spread evenly around the circle, randomly rotated and jittered (rad)."""
    return (rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(n) / max(n, 1)
            + rng.uniform(-jitter, jitter, n))


def _isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    """n headings spread around the soma (even azimuths, uniform cosine of the polar angle)."""
    return _dirs_from_angles(_spread_azimuths(rng, n, 0.6), np.arccos(rng.uniform(-1, 1, n)))


def _rand_int(rng: np.random.Generator, lo_hi: tuple[int, int], n: int | None = None):
    """Uniform integer(s) in the closed range ``lo_hi``."""
    return rng.integers(lo_hi[0], lo_hi[1] + 1, n) if n is not None else int(
        rng.integers(lo_hi[0], lo_hi[1] + 1))


def _size_compensation(n: int, n_range: tuple[int, int]) -> float:
    """Length factor for cells with more/fewer primary dendrites than the middle of the range:
    total dendritic length varies less between cells than the number of primaries does."""
    return 0.5 * (n_range[0] + n_range[1]) / n


def _primaries(g: _Grower, dirs: np.ndarray, kind: int, maxorder, length=None) -> None:
    """Queue neurites that leave the soma surface with headings ``dirs`` (n, 3)."""
    dirs = _unit(dirs)
    step = g._kinds[kind][1]
    start = g.soma + dirs * max(g.soma_r - step, 0.0)
    g.add(0, start, dirs, kind, maxorder, length=length)


def _layer_band(bounds: dict[str, tuple[float, float]], layer: str) -> tuple[float, float]:
    """(top, bottom) depth of a layer in um; the open-ended white matter is cut at 400 um."""
    lo, hi = bounds[layer]
    return float(lo), float(min(hi, lo + 400.0))


def _layer_of(depth: float, bounds: dict[str, tuple[float, float]]) -> tuple[float, float]:
    """(top, bottom) depth of the layer containing ``depth`` (um)."""
    for lo, hi in bounds.values():
        if lo <= depth < hi:
            return float(lo), float(hi)
    return depth - 100.0, depth + 100.0


# --------------------------------------------------------------------------------------
# pyramidal cells
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PyrSpec:
    """Morphology priors of one pyramidal type (lengths um, radii um, *assumed*).

    ``*_order`` ranges are the number of forks from a primary branch to its deepest tip;
    ``*_len`` are internal segment lengths, ``*_term`` terminal segment lengths.
    """

    apical_end: tuple[float, float]  # depth (um from pia) where the apical trunk ends
    trunk_r: float  # apical trunk radius at the soma
    n_tuft: tuple[int, int]  # primary tuft branches at the trunk end
    tuft_order: tuple[int, int]
    tuft_term: float
    n_oblique: tuple[int, int]
    oblique_proximal: float  # share of obliques within ~150 um of the soma
    oblique_order: tuple[int, int]
    n_basal: tuple[int, int]
    basal_order: tuple[int, int]
    basal_term: float
    # axon collaterals: (mode, origin, count range, target layer, fork-order range);
    # mode "h": horizontal arbor; "up": ascend to the target layer, then arborise there;
    # origin "near": first ~150 um of the main axon, else a layer name
    collaterals: tuple[tuple[str, str, tuple[int, int], str, tuple[int, int]], ...]
    basal_len: float = 16.0
    basal_always: int = 2
    basal_p: float = 0.5
    tuft_len: float = 25.0
    tuft_p: float = 0.55
    tuft_r: float = 0.7
    axon_r: float = 0.25
    collateral_len: float = 35.0
    collateral_term: float = 70.0


_PYR: dict[str, _PyrSpec] = {
    "23P": _PyrSpec(apical_end=(20, 60), trunk_r=1.5, n_tuft=(3, 5), tuft_order=(2, 3),
                    tuft_term=50, n_oblique=(5, 8), oblique_proximal=0.5,
                    oblique_order=(0, 2), n_basal=(6, 8), basal_order=(3, 3), basal_term=45,
                    collaterals=(("h", "near", (3, 4), "L2/3", (2, 3)),
                                 ("h", "L5", (2, 3), "L5", (2, 3)))),
    "4P": _PyrSpec(apical_end=(40, 95), trunk_r=1.0, n_tuft=(2, 3), tuft_order=(1, 2),
                   tuft_term=40, tuft_r=0.55, n_oblique=(3, 6), oblique_proximal=0.5,
                   oblique_order=(0, 2), n_basal=(6, 8), basal_order=(3, 3), basal_term=48,
                   collaterals=(("up", "near", (2, 3), "L2/3", (2, 3)),
                                ("h", "near", (1, 2), "L4", (1, 2)),
                                ("h", "L5", (1, 2), "L5", (1, 2)))),
    "5P-IT": _PyrSpec(apical_end=(30, 80), trunk_r=1.5, n_tuft=(3, 4), tuft_order=(2, 3),
                      tuft_term=50, n_oblique=(5, 8), oblique_proximal=0.7,
                      oblique_order=(0, 2), n_basal=(6, 8), basal_order=(3, 3), basal_term=45,
                      collaterals=(("h", "near", (3, 4), "L5", (2, 3)),
                                   ("up", "near", (1, 2), "L2/3", (2, 3)))),
    "5P-ET": _PyrSpec(apical_end=(20, 55), trunk_r=2.2, n_tuft=(4, 5), tuft_order=(2, 3),
                      tuft_term=60, tuft_p=0.6, tuft_r=0.9, n_oblique=(5, 8),
                      oblique_proximal=0.7, oblique_order=(0, 2), n_basal=(6, 8),
                      basal_order=(3, 3), basal_term=45, axon_r=0.3, collateral_term=85,
                      collaterals=(("h", "near", (3, 5), "L5", (2, 3)),
                                   ("h", "L6", (1, 2), "L6", (1, 2)))),
    "5P-NP": _PyrSpec(apical_end=(110, 260), trunk_r=1.0, n_tuft=(0, 2), tuft_order=(0, 1),
                      tuft_term=50, tuft_r=0.55, n_oblique=(1, 3), oblique_proximal=0.6,
                      oblique_order=(0, 1), n_basal=(6, 7), basal_order=(2, 3),
                      basal_len=35, basal_term=90, basal_always=1, basal_p=0.6,
                      collateral_term=90,
                      collaterals=(("h", "near", (2, 4), "L5", (2, 3)),
                                   ("h", "L6", (2, 3), "L6", (1, 3)))),
    "6P-IT": _PyrSpec(apical_end=(430, 560), trunk_r=1.2, n_tuft=(1, 3), tuft_order=(1, 2),
                      tuft_term=40, tuft_r=0.55, n_oblique=(4, 7), oblique_proximal=0.7,
                      oblique_order=(0, 2), n_basal=(6, 8), basal_order=(3, 3), basal_term=48,
                      collaterals=(("h", "near", (3, 5), "L6", (2, 3)),
                                   ("up", "near", (1, 2), "L5", (2, 3)))),
    "6P-CT": _PyrSpec(apical_end=(315, 400), trunk_r=1.0, n_tuft=(2, 3), tuft_order=(1, 2),
                      tuft_term=35, tuft_r=0.5, n_oblique=(3, 6), oblique_proximal=0.7,
                      oblique_order=(0, 2), n_basal=(6, 8), basal_order=(3, 3), basal_term=48,
                      collaterals=(("up", "near", (2, 3), "L4", (2, 3)),
                                   ("h", "near", (1, 2), "L6", (1, 3)))),
}


def _grow_pyramidal(g: _Grower, spec: _PyrSpec, bounds: dict[str, tuple[float, float]]) -> None:
    """Pyramidal cell: basal dendrites, apical trunk + obliques + tuft, descending axon."""
    _grow_basal(g, spec)
    _grow_apical(g, spec, bounds)
    _grow_pyramidal_axon(g, spec, bounds)


def _grow_basal(g: _Grower, spec: _PyrSpec) -> None:
    """Basal dendrites: binary trees radiating laterally and downward."""
    rng = g.rng
    nb = _rand_int(rng, spec.n_basal)
    basal = g.kind(comp=BASAL, step=3.0, sigma=0.09, r0=0.8, taper=0.72, rmin=0.3,
                   p=spec.basal_p, always=spec.basal_always, amin=0.3, amax=0.7,
                   len0=spec.basal_len, lgrow=0.2,
                   lterm=spec.basal_term * _size_compensation(nb, spec.n_basal),
                   scale=(1.0, 0.8, 1.0))
    polar = rng.uniform(np.radians(95), np.radians(160), nb)  # below the horizon
    _primaries(g, _dirs_from_angles(_spread_azimuths(rng, nb), polar), basal,
               _rand_int(rng, spec.basal_order, nb))


def _grow_apical(g: _Grower, spec: _PyrSpec, bounds: dict[str, tuple[float, float]]) -> None:
    """Apical dendrite: trunk toward the pia, obliques along it, tuft at its end."""
    rng = g.rng
    depth = float(g.soma[1])
    l1_hi = float(bounds["L1"][1])
    end_depth = max(min(rng.uniform(*spec.apical_end), depth - 60.0), 5.0)
    band = ((0.0, l1_hi + 20.0) if end_depth < l1_hi
            else (end_depth - 50.0, end_depth + 40.0))
    tuft = g.kind(comp=APICAL, step=3.0, sigma=0.1, r0=spec.tuft_r, taper=0.8, rmin=0.4,
                  p=spec.tuft_p, always=1, amin=0.3, amax=0.8, len0=spec.tuft_len,
                  lterm=spec.tuft_term, scale=(1.0, 0.45, 1.0), lo=(-_BIG, band[0], -_BIG),
                  hi=(_BIG, band[1], _BIG))
    oblique = g.kind(comp=APICAL, step=3.0, sigma=0.09, r0=0.7, taper=0.75, rmin=0.3, p=0.5,
                     amin=0.3, amax=0.8, len0=25.0, lterm=45.0, scale=(1.0, 0.8, 1.0))

    def apical_done(g: _Grower, s: _Segment) -> None:
        """Queue the tuft at the trunk's end and the obliques along it."""
        k = len(s.node_ids)
        n = _rand_int(rng, spec.n_tuft)
        if n:
            dirs = _dirs_from_angles(_spread_azimuths(rng, n, 0.8), rng.uniform(0.7, 1.4, n))
            g.add(s.node_ids[-1], s.pos[-1], dirs, tuft, _rand_int(rng, spec.tuft_order, n))
        n = _rand_int(rng, spec.n_oblique)
        if n and k > 8:
            prox = min(50, k // 2)  # ~150 um of trunk
            near = rng.random(n) < spec.oblique_proximal
            at = np.where(near, rng.integers(2, prox, n),
                          rng.integers(prox, max(prox + 1, int(0.9 * k)), n))
            dirs = _dirs_from_angles(rng.uniform(0, 2 * np.pi, n), rng.uniform(0.8, 1.5, n))
            g.add(s.node_ids[at], s.pos[at], dirs, oblique,
                  _rand_int(rng, spec.oblique_order, n))

    trunk_r_end = max(0.5, spec.tuft_r * 1.2)
    trunk = g.kind(comp=APICAL, step=3.0, sigma=0.008, jitter=0.1, drift=(0.0, -0.004, 0.0),
                   r0=spec.trunk_r, taper=trunk_r_end / spec.trunk_r, rmin=0.4,
                   cb=apical_done)
    tilt = rng.uniform(0.0, 0.2)
    _primaries(g, _dirs_from_angles(rng.uniform(0, 2 * np.pi), tilt), trunk, 0,
               length=(depth - end_depth - g.soma_r) / math.cos(tilt) + 3.0)


def _horizontal(rng: np.random.Generator, n: int) -> np.ndarray:
    """n headings near the horizontal plane, random azimuths."""
    return _dirs_from_angles(rng.uniform(0, 2 * np.pi, n), rng.uniform(1.3, 1.85, n))


def _arbor_kind(g: _Grower, spec: _PyrSpec, bounds: dict[str, tuple[float, float]],
                layer: str) -> int:
    """Register the kind of a horizontal axon arbor confined to ``layer``."""
    lo, hi = _layer_band(bounds, layer)
    return g.kind(comp=AXON, step=5.0, sigma=0.08, r0=0.18, taper=0.85, rmin=0.1, p=0.6,
                  always=1, amin=0.3, amax=0.9, len0=spec.collateral_len,
                  lterm=spec.collateral_term, lcv=0.35, scale=(1.0, 0.35, 1.0),
                  lo=(-_BIG, max(0.0, lo - 15.0), -_BIG), hi=(_BIG, hi + 15.0, _BIG))


def _ascend_kind(g: _Grower, arbor: int, order_range: tuple[int, int]) -> int:
    """Register the kind of an ascending collateral that ends in two ``arbor`` branches."""
    rng = g.rng

    def ascended(g: _Grower, s: _Segment) -> None:
        """Queue the two horizontal arbor branches at the top of the ascent."""
        g.add(s.node_ids[-1], s.pos[-1], _horizontal(rng, 2), arbor,
              _rand_int(rng, order_range, 2))

    return g.kind(comp=AXON, step=5.0, sigma=0.015, r0=0.18, taper=0.9, rmin=0.1,
                  cb=ascended)


_CollateralRule = tuple[str, str, tuple[int, int], str, tuple[int, int], int, int]


def _collateral_rules(g: _Grower, spec: _PyrSpec,
                      bounds: dict[str, tuple[float, float]]) -> list[_CollateralRule]:
    """The spec's collateral rules, each with its arbor kind and ascent kind (-1 if none)."""
    # kinds must all exist before growth starts: one arbor (+ ascent) kind per rule
    rules = []
    for mode, origin, count, layer, order_range in spec.collaterals:
        arbor = _arbor_kind(g, spec, bounds, layer)
        ascend = _ascend_kind(g, arbor, order_range) if mode == "up" else -1
        rules.append((mode, origin, count, layer, order_range, arbor, ascend))
    return rules


def _add_collaterals(g: _Grower, s: _Segment, rules: list[_CollateralRule],
                     bounds: dict[str, tuple[float, float]]) -> None:
    """Queue the collaterals of every rule along the grown main axon ``s``."""
    rng = g.rng
    k = len(s.node_ids)
    for mode, origin, count, layer, order_range, arbor, ascend in rules:
        n = _rand_int(rng, count)
        if origin == "near":
            cand = np.arange(3, min(k, 30))
        else:
            lo, hi = bounds[origin]
            cand = np.nonzero((s.pos[:, 1] >= lo) & (s.pos[:, 1] < hi))[0]
        if n == 0 or len(cand) == 0:
            continue
        at = rng.choice(cand, n)
        if mode == "h":
            g.add(s.node_ids[at], s.pos[at], _horizontal(rng, n), arbor,
                  _rand_int(rng, order_range, n))
        else:
            lo, hi = _layer_band(bounds, layer)
            target = rng.uniform(lo + 10.0, hi - 10.0, n)
            tilt = rng.uniform(0.05, 0.3, n)
            rise = np.maximum(s.pos[at, 1] - target, 10.0) / np.cos(tilt)
            g.add(s.node_ids[at], s.pos[at],
                  _dirs_from_angles(rng.uniform(0, 2 * np.pi, n), tilt), ascend, 0,
                  length=rise)


def _grow_pyramidal_axon(g: _Grower, spec: _PyrSpec,
                         bounds: dict[str, tuple[float, float]]) -> None:
    """Axon: main axon down into the white matter, layer-specific collaterals."""
    rng = g.rng
    depth = float(g.soma[1])
    rules = _collateral_rules(g, spec, bounds)

    def main_done(g: _Grower, s: _Segment) -> None:
        """Queue the collaterals once the main axon is grown."""
        _add_collaterals(g, s, rules, bounds)

    main = g.kind(comp=AXON, step=5.0, sigma=0.012, drift=(0.0, 0.006, 0.0), r0=spec.axon_r,
                  taper=0.7, rmin=0.15, cb=main_done)
    tilt = rng.uniform(0.0, 0.25)
    wm = float(bounds["WM"][0])
    _primaries(g, _dirs_from_angles(rng.uniform(0, 2 * np.pi), np.pi - tilt), main, 0,
               length=max(wm + 150.0 - depth, 150.0))


# --------------------------------------------------------------------------------------
# interneurons
# --------------------------------------------------------------------------------------


def _grow_basket(g: _Grower, bounds: dict[str, tuple[float, float]]) -> None:
    """PV basket cell: multipolar aspiny dendrites, dense axon arbor around the soma."""
    rng = g.rng
    depth = float(g.soma[1])
    n = _rand_int(rng, (4, 7))
    dend = g.kind(comp=BASAL, step=3.0, sigma=0.1, r0=1.0, taper=0.72, rmin=0.3, p=0.35,
                  always=2, amin=0.3, amax=0.8, len0=22.0, lgrow=0.2,
                  lterm=48.0 * _size_compensation(n, (4, 7)))
    _primaries(g, _isotropic(rng, n), dend, 3)

    lay_lo, lay_hi = _layer_of(depth, bounds)
    band = (max(0.0, lay_lo - 100.0, depth - 250.0), min(lay_hi + 100.0, depth + 250.0))
    axon = g.kind(comp=AXON, step=5.0, sigma=0.12, r0=0.22, taper=0.85, rmin=0.1, p=0.62,
                  always=5, amin=0.35, amax=1.0, len0=28.0, lterm=35.0, lcv=0.35,
                  tether=0.5, tref=150.0, lo=(-_BIG, band[0], -_BIG), hi=(_BIG, band[1], _BIG))
    d = _dirs_from_angles(rng.uniform(0, 2 * np.pi), rng.uniform(1.6, 2.8))
    _primaries(g, d, axon, 9, length=rng.uniform(15, 30))


def _grow_martinotti(g: _Grower, bounds: dict[str, tuple[float, float]]) -> None:
    """SST Martinotti cell: local dendrites, axon ascending to layer 1 and spreading there."""
    rng = g.rng
    soma = g.soma
    depth = float(soma[1])
    l1_hi = float(bounds["L1"][1])
    n = _rand_int(rng, (4, 6))
    dend = g.kind(comp=BASAL, step=3.0, sigma=0.1, r0=1.0, taper=0.72, rmin=0.3, p=0.35,
                  always=2, amin=0.3, amax=0.8, len0=24.0, lgrow=0.2,
                  lterm=58.0 * _size_compensation(n, (4, 6)), scale=(0.7, 1.0, 0.7))
    polar = np.where(rng.random(n) < 0.5, rng.uniform(0.2, 1.0, n),
                     rng.uniform(np.pi - 1.0, np.pi - 0.2, n))
    _primaries(g, _dirs_from_angles(_spread_azimuths(rng, n), polar), dend, 3)

    l1 = g.kind(comp=AXON, step=5.0, sigma=0.1, r0=0.15, taper=0.9, rmin=0.1, p=0.7,
                always=2, amin=0.35, amax=0.9, len0=40.0, lterm=50.0, lcv=0.35,
                scale=(1.0, 0.3, 1.0), lo=(-_BIG, 0.0, -_BIG), hi=(_BIG, l1_hi + 10.0, _BIG),
                tether=0.35, tref=150.0, center=(soma[0], 0.5 * l1_hi, soma[2]))
    local = g.kind(comp=AXON, step=5.0, sigma=0.1, r0=0.15, taper=0.9, rmin=0.1, p=0.6,
                   always=1, amin=0.35, amax=0.9, len0=30.0, lterm=40.0, lcv=0.35,
                   tether=0.4, tref=100.0)

    def trunk_done(g: _Grower, s: _Segment) -> None:
        n = _rand_int(rng, (3, 4))
        dirs = _dirs_from_angles(_spread_azimuths(rng, n), rng.uniform(1.35, 1.75, n))
        g.add(s.node_ids[-1], s.pos[-1], dirs, l1, _rand_int(rng, (5, 6), n))
        k = len(s.node_ids)
        n_near = _rand_int(rng, (2, 4))
        n_mid = _rand_int(rng, (1, 3)) if k > 20 else 0
        at = np.concatenate([rng.integers(1, min(12, k), n_near),
                             rng.integers(min(12, k - 1), k, n_mid)])
        dirs = _dirs_from_angles(rng.uniform(0, 2 * np.pi, len(at)),
                                 rng.uniform(1.0, 2.2, len(at)))
        orders = np.concatenate([_rand_int(rng, (2, 4), n_near), _rand_int(rng, (1, 2), n_mid)])
        g.add(s.node_ids[at], s.pos[at], dirs, local, orders)

    trunk = g.kind(comp=AXON, step=5.0, sigma=0.015, drift=(0.0, -0.01, 0.0), r0=0.25,
                   taper=0.7, rmin=0.15, cb=trunk_done)
    end_depth = min(rng.uniform(30.0, 70.0), 0.5 * depth)
    tilt = rng.uniform(0.0, 0.3)
    _primaries(g, _dirs_from_angles(rng.uniform(0, 2 * np.pi), tilt), trunk, 0,
               length=max(depth - end_depth, 10.0) / math.cos(tilt))


def _grow_bipolar(g: _Grower, bounds: dict[str, tuple[float, float]]) -> None:
    """VIP bipolar cell: one dendrite trunk up, one down; narrow descending axon."""
    rng = g.rng
    soma = g.soma
    half = 60.0  # lateral half-width of the dendritic column, um
    lo = (soma[0] - half, 0.0, soma[2] - half)
    hi = (soma[0] + half, _BIG, soma[2] + half)
    for sign in (-1.0, 1.0):  # up, then down
        dend = g.kind(comp=BASAL, step=3.0, sigma=0.05, drift=(0.0, 0.006 * sign, 0.0),
                      r0=0.9, taper=0.75, rmin=0.3, p=0.75, always=2, amin=0.2, amax=0.45,
                      len0=45.0, lterm=88.0, scale=(0.3, 1.0, 0.3), lo=lo, hi=hi)
        polar = rng.uniform(0.0, 0.3) if sign < 0 else np.pi - rng.uniform(0.0, 0.3)
        _primaries(g, _dirs_from_angles(rng.uniform(0, 2 * np.pi), polar), dend, 3,
                   length=rng.uniform(50, 90))
    side = g.kind(comp=BASAL, step=3.0, sigma=0.1, r0=0.6, taper=0.75, rmin=0.3, p=0.5,
                  amin=0.3, amax=0.7, len0=20.0, lterm=30.0, scale=(0.5, 1.0, 0.5), lo=lo,
                  hi=hi)
    n = _rand_int(rng, (0, 2))  # 0-2 short thin side dendrites
    if n:
        _primaries(g, _isotropic(rng, n), side, 1)

    half = 50.0  # lateral half-width of the axon column, um
    lo = (soma[0] - half, 0.0, soma[2] - half)
    hi = (soma[0] + half, _BIG, soma[2] + half)
    coll = g.kind(comp=AXON, step=5.0, sigma=0.07, r0=0.15, taper=0.9, rmin=0.1, p=0.7,
                  always=1, amin=0.2, amax=0.6, len0=35.0, lterm=50.0, lcv=0.35,
                  scale=(0.25, 1.0, 0.25), lo=lo, hi=hi)

    def descended(g: _Grower, s: _Segment) -> None:
        k = len(s.node_ids)
        n = _rand_int(rng, (4, 8))
        at = rng.integers(1, k, n)
        polar = np.where(rng.random(n) < 0.5, rng.uniform(0.2, 0.6, n),
                         rng.uniform(np.pi - 0.6, np.pi - 0.2, n))
        g.add(s.node_ids[at], s.pos[at], _dirs_from_angles(rng.uniform(0, 2 * np.pi, n), polar),
              coll, _rand_int(rng, (1, 3), n))

    trunk = g.kind(comp=AXON, step=5.0, sigma=0.015, drift=(0.0, 0.008, 0.0), r0=0.2,
                   taper=0.7, rmin=0.12, lo=lo, hi=hi, cb=descended)
    d = _dirs_from_angles(rng.uniform(0, 2 * np.pi), np.pi - rng.uniform(0.1, 0.4))
    _primaries(g, d, trunk, 0, length=rng.uniform(250, 450))


def _grow_neurogliaform(g: _Grower, bounds: dict[str, tuple[float, float]]) -> None:
    """Neurogliaform cell: small dense dendrites, very dense short axon cloud."""
    rng = g.rng
    n = _rand_int(rng, (6, 9))
    dend = g.kind(comp=BASAL, step=3.0, sigma=0.14, r0=0.8, taper=0.75, rmin=0.3, p=0.3,
                  always=2, amin=0.35, amax=0.9, len0=15.0, lgrow=0.2,
                  lterm=34.0 * _size_compensation(n, (6, 9)))
    _primaries(g, _isotropic(rng, n), dend, 3)
    axon = g.kind(comp=AXON, step=5.0, sigma=0.15, r0=0.15, taper=0.9, rmin=0.1, p=0.6,
                  always=3, amin=0.4, amax=1.1, len0=18.0, lterm=22.0, lcv=0.35, tether=0.6,
                  tref=80.0)
    n = _rand_int(rng, (3, 4))
    _primaries(g, _isotropic(rng, n), axon, 7)


# --------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------

_INTERNEURON_BUILDERS = {"BC": _grow_basket, "MC": _grow_martinotti, "BPC": _grow_bipolar,
                         "NGC": _grow_neurogliaform}
NEURON_TYPES = tuple(params.EXC_TYPES) + tuple(params.INH_TYPES)
"""Cell types :func:`grow_skeleton` can grow (glia have no skeletons)."""


def _clip(vertices: np.ndarray, parent: np.ndarray, box_min: np.ndarray,
          box_max: np.ndarray) -> np.ndarray:
    """Boolean mask of nodes that are inside the box and whose ancestors all are too."""
    bad = ~np.all((vertices >= box_min) & (vertices <= box_max), axis=1)
    bad[0] = False
    anc = parent.copy()
    anc[0] = 0
    while np.any(anc):  # pointer jumping: OR the badness of all ancestors
        bad = bad | bad[anc]
        anc = anc[anc]
    return ~bad


def grow_skeleton(cell_type: str, soma_um: np.ndarray, rng: np.random.Generator,
                  layer_bounds: dict[str, tuple[float, float]],
                  box_min_um: np.ndarray, box_max_um: np.ndarray,
                  soma_radius_um: float | None = None) -> Skeleton:
    """Grow a synthetic skeleton of one neuron of ``cell_type`` with its soma at ``soma_um``.

    Args:
        cell_type: one of ``params.EXC_TYPES + params.INH_TYPES`` ("23P", ..., "NGC").
        soma_um: (3,) soma centre in the cortical frame, um (y = depth below pia).
        rng: random generator; the same generator state gives an identical skeleton.
        layer_bounds: layer name -> (top, bottom) depth in um from the pia, like
            ``params.LAYER_BOUNDS_UM`` (keys L1, L2/3, L4, L5, L6, WM).
        box_min_um, box_max_um: (3,) corners of the slab box in the cortical frame, um.
            Nodes outside the box are dropped with their whole subtrees.
        soma_radius_um: the soma radius (um); None draws one in ``params.SOMA_RADIUS_UM``
            (the sample draws it with the cell, ``population.place_cells``, so that somata
            can be kept apart).

    Returns:
        A :class:`Skeleton` in um (cortical frame), node 0 = soma, topologically sorted.

    Raises:
        ValueError: for a cell type without skeletons (e.g. glia) or a soma outside the box.
    """
    if cell_type not in NEURON_TYPES:
        raise ValueError(
            f"cannot grow a skeleton for cell type {cell_type!r}: only neurons have "
            f"skeletons; expected one of {', '.join(NEURON_TYPES)}")
    soma = np.asarray(soma_um, dtype=float).reshape(3)
    box_min = np.asarray(box_min_um, dtype=float).reshape(3)
    box_max = np.asarray(box_max_um, dtype=float).reshape(3)
    if soma[1] < 0 or np.any(soma < box_min) or np.any(soma > box_max):
        raise ValueError(f"soma {soma.tolist()} um lies outside the slab box "
                         f"{box_min.tolist()}..{box_max.tolist()} um or above the pia")

    if soma_radius_um is None:
        kind = "excitatory_neuron" if cell_type in _PYR else "inhibitory_neuron"
        soma_radius_um = float(rng.uniform(*params.SOMA_RADIUS_UM[kind]))
    g = _Grower(rng, soma, float(soma_radius_um))
    if cell_type in _PYR:
        _grow_pyramidal(g, _PYR[cell_type], layer_bounds)
    else:
        _INTERNEURON_BUILDERS[cell_type](g, layer_bounds)
    vertices, parent, radius, comp = g.run()

    keep = _clip(vertices, parent, box_min, box_max)
    if not keep.all():
        new_index = np.cumsum(keep) - 1
        parent = parent[keep]
        parent[1:] = new_index[parent[1:]]
        vertices, radius, comp = vertices[keep], radius[keep], comp[keep]
    return Skeleton(vertices=vertices, parent=parent.astype(np.int32),
                    radius=radius.astype(np.float32), compartment=comp.astype(np.int8),
                    soma_radius_um=g.soma_r)
