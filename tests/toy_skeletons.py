"""Toy neurons for the synapse tests and benchmark: wiggly polylines, not real morphology.

Each cell gets a soma, dendrites (3 um steps) and an axon (5 um steps) with a type-specific
shape: pyramidal cells an apical dendrite to layer 1 and a descending axon with lateral
collaterals; basket cells a bushy local axon; Martinotti cells an axon ascending into layer 1;
bipolar cells a vertical axon; neurogliaform cells a small dense axon. Frames and units as in
``offline_cave.morphology``: um, x lateral, y depth below pia, z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from offline_cave.params import EXC_SHARES, EXC_TYPES, INH_SHARES, INH_TYPES


@dataclass
class ToySkeleton:
    """Duck-typed stand-in for ``offline_cave.morphology.Skeleton``."""

    vertices: np.ndarray
    parent: np.ndarray
    radius: np.ndarray
    compartment: np.ndarray
    soma_radius_um: float

    def distance_to_soma_um(self) -> np.ndarray:
        d = np.zeros(len(self.parent))
        for i in range(1, len(self.parent)):
            p = self.parent[i]
            d[i] = d[p] + np.linalg.norm(self.vertices[i] - self.vertices[p])
        return d


class _Builder:
    def __init__(self, soma: np.ndarray, soma_radius: float) -> None:
        self.verts = [np.asarray(soma, dtype=np.float64)[None, :]]
        self.parent = [np.array([-1])]
        self.comp = [np.array([1])]
        self.radius = [np.array([soma_radius])]
        self.n = 1

    def branch(
        self,
        start_node: int,
        start_pos: np.ndarray,
        direction: np.ndarray,
        length: float,
        step: float,
        comp: int,
        radius: float,
        rng: np.random.Generator,
        curl: float = 0.12,
    ) -> np.ndarray:
        k = max(int(round(length / step)), 1)
        d = np.asarray(direction, dtype=np.float64)
        d = d / np.linalg.norm(d)
        dirs = d + np.cumsum(rng.normal(0, curl, size=(k, 3)), axis=0)
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        pts = start_pos + np.cumsum(dirs * step, axis=0)
        pts[:, 1] = np.abs(pts[:, 1] - 2.0) + 2.0  # stay below the pia
        idx = np.arange(self.n, self.n + k)
        par = np.concatenate([[start_node], idx[:-1]])
        self.verts.append(pts)
        self.parent.append(par)
        self.comp.append(np.full(k, comp))
        self.radius.append(np.linspace(radius, 0.4 * radius, k))
        self.n += k
        return idx

    def build(self, soma_radius: float) -> ToySkeleton:
        return ToySkeleton(
            np.concatenate(self.verts),
            np.concatenate(self.parent).astype(np.int32),
            np.concatenate(self.radius).astype(np.float32),
            np.concatenate(self.comp).astype(np.int8),
            soma_radius,
        )


def _rand_dir(rng: np.random.Generator, y_bias: float = 0.0) -> np.ndarray:
    d = rng.normal(size=3)
    d[1] += y_bias
    return d / np.linalg.norm(d)


def toy_skeleton(
    cell_type: str, soma: np.ndarray, rng: np.random.Generator, axon_scale: float = 1.0
) -> ToySkeleton:
    """A toy skeleton of ``cell_type`` with its soma at ``soma`` (um, cortical frame)."""
    soma = np.asarray(soma, dtype=np.float64)
    exc = cell_type in EXC_TYPES
    rs = 5.0 if exc else 6.0
    b = _Builder(soma, rs)
    # dendrites
    n_prim = 5 if exc else 6
    for _ in range(n_prim):
        d = _rand_dir(rng, y_bias=0.5 if exc else 0.0)
        idx = b.branch(0, soma + d * rs, d, rng.uniform(60, 140), 3.0, 3, 1.0, rng, curl=0.08)
        mid = idx[len(idx) // 2]
        b.branch(
            mid,
            b.verts[-1][len(idx) // 2],
            _rand_dir(rng),
            rng.uniform(30, 80),
            3.0,
            3,
            0.6,
            rng,
            curl=0.1,
        )
    if exc:
        up = np.array([0.0, -1.0, 0.0])
        length = max(soma[1] - 40.0, 30.0)
        idx = b.branch(0, soma + up * rs, up, length, 3.0, 4, 1.5, rng, curl=0.03)
        pts = b.verts[-1]
        for j in rng.choice(len(idx) // 2, size=2, replace=False):
            b.branch(idx[j], pts[j], _rand_dir(rng), rng.uniform(40, 90), 3.0, 4, 0.6, rng)
        for _ in range(3):
            d = _rand_dir(rng)
            d[1] = 0.2 * abs(d[1])
            b.branch(idx[-1], pts[-1], d, rng.uniform(50, 110), 3.0, 4, 0.6, rng)
    # axon
    s = axon_scale
    if exc:
        down = np.array([0.0, 1.0, 0.0])
        idx = b.branch(0, soma + down * rs, down, 350 * s, 5.0, 2, 0.5, rng, curl=0.04)
        pts = b.verts[-1]
        for j in rng.choice(len(idx), size=6, replace=False):
            d = _rand_dir(rng)
            d[1] *= 0.3
            b.branch(idx[j], pts[j], d, rng.uniform(150, 350) * s, 5.0, 2, 0.3, rng)
    elif cell_type == "BC":
        for _ in range(10):
            d = _rand_dir(rng)
            idx = b.branch(
                0, soma + d * rs, d, rng.uniform(100, 250) * s, 5.0, 2, 0.3, rng, curl=0.3
            )
            pts = b.verts[-1]
            j = len(idx) // 2
            b.branch(
                idx[j], pts[j], _rand_dir(rng), rng.uniform(80, 160) * s, 5.0, 2, 0.3, rng, curl=0.3
            )
    elif cell_type == "MC":
        up = np.array([0.0, -1.0, 0.0])
        length = max(soma[1] - 50.0, 20.0)
        idx = b.branch(0, soma + up * rs, up, length, 5.0, 2, 0.4, rng, curl=0.03)
        pts = b.verts[-1]
        for _ in range(6):
            d = _rand_dir(rng)
            d[1] = 0.0
            b.branch(idx[-1], pts[-1], d, rng.uniform(150, 300) * s, 5.0, 2, 0.3, rng, curl=0.1)
        for j in rng.choice(len(idx), size=3, replace=False):
            b.branch(idx[j], pts[j], _rand_dir(rng), rng.uniform(60, 150) * s, 5.0, 2, 0.3, rng)
    elif cell_type == "BPC":
        for sign in (-1.0, 1.0):
            d = np.array([0.0, sign, 0.0])
            idx = b.branch(0, soma + d * rs, d, 300 * s, 5.0, 2, 0.3, rng, curl=0.05)
            pts = b.verts[-1]
            for j in rng.choice(len(idx), size=3, replace=False):
                b.branch(idx[j], pts[j], _rand_dir(rng), rng.uniform(40, 100) * s, 5.0, 2, 0.3, rng)
    elif cell_type == "NGC":
        for _ in range(12):
            d = _rand_dir(rng)
            b.branch(0, soma + d * rs, d, rng.uniform(80, 150) * s, 5.0, 2, 0.3, rng, curl=0.4)
    else:  # pragma: no cover
        raise ValueError(cell_type)
    return b.build(rs)


def toy_population(
    n_cells: int,
    rng: np.random.Generator,
    width_um: float = 250.0,
    depth_range: tuple[float, float] = (110.0, 650.0),
    frac_inhibitory: float = 0.12,
    axon_scale: float = 1.0,
) -> tuple[pd.DataFrame, dict[int, ToySkeleton]]:
    """``n_cells`` toy neurons in a width x depth x width box, with the columns
    ``place_synapses`` needs, plus their skeletons keyed by nucleus id."""
    n_inh = int(round(frac_inhibitory * n_cells))
    e_types = rng.choice(
        EXC_TYPES,
        size=n_cells - n_inh,
        p=np.array(list(EXC_SHARES.values())) / sum(EXC_SHARES.values()),
    )
    i_types = rng.choice(
        INH_TYPES, size=n_inh, p=np.array(list(INH_SHARES.values())) / sum(INH_SHARES.values())
    )
    types = np.concatenate([e_types, i_types])
    x = rng.uniform(0, width_um, n_cells)
    z = rng.uniform(0, width_um, n_cells)
    y = rng.uniform(*depth_range, n_cells)
    y[types == "NGC"] = rng.uniform(20, 100, int(np.sum(types == "NGC")))
    exc = np.isin(types, EXC_TYPES)
    nucleus_id = 100_000 + np.arange(n_cells, dtype=np.int64) * 7
    cells = pd.DataFrame(
        {
            "nucleus_id": nucleus_id,
            "cell_type": types,
            "cell_class": np.where(exc, "excitatory_neuron", "inhibitory_neuron"),
            "x_um": x,
            "y_um": y,
            "z_um": z,
            "pref_ori_rad": np.where(exc, rng.uniform(0, np.pi, n_cells), np.nan),
            "osi": np.where(exc, rng.beta(2.0, 4.0, n_cells), np.nan),
            "proofread_axon": rng.random(n_cells) < 0.1,
            "coregistered": exc & (rng.random(n_cells) < 0.3),
        }
    )
    skeletons = {
        int(nid): toy_skeleton(t, np.array([xx, yy, zz]), rng, axon_scale)
        for nid, t, xx, yy, zz in zip(nucleus_id, types, x, y, z, strict=True)
    }
    return cells, skeletons
