"""connectomics_book.functional: angle conventions, similarity, the cell-level bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from connectomics_book.functional import (
    angle_difference,
    best_unit_per_cell,
    bins_of,
    motion_vector,
    orientation_similarity,
    rate_ratio,
    twin_to_v3_radians,
    v3_to_twin_degrees,
)


@pytest.mark.parametrize(("v3_rad", "period", "twin_deg"), [
    (0.0, 360.0, 90.0),  # v3 zero: horizontal bar moving up = motion up = twin 90
    (np.pi / 2, 360.0, 0.0),  # v3 90 clockwise from up = moving right = twin 0
    (np.pi, 360.0, 270.0),  # moving down
    (3 * np.pi / 2, 360.0, 180.0),  # moving left
    (np.pi / 4, 180.0, 45.0),  # up-right motion: 45 both ways
    (0.1, 180.0, 90.0 - np.degrees(0.1)),
])
def test_v3_to_twin_follows_the_documented_conventions(v3_rad, period, twin_deg):
    assert v3_to_twin_degrees(v3_rad, period) == pytest.approx(twin_deg)


def test_conversion_round_trips_and_stays_in_range():
    rng = np.random.default_rng(0)
    ori = rng.uniform(0, np.pi, 1000)
    twin = v3_to_twin_degrees(ori)
    assert twin.min() >= 0 and twin.max() < 180
    back = twin_to_v3_radians(twin)
    assert np.allclose(np.cos(2 * back), np.cos(2 * ori))


def test_motion_vector_of_twin_zero_points_right_and_ninety_up():
    assert np.allclose(motion_vector([0.0, 90.0]), [[1, 0], [0, 1]], atol=1e-12)


def test_angle_difference_and_similarity():
    assert angle_difference(10, 170) == pytest.approx(20)
    assert angle_difference(10, 350, 360) == pytest.approx(20)
    assert angle_difference(0, 90) == pytest.approx(90)
    assert orientation_similarity(0, 90) == pytest.approx(-1)
    assert orientation_similarity(5, 185) == pytest.approx(1)


def test_best_unit_per_cell_keeps_the_highest_score_and_drops_root_zero():
    units = pd.DataFrame({"pt_root_id": [1, 1, 2, 0], "cc_abs": [0.2, 0.5, 0.3, 0.9],
                          "unit_id": [10, 11, 12, 13]})
    best = best_unit_per_cell(units).set_index("pt_root_id")
    assert best.loc[1, "unit_id"] == 11 and set(best.index) == {1, 2}


def test_rate_ratio_estimate_and_interval():
    rng = np.random.default_rng(1)
    n_pre, per_pre = 60, 200
    pre = np.repeat(np.arange(n_pre), per_pre)
    similar = rng.random(pre.size) < 0.5
    exposure = rng.uniform(1, 5, pre.size)
    # a presynaptic cell's own rate varies (a cluster effect); similar pairs have 1.5x
    cell_rate = rng.lognormal(0, 0.5, n_pre)[pre]
    counts = rng.poisson(0.05 * exposure * cell_rate * np.where(similar, 1.5, 1.0))
    pairs = pd.DataFrame({"pre_pt_root_id": pre, "n": counts, "len": exposure})
    ratio, low, high = rate_ratio(pairs, similar, ~similar, "n", "len", n_boot=500)
    assert low < ratio < high
    assert low < 1.5 < high
    assert 1.2 < ratio < 1.8
    # exposure None: per-pair rates
    r2, _, _ = rate_ratio(pairs, similar, ~similar, "n", None, n_boot=50)
    expected = counts[similar].mean() / counts[~similar].mean()
    assert r2 == pytest.approx(expected)


def test_rate_ratio_interval_is_wider_than_a_pairwise_bootstrap_with_clusters():
    rng = np.random.default_rng(2)
    pre = np.repeat(np.arange(30), 100)
    similar = np.repeat(rng.random(30) < 0.5, 100)  # similarity shared within a cluster
    counts = rng.poisson(rng.lognormal(0, 1.0, 30)[pre])
    pairs = pd.DataFrame({"pre_pt_root_id": pre, "n": counts, "pair": np.arange(pre.size)})
    _, lo_c, hi_c = rate_ratio(pairs, similar, ~similar, "n", n_boot=400)
    _, lo_p, hi_p = rate_ratio(pairs, similar, ~similar, "n", cluster="pair", n_boot=400)
    assert hi_c - lo_c > 2 * (hi_p - lo_p)


def test_bins_of():
    assert bins_of([0, 10, 29.9, 30, 31, -1], [0, 10, 20, 30]).tolist() == [0, 1, 2, 2, -1, -1]
