"""Cells of the slab: where the nuclei are, what type each cell is, and its latent properties.

Ground truth only: the tables that the service exposes (with classifier noise, multi-soma
merges, missing roots, ...) are derived from this frame by ``offline_cave.generator.annotations``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from offline_cave.contract.geometry import Slab, layer_of_depth
from offline_cave.contract.params import (
    CLASS_OF,
    CLASS_SHARES,
    EXC_DEPTH_BANDS,
    EXC_SHARES,
    GLIA_SHARES,
    INH_LAYER_WEIGHTS,
    INH_MTYPE_OF,
    INH_SHARES,
    LAYER_BOUNDS_UM,
    NUCLEUS_VOLUME_MEDIAN,
    SOMA_RADIUS_UM,
    DatastackParams,
)

# share of extra detections that are not cells (small false positives; datasets-facts §2.2)
FALSE_DETECTION_SHARE = 0.06


def _counts(total: int, shares: dict[str, float], rng: np.random.Generator) -> dict[str, int]:
    names = list(shares)
    probs = np.array([shares[n] for n in names], dtype=np.float64)
    return dict(zip(names, rng.multinomial(total, probs / probs.sum()), strict=True))


def _inh_depths(cell_type: str, n: int, rng: np.random.Generator) -> np.ndarray:
    layers = [name for name in INH_LAYER_WEIGHTS]
    weight = np.array([INH_LAYER_WEIGHTS[name][cell_type]
                       * (LAYER_BOUNDS_UM[name][1] - LAYER_BOUNDS_UM[name][0]) for name in layers])
    which = rng.choice(len(layers), size=n, p=weight / weight.sum())
    lo = np.array([LAYER_BOUNDS_UM[layers[i]][0] for i in which])
    hi = np.array([LAYER_BOUNDS_UM[layers[i]][1] for i in which])
    return rng.uniform(lo + 5.0, hi - 5.0)


def _glia_depths(cell_type: str, n: int, depth_max: float, rng: np.random.Generator) -> np.ndarray:
    if cell_type != "oligo":
        return rng.uniform(5.0, depth_max - 5.0, size=n)
    # oligodendrocytes concentrate in deep layers and white matter
    depth = rng.uniform(5.0, depth_max - 5.0, size=4 * n)
    keep = rng.random(depth.size) < np.where(depth > 831, 1.0, np.where(depth > 619, 0.5, 0.2))
    out = depth[keep][:n]
    while out.size < n:  # pragma: no cover - keep rate is ~0.3, 4x oversampling suffices
        out = np.concatenate([out, rng.uniform(619.0, depth_max - 5.0, size=n - out.size)])
    return out


def mtype_of(cell_type: str, depth_um: float) -> str:
    """The m-type label of ``aibs_metamodel_mtypes_v661_v2`` for a coarse type at a depth."""
    if cell_type in INH_MTYPE_OF:
        return INH_MTYPE_OF[cell_type]
    if cell_type == "23P":
        return ("L2a", "L2b", "L3a", "L3b", "L3c")[min(4, max(0, int((depth_um - 104) / 39.2)))]
    if cell_type == "4P":
        return ("L4a", "L4b", "L4c")[min(2, max(0, int((depth_um - 300) / 36.4)))]
    if cell_type == "5P-IT":
        return "L5a" if depth_um < 514 else "L5b"
    if cell_type == "5P-ET":
        return "L5ET"
    if cell_type == "5P-NP":
        return "L5NP"
    if cell_type == "6P-IT":
        if depth_um > 800:
            return "L6wm"
        return ("L6a", "L6b", "L6c")[min(2, max(0, int((depth_um - 619) / 61.0)))]
    if cell_type == "6P-CT":
        return "L6CT"
    raise ValueError(f"no m-type for cell type {cell_type!r}")


def cardinal_biased_orientations(n: int, rng: np.random.Generator) -> np.ndarray:
    """Preferred orientations in [0, pi) with the cardinal bias of mouse V1 (datasets-facts §3.9)."""
    uniform = rng.uniform(0.0, np.pi, size=n)
    cardinal = (rng.integers(0, 2, size=n) * np.pi / 2 + rng.vonmises(0.0, 8.0, size=n) / 2)
    return np.where(rng.random(n) < 0.35, cardinal, uniform) % np.pi


def place_cells(params: DatastackParams, slab: Slab, rng: np.random.Generator) -> pd.DataFrame:
    """Nuclei of the slab with ground-truth type, position (cortical um) and latent properties.

    Returns one row per detected nucleus (``CELL_COLUMNS`` of layout.py minus the voxel
    position, which ``tables`` adds). ``cell_type`` is ``"false_detection"`` for detections that
    are not cells.
    """
    n_cells = int(round(params.nucleus_density_per_mm3 * slab.volume_mm3))
    if n_cells < 50:
        raise ValueError(f"the slab holds only {n_cells} nuclei; use a larger scale")
    cell_type, depth = _types_and_depths(n_cells, slab, rng)
    n = cell_type.size
    margin = 3.0
    x = rng.uniform(slab.box_min[0] + margin, slab.box_max[0] - margin, size=n)
    z = rng.uniform(slab.box_min[2] + margin, slab.box_max[2] - margin, size=n)
    cell_class = np.array([CLASS_OF.get(t, "false_detection") for t in cell_type], dtype=object)
    volume = _nucleus_volumes(cell_type, cell_class, rng)
    # cells do not overlap: a soma radius per neuron, then the x, z of those that would
    # overlap moved (their own stream, so every other column keeps its draws)
    apart = np.random.Generator(rng.bit_generator.jumped())
    soma_radius = soma_radii(cell_class, apart)
    x, depth, z = separate_somata(x, depth, z,
                                  exclusion_radius_um(cell_class, volume, soma_radius),
                                  slab, margin, apart)
    pref, osi = _latent_tuning(cell_class, rng)
    proofread, coreg = _proofread_and_coregistered(params, slab, cell_class, x, z, depth, rng)

    frame = pd.DataFrame({
        "cell_class": cell_class,
        "cell_type": cell_type,
        "mtype": [mtype_of(t, d) if c in ("excitatory_neuron", "inhibitory_neuron") else None
                  for t, d, c in zip(cell_type, depth, cell_class, strict=True)],
        "layer": layer_of_depth(depth),
        "depth_um": depth,
        "x_um": x,
        "y_um": depth,
        "z_um": z,
        "volume_um3": volume,
        "soma_radius_um": soma_radius,
        "pref_ori_rad": pref,
        "osi": osi,
        "proofread_axon": proofread,
        "coregistered": coreg,
    })
    # a stable, spatially meaningless order (as nucleus ids are not sorted by type)
    frame = frame.iloc[rng.permutation(n)].reset_index(drop=True)
    if params.orientation_field_share > 0:  # drawn last: the other columns keep their draws
        frame["pref_ori_rad"] = clustered_orientations(
            frame["pref_ori_rad"].to_numpy(), frame["x_um"].to_numpy(),
            frame["z_um"].to_numpy(), params.orientation_field_share, rng)
    return frame


#: Wavelength (um) of the smooth orientation field: tuning similarity in mouse V1 falls off
#: over the first ~200 um of cortical distance (Ringach et al. 2016, Fig. 2b; *assumed* value).
FIELD_WAVELENGTH_UM = 350.0
FIELD_WAVES = 16
FIELD_KAPPA = 4.0  # von Mises concentration (on 2 theta) of a cell around the field
#: share of the field-following cells pulled to the nearest cardinal orientation, so the
#: cardinal bias (datasets-facts §3.9) survives the clustering (*assumed*, as in
#: cardinal_biased_orientations)
FIELD_CARDINAL_SHARE = 0.35


def clustered_orientations(pref: np.ndarray, x_um: np.ndarray, z_um: np.ndarray, share: float,
                           rng: np.random.Generator) -> np.ndarray:
    """Preferred orientations (rad, [0, pi)) where a ``share`` of the tuned cells follow a
    smooth field over the tangential position: the angle of a sum of ``FIELD_WAVES`` plane
    waves of wavelength ``FIELD_WAVELENGTH_UM``, plus von Mises scatter, a share
    ``FIELD_CARDINAL_SHARE`` of them pulled to the nearest cardinal. NaN stays NaN."""
    angle = rng.uniform(0, 2 * np.pi, FIELD_WAVES)
    phase = rng.uniform(0, 2 * np.pi, FIELD_WAVES)
    k = 2 * np.pi / FIELD_WAVELENGTH_UM
    field = np.exp(1j * (k * (np.outer(x_um, np.cos(angle)) + np.outer(z_um, np.sin(angle)))
                         + phase)).sum(axis=1)
    theta = (np.angle(field) / 2) % np.pi
    scatter = rng.vonmises(0.0, FIELD_KAPPA, size=pref.size) / 2
    follow = np.isfinite(pref) & (rng.random(pref.size) < share)
    local = (theta + scatter) % np.pi
    cardinal = (np.round(local / (np.pi / 2)) * (np.pi / 2)
                + rng.vonmises(0.0, 8.0, size=pref.size) / 2)
    local = np.where(rng.random(pref.size) < FIELD_CARDINAL_SHARE, cardinal, local) % np.pi
    return np.where(follow, local, pref)


def _types_and_depths(n_cells: int, slab: Slab,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cell type and depth (um) of every detection, grouped by class then type."""
    class_counts = _counts(n_cells, CLASS_SHARES, rng)
    types: list[np.ndarray] = []
    depths: list[np.ndarray] = []
    for cell_type, n in _counts(class_counts["excitatory_neuron"], EXC_SHARES, rng).items():
        lo, hi = EXC_DEPTH_BANDS[cell_type]
        types.append(np.full(n, cell_type, dtype=object))
        depths.append(rng.uniform(lo, hi, size=n))
    for cell_type, n in _counts(class_counts["inhibitory_neuron"], INH_SHARES, rng).items():
        types.append(np.full(n, cell_type, dtype=object))
        depths.append(_inh_depths(cell_type, n, rng))
    for cell_type, n in _counts(class_counts["nonneuron"], GLIA_SHARES, rng).items():
        types.append(np.full(n, cell_type, dtype=object))
        depths.append(_glia_depths(cell_type, n, slab.box_max[1], rng))
    n_false = int(round(FALSE_DETECTION_SHARE * n_cells))
    types.append(np.full(n_false, "false_detection", dtype=object))
    depths.append(rng.uniform(2.0, slab.box_max[1] - 2.0, size=n_false))
    return np.concatenate(types), np.concatenate(depths)


