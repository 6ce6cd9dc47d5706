"""Realistic identifiers: root ids, supervoxel ids, nucleus, synapse and annotation ids.

Formats follow the public MICrONS data (datasets-facts §1.4):

* root id: ``(12 << 56) + counter`` -- an 18-digit uint64 whose top byte is the chunkedgraph's
  top layer (12), e.g. ``864691135xxxxxxxxx``. Counters of the public roots run ~3.59e9..8.74e9
  and mostly grow with time (a proofreading edit mints a new, larger counter). The sample's
  synthetic roots follow that order, but the tutorials' example cells carry real ids that do
  not (``generator/examples.py``: the expired 864691135919440816 is replaced by
  864691134991067002), so neither side may infer time order from a counter.
* supervoxel id: ``(1 << 56) | (cx << 46) | (cy << 36) | (cz << 26) | k`` where (cx, cy, cz) is
  the chunk of the point in the 8x8x40 nm segmentation grid (chunks of 256x256x512 voxels,
  grid origin ``chunk_offset_vx``) and k a per-chunk counter.
"""

from __future__ import annotations

import numpy as np

ROOT_BASE = 12 << 56
SV_LAYER = 1 << 56


def mint_counters(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """``n`` unique, sorted int64 counters in ``[low, high)`` (sorted = minted in time order)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    span = int(high - low)
    if n > span // 4:
        raise ValueError(f"cannot mint {n} unique ids in a range of {span}")
    values = np.unique(rng.integers(int(low), int(high), size=int(n * 1.05) + 16))
    while values.size < n:  # astronomically rare for the ranges used here
        extra = rng.integers(int(low), int(high), size=n)
        values = np.unique(np.concatenate([values, extra]))
    chosen = rng.choice(values.size, size=n, replace=False)
    return np.sort(values[chosen]).astype(np.int64)


def root_ids_from_counters(counters: np.ndarray) -> np.ndarray:
    """Root ids (int64) from counters."""
    return (np.int64(ROOT_BASE) + np.asarray(counters, dtype=np.int64)).astype(np.int64)


def supervoxel_ids(
    positions_vx: np.ndarray | list[np.ndarray],
    voxel_resolution: tuple[float, float, float],
    base_resolution: tuple[int, int, int],
    chunk_size: tuple[int, int, int],
    chunk_offset_vx: tuple[int, int, int],
    rng: np.random.Generator,
) -> np.ndarray:
    """Unique supervoxel ids (int64, layer 1) for points given in annotation voxels.

    Each point gets its own supervoxel, encoded with the chunk that contains it, so the
    chunk coordinates decode back to the point's position (as in the real PyChunkedGraph).
    ``positions_vx`` may be one (n, 3) array or a list of them (concatenated in order); the
    work is done one axis at a time so that memory stays a few bytes per point.
    """
    parts = positions_vx if isinstance(positions_vx, list) else [positions_vx]
    key = np.zeros(sum(len(p) for p in parts), dtype=np.int64)
    for axis in range(3):
        scale = voxel_resolution[axis] / base_resolution[axis]
        shift = 20 - 10 * axis
        start = 0
        for p in parts:  # part by part: one float64 column of one part at a time
            col = _column(p, axis)
            coord = np.floor((col * scale - chunk_offset_vx[axis]) / chunk_size[axis])
            del col
            coord = coord.astype(np.int64)
            np.clip(coord, 0, 1023, out=coord)
            key[start:start + coord.size] |= coord << shift
            start += coord.size
            del coord
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_key)) + 1]
    del sorted_key
    counts = np.diff(np.r_[starts, key.size])
    # a random per-chunk base keeps counters realistic (< ~7e5) without revealing order
    chunk_base = rng.integers(1, 400_000, size=starts.size)
    k = np.empty(key.size, dtype=np.int64)
    base = np.repeat(chunk_base - starts, counts)
    base += np.arange(key.size)
    k[order] = base
    del order, base
    if k.max(initial=0) >= 1 << 26:
        raise ValueError("too many points in one chunk for the supervoxel counter")
    # the id assembled in place (the chunk's three 10-bit fields, then the layer bit)
    # rather than as one expression of five full-size temporaries: same values
    k |= np.int64(SV_LAYER)
    for field, shift in ((20, 46), (10, 36), (0, 26)):
        part = key >> field
        part &= 1023
        part <<= shift
        k |= part
        del part
    return k


class ScaledPoints:
    """Points ``vx * factor`` (a per-axis factor), computed one axis at a time when read by
    :func:`supervoxel_ids`, so that a caller with int32 points in one voxel grid need not
    hold a float64 copy in another. ``vx[:, a] * factor[a]`` is the same float64 product
    element by element as ``(vx * factor)[:, a]``, so the ids are the same."""

    def __init__(self, vx: np.ndarray, factor) -> None:
        self.vx = vx
        self.factor = np.asarray(factor, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.vx)

    def column(self, axis: int) -> np.ndarray:
        return self.vx[:, axis] * self.factor[axis]

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """The scaled points at rows ``idx`` ((len(idx), 3) float64)."""
        return self.vx[idx] * self.factor


def _column(p, axis: int) -> np.ndarray:
    if isinstance(p, ScaledPoints):
        return p.column(axis)
    return np.asarray(p)[:, axis]


def sparse_sorted_ids(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """``n`` unique increasing int64 ids spread over ``[low, high)`` (e.g. nucleus, synapse ids)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    span = high - low
    if n > span:
        raise ValueError(f"cannot draw {n} unique ids from a range of {span}")
    gaps = rng.exponential(1.0, size=n + 1)
    cum = np.cumsum(gaps)
    ids = low + np.floor(cum[:-1] / cum[-1] * (span - n)).astype(np.int64) + np.arange(n)
    return ids.astype(np.int64)
