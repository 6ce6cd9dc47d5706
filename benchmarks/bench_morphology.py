"""Benchmark offline_cave.generator.skeletons.grow_skeleton on the real MICrONS neuron type mix.

Grows N cells (default 500) with somata placed in the default minnie65 slab box the way the
sample places them (type shares and depth bands from ``offline_cave.contract.params``), clipped to the
box, and prints time per cell and vertices per cell by type, plus the projected cost of the
default sample (~9,500 neurons). Budget: <= 5 ms per neuron on average.

Usage: ``python benchmarks/bench_morphology.py [N] [seed]``
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict

import numpy as np

from offline_cave.contract import params
from offline_cave.generator.skeletons import APICAL, AXON, BASAL, grow_skeleton

N_DEFAULT_SAMPLE = 9500  # neurons in the default sample (scale 1)


def slab_box(p: params.DatastackParams = params.MINNIE) -> tuple[np.ndarray, np.ndarray]:
    """The default slab in the cortical frame (um)."""
    box_min = np.array([p.slab_center_x_um - p.slab_width_x_um / 2, 0.0,
                        p.slab_center_z_um - p.slab_width_z_um / 2])
    box_max = np.array([p.slab_center_x_um + p.slab_width_x_um / 2, p.depth_max_um,
                        p.slab_center_z_um + p.slab_width_z_um / 2])
    return box_min, box_max


def sample_cells(n: int, rng: np.random.Generator) -> list[tuple[str, float]]:
    """(cell_type, depth_um) pairs with the real E/I and within-class type shares."""
    p_exc = params.CLASS_SHARES["excitatory_neuron"] / (
        params.CLASS_SHARES["excitatory_neuron"] + params.CLASS_SHARES["inhibitory_neuron"])
    exc_types, exc_p = zip(*params.EXC_SHARES.items(), strict=True)
    inh_types, inh_p = zip(*params.INH_SHARES.items(), strict=True)
    layers = list(params.INH_LAYER_WEIGHTS)
    cells = []
    for _ in range(n):
        if rng.random() < p_exc:
            t = str(rng.choice(exc_types, p=np.array(exc_p) / sum(exc_p)))
            depth = rng.uniform(*params.EXC_DEPTH_BANDS[t])
        else:
            t = str(rng.choice(inh_types, p=np.array(inh_p) / sum(inh_p)))
            w = np.array([params.INH_LAYER_WEIGHTS[lay][t]
                          * np.diff(params.LAYER_BOUNDS_UM[lay])[0] for lay in layers])
            lay = layers[rng.choice(len(layers), p=w / w.sum())]
            lo, hi = params.LAYER_BOUNDS_UM[lay]
            depth = rng.uniform(lo + 2.0, hi - 2.0)
        cells.append((t, depth))
    return cells


def main(n: int = 500, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    box_min, box_max = slab_box()
    cells = sample_cells(n, rng)
    somata = np.column_stack([rng.uniform(box_min[0], box_max[0], n),
                              [d for _, d in cells],
                              rng.uniform(box_min[2], box_max[2], n)])
    stats: dict[str, list[tuple[float, int, float, float]]] = defaultdict(list)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for (cell_type, _), soma in zip(cells, somata, strict=True):
        t0 = time.perf_counter()
        sk = grow_skeleton(cell_type, soma, rng, params.LAYER_BOUNDS_UM, box_min, box_max)
        dt = time.perf_counter() - t0
        stats[cell_type].append((dt * 1e3, len(sk.vertices),
                                 sk.path_length_um(BASAL) + sk.path_length_um(APICAL),
                                 sk.path_length_um(AXON)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0

    print(f"{n} cells in box {box_min.tolist()}..{box_max.tolist()} um (clipped)")
    print(f"{'type':7s} {'n':>4s} {'ms/cell':>8s} {'vertices':>9s} {'dend mm':>8s} "
          f"{'axon mm':>8s}")
    for cell_type in params.EXC_TYPES + params.INH_TYPES:
        rows = np.array(stats.get(cell_type, []))
        if len(rows) == 0:
            continue
        print(f"{cell_type:7s} {len(rows):4d} {rows[:, 0].mean():8.2f} {rows[:, 1].mean():9.0f} "
              f"{rows[:, 2].mean() / 1e3:8.2f} {rows[:, 3].mean() / 1e3:8.2f}")
    all_rows = np.concatenate([np.array(v) for v in stats.values()])
    print(f"{'all':7s} {n:4d} {wall / n * 1e3:8.2f} {all_rows[:, 1].mean():9.0f} "
          f"{all_rows[:, 2].mean() / 1e3:8.2f} {all_rows[:, 3].mean() / 1e3:8.2f}")
    print(f"wall {wall:.2f} s, cpu {cpu:.2f} s ({cpu / n * 1e3:.2f} ms/cell cpu); "
          f"projected default sample ({N_DEFAULT_SAMPLE} neurons): "
          f"{N_DEFAULT_SAMPLE * cpu / n:.1f} s cpu; budget 5 ms/cell -> "
          f"{'OK' if cpu / n <= 5e-3 else 'OVER BUDGET'}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500,
         int(sys.argv[2]) if len(sys.argv) > 2 else 0)