def soma_radii(cell_class: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Soma radius (um) of each neuron, uniform in its class's ``SOMA_RADIUS_UM`` range (the
    skeleton grows from it); NaN for the other cells."""
    radius = np.full(cell_class.size, np.nan)
    for cls, (lo, hi) in SOMA_RADIUS_UM.items():
        sel = cell_class == cls
        radius[sel] = rng.uniform(lo, hi, int(sel.sum()))
    return radius


def exclusion_radius_um(cell_class: np.ndarray, volume_um3: np.ndarray,
                        soma_radius_um: np.ndarray) -> np.ndarray:
    """Radius (um) of the sphere a cell fills: a neuron's soma, the nucleus-equivalent
    sphere of any other cell, 0 for false detections (they are not cells)."""
    radius = (3 * np.asarray(volume_um3, float) / (4 * np.pi)) ** (1 / 3)
    neuron = np.isfinite(soma_radius_um)
    radius[neuron] = soma_radius_um[neuron]
    radius[cell_class == "false_detection"] = 0.0
    return radius


#: rounds of moving overlapping cells before giving up, and new places tried per round: at
#: least ``SEPARATION_TRIES`` per moving cell, and as many in all (the last few cells of a
#: dense layer find a free place rarely)
SEPARATION_ROUNDS = 400
SEPARATION_TRIES = 4096
#: after ``DEPTH_JITTER_ROUNDS`` rounds a moving cell may also change its depth, by up to
#: ``DEPTH_JITTER_UM`` and 10 um more every 40 rounds (within its layer): a thin slab packs
#: like a plane, where a crowded depth has no free place left
DEPTH_JITTER_ROUNDS = 20
DEPTH_JITTER_UM = 10.0


def _overlapping(pts: np.ndarray, radius: np.ndarray, reach: float) -> np.ndarray:
    """Of each pair of spheres (centres ``pts``) that overlap, the later one's index."""
    pairs = cKDTree(pts).query_pairs(reach, output_type="ndarray")
    if pairs.size == 0:
        return np.zeros(0, np.int64)
    a, b = pairs[:, 0], pairs[:, 1]
    close = np.linalg.norm(pts[a] - pts[b], axis=1) < radius[a] + radius[b]
    return np.unique(np.maximum(a[close], b[close]))


