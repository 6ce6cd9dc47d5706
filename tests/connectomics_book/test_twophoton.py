"""connectomics_book.twophoton: trial alignment, tuning curves, selectivity and reliability.

The first tests feed hand-made arrays whose answers are known in closed form; the last ones
write a small V1DD-layout session (one column/volume, planted tuning) and read it back with
``pynwb`` exactly as the pages do, checking that the planted preferences are recovered.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pynwb
import pytest

from connectomics_book import twophoton as P
from offline_cave.contract.params import V1DD_PLANE_DEPTHS_UM
from offline_cave.generator.twophoton import sessions as S

DIRECTIONS = np.arange(0.0, 360.0, 30.0)


# ----------------------------------------------------------------------------- alignment
def test_interval_means_averages_samples_in_half_open_intervals():
    times = np.arange(10.0)  # 0 .. 9 s
    values = np.column_stack([times, 2 * times])
    means = P.interval_means(times, values, [0.0, 2.5, 8.0], [2.0, 5.0, 20.0])
    np.testing.assert_allclose(means, [[0.5, 1.0], [3.5, 7.0], [8.5, 17.0]])


def test_interval_means_skips_nan_and_flags_empty_intervals():
    times = np.arange(6.0)
    values = np.array([1.0, np.nan, 3.0, 4.0, 5.0, 6.0])
    means = P.interval_means(times, values, [0.0, 4.5, 30.0], [3.0, 4.9, 31.0])
    assert means[0] == pytest.approx(2.0)  # (1 + 3) / 2, the NaN left out
    assert np.isnan(means[1]) and np.isnan(means[2])  # no samples inside


def test_align_to_onsets_cuts_fixed_windows_and_pads_the_end():
    timestamps = np.arange(0.0, 20.0, 0.5)  # 2 Hz
    traces = np.column_stack([timestamps, -timestamps])
    relative, aligned = P.align_to_onsets(timestamps, traces, [2.0, 19.5], window_s=(-1.0, 1.0))
    np.testing.assert_allclose(relative, [-1.0, -0.5, 0.0, 0.5])
    assert aligned.shape == (2, 4, 2)
    np.testing.assert_allclose(aligned[0, :, 0], [1.0, 1.5, 2.0, 2.5])
    np.testing.assert_allclose(aligned[0, :, 1], [-1.0, -1.5, -2.0, -2.5])
    np.testing.assert_allclose(aligned[1, :3, 0], [18.5, 19.0, 19.5])
    assert np.isnan(aligned[1, 3, 0])  # 19.5 s is the last frame: one frame short


def test_trial_responses_subtracts_the_baseline():
    timestamps = np.arange(0.0, 30.0, 0.25)
    trace = np.where((timestamps >= 10) & (timestamps < 12), 5.0, 1.0)[:, None]
    with_baseline = P.trial_responses(timestamps, trace, [10.0, 20.0])
    np.testing.assert_allclose(with_baseline[:, 0], [4.0, 0.0])
    raw = P.trial_responses(timestamps, trace, [10.0], baseline_s=None)
    assert raw[0, 0] == pytest.approx(5.0)


# ----------------------------------------------------------------------------- tuning
def test_trial_matrix_groups_by_label_and_pads_missing_repeats():
    responses = np.array([[1.0], [2.0], [3.0], [4.0], [5.0]])
    levels, matrix = P.trial_matrix(responses, [90, 0, 90, 0, 90])
    np.testing.assert_array_equal(levels, [0, 90])
    assert matrix.shape == (2, 3, 1)
    np.testing.assert_allclose(matrix[0, :2, 0], [2.0, 4.0])
    assert np.isnan(matrix[0, 2, 0])
    np.testing.assert_allclose(matrix[1, :, 0], [1.0, 3.0, 5.0])
    mean, sem = P.tuning_curves(matrix)
    np.testing.assert_allclose(mean, [[3.0, 3.0]])
    np.testing.assert_allclose(sem, [[np.std([2, 4], ddof=1) / np.sqrt(2), 2.0 / np.sqrt(3)]])


def test_vector_sum_finds_the_planted_orientation_and_direction():
    theta = np.deg2rad(DIRECTIONS)
    orientation_tuned = np.cos(theta - np.deg2rad(40.0)) ** 2  # both directions alike
    one_direction = (DIRECTIONS == 120.0).astype(float)
    flat = np.ones_like(DIRECTIONS)
    result = P.vector_sum(np.stack([orientation_tuned, one_direction, flat]), DIRECTIONS)
    assert result.loc[0, "pref_ori_deg"] == pytest.approx(40.0, abs=1e-6)
    assert result.loc[0, "gdsi"] == pytest.approx(0.0, abs=1e-9)
    assert result.loc[1, ["gosi", "gdsi"]].tolist() == pytest.approx([1.0, 1.0])
    assert result.loc[1, "pref_dir_deg"] == pytest.approx(120.0)
    assert result.loc[1, "pref_ori_deg"] == pytest.approx(120.0)
    assert result.loc[2, ["gosi", "gdsi"]].tolist() == pytest.approx([0.0, 0.0], abs=1e-9)


def test_vector_sum_ignores_negative_responses_and_flags_silent_cells():
    curve = np.where(DIRECTIONS == 60.0, 2.0, -1.0)
    result = P.vector_sum(np.stack([curve, -np.ones_like(DIRECTIONS)]), DIRECTIONS)
    assert result.loc[0, "gosi"] == pytest.approx(1.0)
    assert result.loc[1, ["gosi", "gdsi"]].isna().all()


def test_osi_dsi_from_the_peak():
    curve = np.zeros(12)
    curve[[1, 7]] = [4.0, 2.0]  # peak at 30 deg, null (210 deg) half as strong
    curve[[4, 10]] = [1.0, 1.0]  # orthogonal (120 and 300 deg)
    result = P.osi_dsi(curve, DIRECTIONS)
    assert result.loc[0, "peak_dir_deg"] == 30.0
    assert result.loc[0, "osi"] == pytest.approx((4 - 1) / (4 + 1))
    assert result.loc[0, "dsi"] == pytest.approx((4 - 2) / (4 + 2))
    with pytest.raises(ValueError, match="evenly spaced"):
        P.osi_dsi(np.ones(5), [0, 10, 50, 90, 200])


def test_reliability_is_one_for_repeated_tuning_and_near_zero_for_noise():
    rng = np.random.default_rng(0)
    curve = np.cos(np.deg2rad(DIRECTIONS)) ** 2
    repeated = np.repeat(curve[:, None, None], 8, axis=1)  # (12, 8, 1)
    noise = rng.normal(size=(12, 8, 200))
    values = P.reliability(np.concatenate([repeated, noise], axis=2))
    assert values[0] == pytest.approx(1.0)
    assert abs(np.mean(values[1:])) < 0.03  # 200 noise ROIs: mean of 28 pair correlations each
    shuffled = P.shuffled_reliability(
        np.repeat(curve, 8)[:, None] + 0.01 * rng.normal(size=(96, 1)),
        np.repeat(DIRECTIONS, 8),
        n_shuffles=10,
    )
    assert shuffled.shape == (10, 1) and np.all(shuffled < 0.5)


def test_bootstrap_tuning_resamples_within_conditions():
    rng = np.random.default_rng(1)
    matrix = rng.normal(loc=np.arange(12.0)[:, None, None], scale=1.0, size=(12, 16, 3))
    boot = P.bootstrap_tuning(matrix, n_boot=500, seed=2)
    assert boot.shape == (500, 3, 12)
    np.testing.assert_allclose(boot.mean(axis=0), matrix.mean(axis=1).T, atol=0.15)
    # the bootstrap spread of a mean approaches the standard error
    sem = matrix.std(axis=1, ddof=1).T / 4.0
    np.testing.assert_allclose(boot.std(axis=0), sem, rtol=0.25)
    np.testing.assert_array_equal(boot, P.bootstrap_tuning(matrix, n_boot=500, seed=2))


def test_orientation_difference_wraps_at_180_degrees():
    np.testing.assert_allclose(
        P.orientation_difference([10, 0, 30, 350], [170, 90, 30, 10]), [20, 90, 0, 20]
    )


# ----------------------------------------------------------------------------- a session
@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One column-2, volume-3 session with 25 ROIs per plane, read back with pynwb."""
    imaged = S.make_imaged_cells(np.random.default_rng(11), sessions=[(2, 3)], rois_per_plane=25)
    imaged["reliability"] = 0.9  # dependable responses, so recovery can be tested tightly
    out = tmp_path_factory.mktemp("course_physiology") / S.SESSIONS_SUBDIR
    (path,) = S.write_sessions(out, imaged, seed=3)
    nwb = pynwb.read_nwb(str(path))
    yield nwb, imaged
    nwb.get_read_io().close()


