"""Will a sample fit? Memory and disk estimates checked before generating.

The generator holds a whole datastack in memory, so its peak grows linearly with ``--scale``.
Measured with ``benchmarks/bench_generate.py`` on the development machine (2026-11-28):
minnie65_public 1.97 GB peak / 1.03 GB on disk at scale 1 and 17.8 GB / 13.2 GB at scale 10;
v1dd_public about 1.3 GB / 0.31 GB at scale 1. With the level-2 data (2026-12-03, one run on
the shared machine): minnie65_public 2.27 GB peak / 1.15 GB on disk at scale 1 (the tables
stage; main's generator measured 1.91 GB in the same session), v1dd_public 0.36 GB on disk;
scale 10 not re-measured, so the per-scale memory is raised by the same share. With the
static meshes, the imagery and the bulk exports (2026-12-03, low load): minnie65_public 2.7 GB
peak (the imagery stage) / 1.79 GB on disk at scale 1.

Where the peak is (2026-12-03, main's generator, ``benchmarks/bench_scale.py``-style RSS
sampling on the shared machine under load 10-40): at scale 1 the progress lines read peak
0.7 GB after the skeletons, 1.4 GB after the synapses (3.72 M), 1.7 GB after the
segmentation and 2.8 GB after the imagery (its 1280 x 1280 x 32 volumes add ~1.1 GB whatever
the scale); at scale 2, 1.1 GB after the skeletons and 2.2-2.3 GB resident through the synapse
builder with 2.76 GB reached before it finished (the run was stopped there). So from scale 2
on the synapse builder (``synapses.place_synapses``: every skeleton, the k-d tree of all axon
nodes and every site at once) sets the peak, at least 1.36 GB per unit of scale; the stages
after it were trimmed (supervoxel ids read from int32 points an axis at a time and assembled
in place, synapse voxels and the imagery plan a block of rows at a time, the supervoxel ->
piece map written at once, the imagery rendered after the tables; the sample stays
byte-identical), which lowers their share but not the builder's. The figures below are
therefore unchanged: streaming the builder per spatial slab is what would flatten them.

The builder alone (2026-12-04, cells + skeletons + ``place_synapses`` in one process, RSS
sampled every 50 ms, load 12-40): scale 0.2 / 0.5 / 1 peak 0.74 / 1.13 / 1.67 GB (0.50 / 0.80 /
1.15 GB above the skeletons), about 1.15 GB per unit of scale with the skeletons. Trimmed since
then with the sample byte-identical (axon nodes straight into the tree's float64 array, site
geometry dropped block by block once placed, external fragments in row blocks): 1.58 GB
(+1.11) at scale 1. What is left grows with the scale by construction: the k-d tree over every
axon node (float64 + index, ~36 B a node) and the frame the later stages read whole (81 B a
synapse); per-slab trees would change the approximate neighbour search (``QUERY_EPS``) and so
the sample. Batching the candidate weights (peak 0.42 instead of 0.74 GB at scale 0.2, 1.18
instead of 1.58 at scale 1) changed the scale-1 frame and was taken out. The full build at
scale 1 (same day, load 12-40): peak 0.7 GB after the skeletons, 1.6 after the synapses, 1.7
after the segmentation, 2.1 after the tables, 2.7 after the imagery. Scale 2
(``benchmarks/bench_scale.py``, same day): 3.86 GB peak / 3.91 GB on disk, 8.0 M synapses,
2739 s under load; stage peaks 1.1 after the skeletons, 2.2 after the synapses, 2.9 after the
level-2 data, 3.3 after the segmentation, 3.8 after the tables. So from scale 2 on the tables
stage sets the peak, not the builder: ``0.4 + 1.7 GB x scale`` through the two tables-stage
peaks, and the imagery's fixed ~1.1 GB sets the 2.7-2.8 GB floor at scale 1. The estimate below
is ``max(FLOOR, BASE + per-scale x scale)`` with 1.8 GB per unit of scale (it also covers the
17.8 GB measured at scale 10 on 2026-11-28): largest scale in 24 GB less 2 GB for the system
~12, extrapolated (scales 4 and 10 were not re-run: a scale-2 build took 46 min on the shared
machine). Disk 3.91 GB at scale 2: 2.0 GB per unit of scale.

A run that cannot fit is refused up front with
the numbers, instead of being killed by the kernel half-way (which would lose nothing, since the
sample is written to a temporary directory, but would waste the time).
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: (GB of peak memory, GB on disk) per unit of scale, from the measurements above
PER_SCALE_GB = {"minnie65_public": (1.8, 2.0), "v1dd_public": (1.3, 0.4)}
BASE_MEMORY_GB = 0.3  # interpreter and libraries
#: GB of peak memory whatever the scale (minnie65_public: the imagery volumes, ~2.8 GB at scale 1)
FLOOR_GB = {"minnie65_public": 2.8}


class InsufficientResources(RuntimeError):
    """The machine lacks the memory or disk a sample needs."""


def per_scale_gb(datastack: str) -> tuple[float, float]:
    """(peak memory, disk) in GB per unit of scale; the largest known for another datastack."""
    return PER_SCALE_GB.get(datastack, max(PER_SCALE_GB.values()))


def estimate_gb(datastack: str, scale: float) -> tuple[float, float]:
    """(peak memory, disk) in GB that generating ``datastack`` at ``scale`` needs."""
    memory, disk = per_scale_gb(datastack)
    return max(FLOOR_GB.get(datastack, 0.0), BASE_MEMORY_GB + memory * scale), disk * scale


def available_memory_gb() -> float | None:
    """MemAvailable from /proc/meminfo in GB, or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except (OSError, ValueError, IndexError):
        return None
    return None


def free_disk_gb(path: Path) -> float:
    return shutil.disk_usage(path).free / 1e9


def check_resources(datastack: str, scale: float, data_dir: Path) -> None:
    """Raise :class:`InsufficientResources` when the sample cannot fit on this machine.

    The advice names ``generate`` with its flags: the refusal also reaches ``serve`` and
    ``exec`` (which generate a missing sample but take none of those flags).
    """
    memory, disk = estimate_gb(datastack, scale)
    anyway = (f"or try anyway with `python -m offline_cave generate --datastack {datastack} "
              f"--scale {scale:g} --out {data_dir} --skip-resource-check`")
    have_memory = available_memory_gb()
    if have_memory is not None and memory > have_memory:
        raise InsufficientResources(
            f"{datastack} at scale {scale:g} needs about {memory:.1f} GB of memory while "
            f"generating, and {have_memory:.1f} GB are available. Free memory, make a smaller "
            f"sample (`python -m offline_cave generate --scale` below {scale:g}: the peak grows "
            f"linearly, about {per_scale_gb(datastack)[0]:g} GB per unit of scale), {anyway}.")
    have_disk = free_disk_gb(data_dir)
    if disk > have_disk:
        raise InsufficientResources(
            f"{datastack} at scale {scale:g} needs about {disk:.1f} GB of disk under "
            f"{data_dir} and {have_disk:.1f} GB are free. Free disk, write the sample "
            f"elsewhere (`python -m offline_cave generate --out DIR`, then serve that DIR), make "
            f"it smaller (`python -m offline_cave generate --scale` below {scale:g}), {anyway}.")