def separate_somata(x: np.ndarray, y: np.ndarray, z: np.ndarray, radius: np.ndarray,
                    slab: Slab, margin: float, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New positions (x, depth y, z, um) such that no two cells overlap: centres at least
    ``radius[i] + radius[j]`` apart, as somata are in tissue (placing nuclei independently puts
    ~70 % of the sample's neurons inside a neighbour at ~160,000 neurons per mm^3). Of each
    overlapping pair the later cell moves; the others stay where they are, and each moving
    cell takes the first of the places it tries in a round that overlaps no placed cell
    (random sequential addition): uniform in the slab at its depth, later also a few um
    deeper or shallower within its layer.

    Raises ``RuntimeError`` when the cells do not fit (a density no cortex has)."""
    x, y, z = np.array(x, float), np.array(y, float), np.array(z, float)
    has = np.flatnonzero(radius > 0)
    r = radius[has]
    pts = np.c_[x[has], y[has], z[has]]
    reach = 2 * float(r.max(initial=0.0))
    moving = _overlapping(pts, r, reach)
    placed = np.ones(has.size, bool)
    placed[moving] = False
    lo, hi = slab.box_min + margin, slab.box_max - margin
    layer = layer_of_depth(pts[:, 1])
    for round_ in range(SEPARATION_ROUNDS):
        if moving.size == 0:
            x[has], y[has], z[has] = pts[:, 0], pts[:, 1], pts[:, 2]
            return x, y, z
        kept = np.flatnonzero(placed)
        tries = max(8, min(SEPARATION_TRIES, SEPARATION_TRIES // moving.size))
        cand = np.repeat(pts[moving], tries, axis=0)
        cand[:, 0] = rng.uniform(lo[0], hi[0], cand.shape[0])
        cand[:, 2] = rng.uniform(lo[2], hi[2], cand.shape[0])
        stay = np.ones(cand.shape[0], bool)
        if round_ >= DEPTH_JITTER_ROUNDS:
            jitter = DEPTH_JITTER_UM * (1 + (round_ - DEPTH_JITTER_ROUNDS) / 40)
            depth = cand[:, 1] + rng.uniform(-jitter, jitter, cand.shape[0])
            stay = (layer_of_depth(depth) == np.repeat(layer[moving], tries)) & (depth > 5.0)
            stay &= depth < slab.box_max[1] - 5.0
            cand[:, 1] = depth
        dist, near = cKDTree(pts[kept]).query(cand, k=16, distance_upper_bound=reach)
        found = near < kept.size
        gap = np.where(found, dist - r[kept[np.minimum(near, kept.size - 1)]], np.inf)
        free = (gap >= np.repeat(r[moving], tries)[:, None]).all(axis=1)
        free &= ~found[:, -1] & stay  # 16 neighbours within reach: too crowded, try again
        free = free.reshape(moving.size, tries)
        ok = free.any(axis=1)
        first = free.argmax(axis=1)
        chosen = moving[ok]
        pts[chosen] = cand.reshape(moving.size, tries, 3)[ok, first[ok]]
        # the newly placed must not overlap each other either: the later of a pair waits
        clash = chosen[_overlapping(pts[chosen], r[chosen], reach)]
        placed[np.setdiff1d(chosen, clash)] = True
        moving = np.flatnonzero(~placed)
    raise RuntimeError(f"{moving.size} cells still overlap after {SEPARATION_ROUNDS} rounds of "
                       "moving them: the slab is too small for its density; use a larger scale")


def _nucleus_volumes(cell_type: np.ndarray, cell_class: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Nucleus volumes (um^3): lognormal around the type's median, uniform for false ones."""
    n = cell_type.size
    median = np.array([NUCLEUS_VOLUME_MEDIAN.get(t, NUCLEUS_VOLUME_MEDIAN.get(c, 30.0))
                       for t, c in zip(cell_type, cell_class, strict=True)])
    volume = median * np.exp(rng.normal(0.0, 0.25, size=n))
    is_false = cell_type == "false_detection"
    volume[is_false] = rng.uniform(25.5, 60.0, size=is_false.sum())
    return np.maximum(volume, 25.5)


def _latent_tuning(cell_class: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Preferred orientation (rad) and OSI of excitatory cells (NaN for the others)."""
    n = cell_class.size
    excit = cell_class == "excitatory_neuron"
    pref = np.full(n, np.nan)
    pref[excit] = cardinal_biased_orientations(int(excit.sum()), rng)
    osi = np.full(n, np.nan)
    osi[excit] = rng.beta(2.0, 4.0, size=int(excit.sum()))
    return pref, osi


def _proofread_and_coregistered(
    params: DatastackParams, slab: Slab, cell_class: np.ndarray, x: np.ndarray, z: np.ndarray,
    depth: np.ndarray, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Which neurons have a proofread axon and which are co-registered with two-photon data."""
    n = cell_class.size
    excit = cell_class == "excitatory_neuron"
    neuron = excit | (cell_class == "inhibitory_neuron")
    # proofreading concentrates on the centre of the slab (the "column") and on interneurons
    centre = (slab.box_min + slab.box_max) / 2
    radial = np.hypot(x - centre[0], z - centre[2])
    w_proof = np.where(neuron, np.exp(-radial / 120.0) * np.where(excit, 1.0, 2.5), 0.0)
    n_proof = int(round(params.frac_proofread_axon * neuron.sum()))
    proofread = np.zeros(n, dtype=bool)
    proofread[rng.choice(n, size=n_proof, replace=False, p=w_proof / w_proof.sum())] = True
    # two-photon imaging reached ~L5: co-registered cells are excitatory cells above 620 um
    can_coreg = excit & (depth < 620.0)
    coreg = can_coreg & (rng.random(n) < params.frac_coregistered / max(can_coreg.mean() / excit.mean(), 1e-9))
    return proofread, coreg
