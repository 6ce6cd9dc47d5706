"""Deterministic integer hashes of ids, for values that must not depend on draw order.

One splitmix64 (Steele, Lea and Flood 2014; Vigna's finaliser constants) for every generator
module: ``unit_hash`` gives per-id uniforms, ``pair_normal`` per-pair normals, ``splitmix64``
raw 64-bit hashes. ``multiplicative_bucket`` is the cheaper Knuth multiplicative hash used for
a few per-id labels. All functions work on numpy arrays with wrapping uint64 arithmetic.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # splitmix64's increment (2^64 / golden ratio)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def mix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (no increment) on uint64 arrays."""
    with np.errstate(over="ignore"):
        z = np.asarray(z, dtype=np.uint64)
        z = (z ^ (z >> np.uint64(30))) * _M2
        z = (z ^ (z >> np.uint64(27))) * _M3
        return z ^ (z >> np.uint64(31))


def splitmix64(x: np.ndarray) -> np.ndarray:
    """One splitmix64 step: ``mix64(x + GOLDEN)`` on uint64 arrays."""
    with np.errstate(over="ignore"):
        return mix64(np.asarray(x, dtype=np.uint64) + GOLDEN)


def to_unit(h: np.ndarray) -> np.ndarray:
    """The top 53 bits of uint64 hashes as floats in [0, 1)."""
    return (np.asarray(h, dtype=np.uint64) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def to_open_unit(h: np.ndarray) -> np.ndarray:
    """The top 53 bits of uint64 hashes as floats in (0, 1) (bin centres: safe for ``ndtri``)."""
    return ((np.asarray(h, dtype=np.uint64) >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def unit_hash(ids: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic uniforms in [0, 1) from integer ids; ``salt`` picks an independent stream."""
    with np.errstate(over="ignore"):
        z = np.asarray(ids, dtype=np.uint64) + GOLDEN * np.uint64(salt + 1)
    return to_unit(mix64(z))


def pair_hash(a: np.ndarray, b: np.ndarray, salt: int) -> np.ndarray:
    """A uint64 hash of the pair ``(a, b)`` under ``salt`` (order matters)."""
    with np.errstate(over="ignore"):
        inner = splitmix64(np.asarray(a).astype(np.uint64) ^ np.uint64(salt))
        return splitmix64(inner ^ np.asarray(b).astype(np.uint64))


def pair_normal(a: np.ndarray, b: np.ndarray, salt: int) -> np.ndarray:
    """A standard-normal number that is a deterministic function of ``(a, b, salt)``."""
    return ndtri(to_open_unit(pair_hash(a, b, salt)))


def multiplicative_bucket(ids: np.ndarray, multiplier: int, buckets: int,
                          shift: int = 0) -> np.ndarray:
    """Knuth's multiplicative hash ``((ids * multiplier) >> shift) % buckets`` in int64.

    Exact only while ``ids * multiplier`` fits in int64 (ids below ~4e9 for 32-bit multipliers).
    """
    return ((np.asarray(ids, dtype=np.int64) * multiplier) >> shift) % buckets
