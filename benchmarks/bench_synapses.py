"""Time and memory of ``place_synapses`` (and ``axon_fragments``) for a sample of N cells.

Usage::

    .venv/bin/python benchmarks/bench_synapses.py --scale 0.1          # real morphology
    .venv/bin/python benchmarks/bench_synapses.py --toy 2000           # toy skeletons

``--scale`` builds cells and skeletons exactly as the generator does (``offline_cave.generator.population``,
``offline_cave.generator.skeletons``) for a slab of that scale; skeleton growth is not timed. ``--toy N``
uses the polyline neurons of ``tests/toy_skeletons.py`` at roughly the real cell density.
Prints wall time, peak RSS increase (psutil, sampled), synapses per neuron, the external
fraction, synapses per connection and the inputs by presynaptic class.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from offline_cave.contract.params import MINNIE  # noqa: E402
from offline_cave.generator.synapses import (  # noqa: E402
    axon_fragments,
    axon_fragments_many,
    place_synapses,
)


class PeakRSS:
    """Samples this process's resident set size every 50 ms in a thread."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.05)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def real_population(scale: float, seed: int) -> tuple[pd.DataFrame, dict]:
    from offline_cave.contract.geometry import slab_for
    from offline_cave.generator.pipeline import grow_all
    from offline_cave.generator.population import place_cells

    slab = slab_for(MINNIE, scale)
    cells = place_cells(MINNIE, slab, np.random.default_rng([seed, 1]))
    cells.insert(0, "nucleus_id", np.arange(1, len(cells) + 1, dtype=np.int64) * 11)
    neurons = cells[cells["cell_class"].isin(["excitatory_neuron", "inhibitory_neuron"])]
    neurons = neurons.reset_index(drop=True)
    return neurons, grow_all(neurons, slab, seed, workers=2)


def toy_population_at_density(n: int, seed: int) -> tuple[pd.DataFrame, dict]:
    from toy_skeletons import toy_population

    # ~1.5e5 neurons / mm^3 between 20 and 880 um depth
    width = float(np.sqrt(n / 1.5e5 / 0.86) * 1000.0)
    return toy_population(
        n, np.random.default_rng(seed), width_um=width, depth_range=(110.0, 860.0), axon_scale=2.0
    )


def report(cells: pd.DataFrame, syn: pd.DataFrame) -> None:
    n = len(cells)
    local = syn["pre_nucleus_id"].to_numpy() > 0
    print(
        f"synapses: {len(syn):,}  ({len(syn) / n:.0f} per neuron), "
        f"external fraction {1 - local.mean():.3f}"
    )
    per_post = syn.groupby("post_nucleus_id").size()
    cls = cells.set_index("nucleus_id")["cell_class"]
    for c in ("excitatory_neuron", "inhibitory_neuron"):
        v = per_post[per_post.index.isin(cls.index[cls == c])]
        print(f"  inputs per {c}: median {v.median():.0f}, 90th pct {v.quantile(0.9):.0f}")
    pairs = syn.loc[local].groupby(["pre_nucleus_id", "post_nucleus_id"]).size()
    print(
        f"local connections: {len(pairs):,}, synapses per connection mean "
        f"{pairs.mean():.2f}, max {pairs.max()}"
    )
    ctype = cells.set_index("nucleus_id")["cell_type"]
    pre_type = np.where(local, ctype.reindex(syn["pre_nucleus_id"]).to_numpy(), "external")
    pre_cls = pd.Series(pre_type).map(
        lambda t: t if t in ("BC", "MC", "BPC", "NGC", "external") else "E"
    )
    post_cls = cls.reindex(syn["post_nucleus_id"]).to_numpy()
    tab = pd.crosstab(pre_cls.to_numpy(), post_cls, normalize="columns")
    print("inputs by pre class (share of each post class's inputs):")
    print(tab.round(3).to_string())
    exc_post = post_cls == "excitatory_neuron"
    inh_in = np.isin(pre_cls.to_numpy(), ["BC", "MC", "BPC", "NGC"]) & exc_post
    print(
        f"  inhibitory share of local inputs onto E cells: "
        f"{inh_in.sum() / max((local & exc_post).sum(), 1):.3f}"
    )
    d = syn.loc[local, "post_dist_to_soma_um"].to_numpy()
    for t in ("BC", "MC", "BPC", "NGC"):
        sel = pre_type[local] == t
        if sel.any():
            print(
                f"  {t} -> median post dist to soma {np.median(d[sel]):.0f} um, "
                f"soma share {np.mean(syn.loc[local, 'post_compartment'].to_numpy()[sel] == 1):.2f}"
            )
    ln = np.log(syn["size"].to_numpy())
    print(f"ln(size) mean {ln.mean():.3f} sd {ln.std():.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scale", type=float, default=None, help="real-morphology slab scale")
    ap.add_argument("--toy", type=int, default=None, help="number of toy neurons")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.toy is not None:
        cells, skeletons = toy_population_at_density(args.toy, args.seed)
    else:
        cells, skeletons = real_population(args.scale if args.scale else 0.1, args.seed)
    nodes = sum(len(s.parent) for s in skeletons.values())
    print(
        f"{len(cells)} neurons, {nodes:,} skeleton nodes "
        f"(built in {time.perf_counter() - t0:.1f} s)"
    )

    with PeakRSS() as mem:
        cpu0 = sum(mem.proc.cpu_times()[:2])
        t0 = time.perf_counter()
        syn = place_synapses(cells, skeletons, MINNIE, np.random.default_rng(args.seed))
        dt = time.perf_counter() - t0
        cpu = sum(mem.proc.cpu_times()[:2]) - cpu0
    print(
        f"place_synapses: {dt:.1f} s wall, {cpu:.1f} s CPU (user+sys, both workers), "
        f"peak RSS +{(mem.peak - mem.base) / 2**20:.0f} MB, load average "
        f"{psutil.getloadavg()[0]:.1f}"
    )

    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    n_frag = 0
    for sk in skeletons.values():
        n_frag += int(axon_fragments(sk, False, rng).max(initial=0))
    dt = time.perf_counter() - t0
    print(
        f"axon_fragments: {dt:.2f} s for {len(skeletons)} cells "
        f"({1e3 * dt / max(len(skeletons), 1):.2f} ms/cell), {n_frag:,} fragments"
    )
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        labels = axon_fragments_many(
            list(skeletons.values()), [False] * len(skeletons), np.random.default_rng(args.seed)
        )
        dt = time.perf_counter() - t0
    print(
        f"axon_fragments_many: {dt:.2f} s, peak RSS +{(mem.peak - mem.base) / 2**20:.0f} MB, "
        f"{sum(int(x.max(initial=0)) for x in labels):,} fragments"
    )
    report(cells, syn)


if __name__ == "__main__":
    main()
