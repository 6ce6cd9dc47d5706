"""MICrONS functional tables: angle conventions, tuning similarity, cell-level bootstrap.

The two families of MICrONS functional property tables measure angles differently
(datasets-facts §2.6, and the column descriptions of the MICrONS tutorial's annotation-table
page):

* ``functional_properties_v3_bcm`` (deprecated): radians, ``pref_ori`` in [0, pi) and
  ``pref_dir`` in [0, 2 pi); zero is a *horizontal bar moving upward* and angles grow
  *clockwise*.
* ``digital_twin_properties_bcm_coreg_*``: degrees, ``pref_ori`` in [0, 180) and ``pref_dir``
  in [0, 360); zero is a *vertical bar moving right* and angles grow *counter-clockwise*.

Both describe the direction of motion of a bar on the screen. Seen as the mathematical angle
of the motion (0 = rightward, counter-clockwise), the digital-twin angle is that angle, and the
v3 angle is 90 degrees minus it; so ``twin = (90 - degrees(v3)) mod period``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Period (degrees) of an orientation and of a direction.
ORIENTATION_PERIOD_DEG, DIRECTION_PERIOD_DEG = 180.0, 360.0
#: gOSI above which a cell counts as orientation tuned (Ding et al. 2025; datasets-facts §3.9).
TUNED_GOSI = 0.25
#: The keys of a functional unit.
UNIT_KEYS = ("session", "scan_idx", "unit_id")


def v3_to_twin_degrees(angle_rad: np.ndarray | float,
                       period_deg: float = ORIENTATION_PERIOD_DEG) -> np.ndarray:
    """A ``functional_properties_v3_bcm`` angle (radians, 0 = horizontal bar moving up,
    clockwise) in the digital-twin convention (degrees, 0 = vertical bar moving right,
    counter-clockwise). ``period_deg`` is 180 for ``pref_ori`` and 360 for ``pref_dir``."""
    return (90.0 - np.degrees(np.asarray(angle_rad, dtype=float))) % period_deg


def twin_to_v3_radians(angle_deg: np.ndarray | float,
                       period_deg: float = ORIENTATION_PERIOD_DEG) -> np.ndarray:
    """The inverse of :func:`v3_to_twin_degrees`: digital-twin degrees to v3 radians."""
    return np.radians((90.0 - np.asarray(angle_deg, dtype=float)) % period_deg)


def motion_vector(direction_deg: np.ndarray | float) -> np.ndarray:
    """Unit vector(s) (x right, y up on the screen) of the motion of a bar whose digital-twin
    direction is ``direction_deg``; shape (..., 2)."""
    theta = np.radians(np.asarray(direction_deg, dtype=float))
    return np.stack([np.cos(theta), np.sin(theta)], axis=-1)


def angle_difference(a_deg: np.ndarray, b_deg: np.ndarray,
                     period_deg: float = ORIENTATION_PERIOD_DEG) -> np.ndarray:
    """Absolute circular difference (degrees) in [0, period / 2]."""
    d = np.abs(np.asarray(a_deg, dtype=float) - np.asarray(b_deg, dtype=float)) % period_deg
    return np.minimum(d, period_deg - d)


def orientation_similarity(a_deg: np.ndarray, b_deg: np.ndarray) -> np.ndarray:
    """cos(2 * difference of preferred orientation): 1 for the same, -1 for orthogonal."""
    return np.cos(np.radians(2.0 * angle_difference(a_deg, b_deg)))


def best_unit_per_cell(units: pd.DataFrame, cell: str = "pt_root_id",
                       score: str = "cc_abs") -> pd.DataFrame:
    """One row per cell: the unit with the highest ``score`` (a cell imaged in several scans
    has one row per unit; the best-predicted unit is the usual choice). Rows whose ``cell``
    is 0 (no segment at the nucleus) are dropped."""
    kept = units[units[cell] != 0]
    return (kept.sort_values(score, ascending=False, kind="stable")
            .drop_duplicates(cell).reset_index(drop=True))


def rate_ratio(pairs: pd.DataFrame, numerator: pd.Series | np.ndarray,
               denominator: pd.Series | np.ndarray, count: str, exposure: str | None = None,
               cluster: str = "pre_pt_root_id", n_boot: int = 2000, seed: int = 0,
               level: float = 0.95) -> tuple[float, float, float]:
    """Ratio of two rates and its bootstrap interval over clusters (presynaptic cells).

    The rate of a group of pairs is ``sum(count) / sum(exposure)`` (``exposure`` 1 per pair
    when None: then with a 0/1 ``count`` it is the connection probability); the ratio is the
    rate of the ``numerator`` pairs over that of the ``denominator`` pairs (boolean masks on
    ``pairs``). The interval resamples whole clusters with replacement, keeping all pairs of a
    drawn cluster, so pairs that share a presynaptic cell are not counted as independent.
    Returns (ratio, low, high); NaN where a group is empty.
    """
    num = np.asarray(numerator, dtype=bool)
    den = np.asarray(denominator, dtype=bool)
    counts = pairs[count].to_numpy(dtype=float)
    expo = np.ones(len(pairs)) if exposure is None else pairs[exposure].to_numpy(dtype=float)
    codes, uniques = pd.factorize(pairs[cluster])
    k = len(uniques)
    sums = np.stack([np.bincount(codes, weights=w, minlength=k)
                     for w in (counts * num, expo * num, counts * den, expo * den)], axis=1)

    def ratio(total: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (total[..., 0] / total[..., 1]) / (total[..., 2] / total[..., 3])

    estimate = float(ratio(sums.sum(axis=0)))
    if k == 0:
        return estimate, np.nan, np.nan
    rng = np.random.default_rng(seed)
    weights = np.stack([np.bincount(rng.integers(0, k, size=k), minlength=k)
                        for _ in range(n_boot)])
    boot = ratio(weights @ sums)
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(boot, [tail, 100 - tail])
    return estimate, float(low), float(high)


def bins_of(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Index of the bin (0 .. len(edges) - 2) each value falls in; -1 outside the edges."""
    values = np.asarray(values, dtype=float)
    index = np.digitize(values, edges) - 1
    return np.where((values >= edges[0]) & (values <= edges[-1]),
                    np.minimum(index, len(edges) - 2), -1)