def test_planes_and_traces_follow_the_v1dd_layout(session):
    nwb, imaged = session
    assert P.plane_names(nwb) == [f"plane-{k}" for k in range(6)]
    planes = P.plane_table(nwb)
    assert planes["depth_um"].tolist() == [float(d) for d in V1DD_PLANE_DEPTHS_UM[3]]
    assert planes["n_rois"].tolist() == [25] * 6
    assert set(planes["rate_hz"]) == {6.0}
    timestamps, traces, roi_df = P.read_traces(nwb, 2, kind="events")
    assert traces.shape == (timestamps.size, 25)
    assert roi_df[list(P.ROI_KEYS)].drop_duplicates().shape[0] == 25
    assert set(roi_df["plane"]) == {2} and roi_df["roi"].tolist() == list(range(25))


def test_grating_tuning_recovers_the_planted_orientations(session):
    nwb, imaged = session
    tuning = P.grating_tuning(nwb)
    assert len(tuning) == len(imaged)
    merged = tuning.merge(imaged, on=list(P.ROI_KEYS))
    assert (merged["depth_um_x"] - merged["depth_um_y"]).abs().max() <= 6.0  # planes vs somata
    strong = merged[merged["reliable"] & (merged["osi_y"] > 0.5)]
    assert len(strong) >= 20
    error = P.orientation_difference(
        strong["pref_ori_deg"], np.rad2deg(strong["pref_dir_rad"]) % 180.0
    )
    assert np.median(error) < 15.0  # unrelated orientations would give 45
    # gOSI follows the planted OSI across ROIs
    assert np.corrcoef(merged["gosi"], merged["osi_y"])[0, 1] > 0.5


def test_grating_responses_explains_a_missing_block(session):
    nwb, _ = session
    trial_df, roi_df, responses = P.grating_responses(nwb, P.GRATINGS_WINDOWED)
    assert responses.shape == (len(trial_df), len(roi_df))
    assert isinstance(roi_df, pd.DataFrame) and "depth_um" in roi_df
    with pytest.raises(ValueError, match="drifting_gratings_full"):
        P.grating_responses(nwb, "static_gratings")
