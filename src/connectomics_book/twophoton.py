"""Two-photon physiology of the V1 Deep Dive: planes, trial alignment, tuning and selectivity.

The *V1DD physiology* pages build each step once in the open; the functions below are those
steps, so later pages (running modulation, surround suppression, the EM join) compute tuning
the same way. Everything works on what ``pynwb`` returns for a V1DD session file, real or not:
``processing['plane-N']`` modules with the RoiResponseSeries ``dff`` (%) and ``events`` (a.u.),
a ``roi_table`` keyed by (column, volume, plane, roi), ``imaging_planes['plane-N'].location``
such as ``"242 um"``, and ``intervals['stimulus_table']`` with one row per presentation.

Units and conventions: times in s on the session clock; depths in µm below the pia;
directions in degrees counter-clockwise from rightward drift (0° = drifting rightward),
orientations in [0°, 180°). Arrays of trial responses are (trials, ROIs); tuning curves are
(ROIs, directions); trial matrices are (directions, repeats, ROIs), NaN where a direction
has fewer repeats than the most repeated one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Name of the full-field and the windowed drifting-grating blocks in ``stim_name``.
GRATINGS_FULL = "drifting_gratings_full"
GRATINGS_WINDOWED = "drifting_gratings_windowed"
#: Response window after grating onset (s): the 2 s the grating drifts.
RESPONSE_WINDOW_S = (0.0, 2.0)
#: Baseline window before onset (s), inside the 1 s of grey between gratings.
BASELINE_WINDOW_S = (-0.5, 0.0)
#: Keys of a ROI, shared by the NWB ``roi_table`` and ``functional_coregistration_manual_2``.
ROI_KEYS = ("column", "volume", "plane", "roi")

_PLANE = re.compile(r"^plane-(\d+)$")


# ----------------------------------------------------------------------------- the file
def plane_names(nwb) -> list[str]:
    """Names of the imaging-plane processing modules (``'plane-0'`` ...), in plane order."""
    names = [name for name in nwb.processing if _PLANE.match(name)]
    return sorted(names, key=lambda name: int(_PLANE.match(name).group(1)))


def plane_depth_um(nwb, plane: str | int) -> float:
    """Depth (µm below the pia) of an imaging plane, from its ``location`` (``"242 um"``).

    ``plane`` is a module name (``'plane-3'``) or a plane number. Falls back to the number in
    the plane's description ("... depth 242 microns") when the location holds none.
    """
    name = plane if isinstance(plane, str) else f"plane-{int(plane)}"
    imaging_plane = nwb.imaging_planes[name]
    for text in (imaging_plane.location, imaging_plane.description):
        match = re.search(r"(\d+(?:\.\d+)?)\s*(?:um|µm|microns?)", text or "")
        if match:
            return float(match.group(1))
    raise ValueError(
        f"no depth in the location {imaging_plane.location!r} or description "
        f"{imaging_plane.description!r} of imaging plane {name!r}"
    )


def plane_table(nwb) -> pd.DataFrame:
    """One row per imaging plane: ``plane``, ``depth_um``, ``n_rois``, ``n_frames``, ``rate_hz``."""
    rows = []
    for name in plane_names(nwb):
        dff = nwb.processing[name]["dff"]
        n_frames, n_rois = dff.data.shape
        rows.append(
            {
                "plane": int(_PLANE.match(name).group(1)),
                "depth_um": plane_depth_um(nwb, name),
                "n_rois": int(n_rois),
                "n_frames": int(n_frames),
                "rate_hz": float(nwb.imaging_planes[name].imaging_rate),
            }
        )
    return pd.DataFrame(rows)


def read_traces(
    nwb, plane: str | int, kind: str = "dff"
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Timestamps (s), traces (frames x ROIs) and ROI table of one plane, read into memory.

    ``kind`` is a RoiResponseSeries of the plane: ``"dff"`` (%) or ``"events"`` (a.u.).
    The ROI table holds the plane's ``roi_table`` columns without the pixel masks, in the
    order of the trace columns.
    """
    name = plane if isinstance(plane, str) else f"plane-{int(plane)}"
    series = nwb.processing[name][kind]
    timestamps = np.asarray(series.timestamps[:], dtype=float)
    traces = np.asarray(series.data[:], dtype=np.float32)
    table = series.rois.table
    columns = [c for c in table.colnames if c != "pixel_mask"]
    roi_df = table.to_dataframe(exclude={"pixel_mask"})[columns].reset_index(drop=True)
    roi_df = roi_df.iloc[np.asarray(series.rois.data[:], dtype=int)].reset_index(drop=True)
    return timestamps, traces, roi_df


# ----------------------------------------------------------------------------- alignment
def interval_means(
    times: np.ndarray, values: np.ndarray, starts: Sequence[float], stops: Sequence[float]
) -> np.ndarray:
    """Mean of ``values`` over the samples with ``start <= time < stop``, per interval.

    ``times`` (n,) must be increasing; ``values`` is (n,) or (n, k). Returns (intervals,) or
    (intervals, k); NaN for an interval without samples. NaN samples (blinks in the pupil
    trace) are left out of the means.
    """
    times = np.asarray(times, dtype=float)
    values = np.asarray(values, dtype=float)
    flat = values.ndim == 1
    values = values[:, None] if flat else values
    valid = np.isfinite(values)
    sums = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(np.where(valid, values, 0), 0)])
    counts = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(valid, 0)])
    first = np.searchsorted(times, np.asarray(starts, dtype=float), side="left")
    last = np.searchsorted(times, np.asarray(stops, dtype=float), side="left")
    n = counts[last] - counts[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums[last] - sums[first]) / n
    means[n == 0] = np.nan
    return means[:, 0] if flat else means


def align_to_onsets(
    timestamps: np.ndarray,
    traces: np.ndarray,
    onsets: Sequence[float],
    window_s: tuple[float, float] = (-1.0, 3.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a fixed window of frames around every onset: (trials, frames, ROIs).

    Frames are taken from the first frame at or after ``onset + window_s[0]``, as many as the
    window holds at the plane's frame rate; the returned relative times (s) are nominal (each
    trial's true offsets differ by less than one frame). Windows running off either end of
    the recording are NaN-padded.
    """
    timestamps = np.asarray(timestamps, dtype=float)
    traces = np.asarray(traces)
    traces = traces[:, None] if traces.ndim == 1 else traces
    frame_s = float(np.median(np.diff(timestamps)))
    n_frames = int(round((window_s[1] - window_s[0]) / frame_s))
    first = np.searchsorted(timestamps, np.asarray(onsets, dtype=float) + window_s[0])
    index = first[:, None] + np.arange(n_frames)[None, :]
    inside = index < len(timestamps)
    aligned = traces[np.clip(index, 0, len(timestamps) - 1)].astype(float)
    aligned[~inside] = np.nan
    return window_s[0] + frame_s * np.arange(n_frames), aligned


def trial_responses(
    timestamps: np.ndarray,
    traces: np.ndarray,
    onsets: Sequence[float],
    window_s: tuple[float, float] = RESPONSE_WINDOW_S,
    baseline_s: tuple[float, float] | None = BASELINE_WINDOW_S,
) -> np.ndarray:
    """Response of every ROI to every trial: (trials, ROIs).

    The mean of the trace over ``onset + window_s`` minus, unless ``baseline_s`` is None, its
    mean over ``onset + baseline_s``. With dF/F in % the response is in %.
    """
    onsets = np.asarray(onsets, dtype=float)
    response = interval_means(timestamps, traces, onsets + window_s[0], onsets + window_s[1])
    if baseline_s is not None:
        response = response - interval_means(
            timestamps, traces, onsets + baseline_s[0], onsets + baseline_s[1]
        )
    return response


# ----------------------------------------------------------------------------- tuning
def trial_matrix(responses: np.ndarray, labels: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Group trial responses (trials, ROIs) by condition: levels and (levels, repeats, ROIs).

    ``labels`` names the condition of each trial (e.g. its direction in degrees). Repeats
    keep the order of the trials; a condition with fewer repeats is NaN-padded.
    """
    responses = np.asarray(responses, dtype=float)
    labels = np.asarray(labels)
    levels, inverse = np.unique(labels, return_inverse=True)
    n_repeats = np.bincount(inverse, minlength=levels.size).max()
    matrix = np.full((levels.size, n_repeats, responses.shape[1]), np.nan)
    for k in range(levels.size):
        rows = responses[inverse == k]
        matrix[k, : len(rows)] = rows
    return levels, matrix


def tuning_curves(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the mean per condition: two (ROIs, conditions) arrays."""
    n = np.sum(np.isfinite(matrix), axis=1)
    mean = np.nanmean(matrix, axis=1)
    sem = np.nanstd(matrix, axis=1, ddof=1) / np.sqrt(n)
    return mean.T, sem.T


def bootstrap_tuning(matrix: np.ndarray, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Tuning curves of ``n_boot`` bootstrap resamples: (n_boot, ROIs, conditions).

    Each resample draws, for every condition, as many trials as it has, with replacement,
    and averages them (the same draw for all ROIs, as they were recorded together). Take
    percentiles over axis 0 for confidence intervals, or feed the resampled curves to
    :func:`vector_sum` to see how uncertain a preferred orientation is.
    """
    rng = np.random.default_rng(seed)
    n_conditions, _, n_rois = matrix.shape
    out = np.empty((n_boot, n_rois, n_conditions))
    for k in range(n_conditions):
        trials = matrix[k][np.all(np.isfinite(matrix[k]), axis=1)]
        draws = rng.integers(0, len(trials), size=(n_boot, len(trials)))
        out[:, :, k] = trials[draws].mean(axis=1)
    return out


def vector_sum(curves: np.ndarray, directions_deg: Sequence[float]) -> pd.DataFrame:
    """Preferred direction and orientation by vector sum, with global OSI and DSI.

    ``curves`` is (..., directions); negative responses are set to 0 first. With r the
    responses and θ the directions, gOSI = |Σ r e^{2iθ}| / Σ r and gDSI = |Σ r e^{iθ}| / Σ r
    (0 untuned .. 1 responding to one orientation / direction only); the preferred
    orientation is half the angle of Σ r e^{2iθ}, in [0°, 180°), the preferred direction the
    angle of Σ r e^{iθ}, in [0°, 360°). Returns a frame with ``pref_dir_deg``,
    ``pref_ori_deg``, ``gosi`` and ``gdsi`` (NaN for an all-zero curve), one row per curve.
    """
    r = np.clip(np.asarray(curves, dtype=float), 0.0, None)
    theta = np.deg2rad(np.asarray(directions_deg, dtype=float))
    total = r.sum(axis=-1)
    z1 = (r * np.exp(1j * theta)).sum(axis=-1)
    z2 = (r * np.exp(2j * theta)).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        gosi = np.where(total > 0, np.abs(z2) / total, np.nan)
        gdsi = np.where(total > 0, np.abs(z1) / total, np.nan)
    return pd.DataFrame(
        {
            "pref_dir_deg": np.rad2deg(np.angle(z1)).ravel() % 360.0,
            "pref_ori_deg": (np.rad2deg(np.angle(z2)) / 2.0).ravel() % 180.0,
            "gosi": np.ravel(gosi),
            "gdsi": np.ravel(gdsi),
        }
    )


def osi_dsi(curves: np.ndarray, directions_deg: Sequence[float]) -> pd.DataFrame:
    """Classic OSI and DSI from the peak of each tuning curve (..., directions).

    R_pref is the largest mean response, R_orth the mean of the two directions 90° away,
    R_null the direction 180° away (directions must be evenly spaced with a divisor of 90°).
    OSI = (R_pref - R_orth) / (R_pref + R_orth), DSI = (R_pref - R_null) / (R_pref + R_null),
    with negative responses set to 0, so both lie in [0, 1]. Returns ``peak_dir_deg``,
    ``osi`` and ``dsi``.
    """
    directions = np.asarray(directions_deg, dtype=float)
    step = float(np.median(np.diff(directions)))
    if not np.isclose(90.0 % step, 0.0) or not np.allclose(np.diff(directions), step):
        raise ValueError(f"directions must be evenly spaced by a divisor of 90°, got {directions}")
    r = np.clip(np.asarray(curves, dtype=float), 0.0, None).reshape(-1, directions.size)
    n, quarter = directions.size, int(round(90.0 / step))
    peak = np.argmax(r, axis=1)
    rows = np.arange(len(r))
    pref = r[rows, peak]
    orth = (r[rows, (peak + quarter) % n] + r[rows, (peak - quarter) % n]) / 2.0
    null = r[rows, (peak + 2 * quarter) % n]
    with np.errstate(invalid="ignore", divide="ignore"):
        osi = np.where(pref + orth > 0, (pref - orth) / (pref + orth), np.nan)
        dsi = np.where(pref + null > 0, (pref - null) / (pref + null), np.nan)
    return pd.DataFrame({"peak_dir_deg": directions[peak], "osi": osi, "dsi": dsi})


def reliability(matrix: np.ndarray) -> np.ndarray:
    """Trial-to-trial reliability of every ROI: mean correlation between repeats, (ROIs,).

    Every repeat k gives a tuning curve (the k-th trial of every condition); the reliability
    is the mean Pearson correlation over all pairs of those curves -- near 1 when each repeat
    reproduces the tuning, near 0 for responses unrelated to the stimulus. Only repeats
    present for every condition are used.
    """
    complete = np.all(np.isfinite(matrix), axis=(0, 2))
    curves = np.transpose(matrix[:, complete, :], (2, 1, 0))  # (ROIs, repeats, conditions)
    centred = curves - curves.mean(axis=2, keepdims=True)
    norm = np.sqrt((centred**2).sum(axis=2, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = np.where(norm > 0, centred / norm, np.nan)
    corr = np.einsum("rik,rjk->rij", unit, unit)
    n = corr.shape[1]
    upper = np.triu_indices(n, k=1)
    return np.nanmean(corr[:, upper[0], upper[1]], axis=1) if n > 1 else np.full(len(corr), np.nan)


def orientation_difference(a_deg: np.ndarray, b_deg: np.ndarray) -> np.ndarray:
    """Absolute difference between orientations (degrees, period 180°), in [0°, 90°]."""
    d = np.abs(np.asarray(a_deg, dtype=float) - np.asarray(b_deg, dtype=float)) % 180.0
    return np.minimum(d, 180.0 - d)


def shuffled_reliability(
    responses: np.ndarray, labels: Sequence[float], n_shuffles: int = 20, seed: int = 0
) -> np.ndarray:
    """Reliability after shuffling the condition labels of the trials: (n_shuffles, ROIs).

    Shuffling keeps every response but destroys any tuning, so these values are what
    :func:`reliability` gives by chance; a high percentile of them (pooled over ROIs) is a
    threshold for calling a ROI reliable.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    return np.stack(
        [
            reliability(trial_matrix(responses, rng.permutation(labels))[1])
            for _ in range(n_shuffles)
        ]
    )


# ----------------------------------------------------------------------------- one call
def grating_responses(
    nwb,
    stim_name: str = GRATINGS_FULL,
    kind: str = "dff",
    window_s: tuple[float, float] = RESPONSE_WINDOW_S,
    baseline_s: tuple[float, float] | None = BASELINE_WINDOW_S,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Trial responses of every ROI of a session to one block of drifting gratings.

    Returns the block's rows of ``intervals['stimulus_table']`` (``trial_df``, re-indexed
    0..n-1), one row per ROI of all planes (``roi_df``: ``column, volume, plane, roi`` and
    ``depth_um``) and the responses (trials, ROIs) of :func:`trial_responses`, in the unit
    of ``kind`` (% for dF/F). Raises ``ValueError`` if the session shows no ``stim_name``.
    """
    stimulus_df = nwb.intervals["stimulus_table"].to_dataframe()
    trial_df = stimulus_df[stimulus_df["stim_name"] == stim_name].reset_index(drop=True)
    if trial_df.empty:
        names = sorted(stimulus_df["stim_name"].unique())
        raise ValueError(f"no {stim_name!r} presentations in this session; it shows {names}")
    roi_frames, response_blocks = [], []
    for name in plane_names(nwb):
        timestamps, traces, roi_df = read_traces(nwb, name, kind)
        response_blocks.append(
            trial_responses(timestamps, traces, trial_df["start_time"], window_s, baseline_s)
        )
        keys = roi_df[[c for c in ROI_KEYS if c in roi_df]].copy()
        keys["depth_um"] = plane_depth_um(nwb, name)
        roi_frames.append(keys)
    return (
        trial_df,
        pd.concat(roi_frames, ignore_index=True),
        np.concatenate(response_blocks, axis=1),
    )


def grating_tuning(
    nwb,
    stim_name: str = GRATINGS_FULL,
    kind: str = "dff",
    window_s: tuple[float, float] = RESPONSE_WINDOW_S,
    baseline_s: tuple[float, float] | None = BASELINE_WINDOW_S,
    n_shuffles: int = 20,
    seed: int = 0,
) -> pd.DataFrame:
    """Direction tuning of every ROI of a session to one block of drifting gratings.

    Trial responses from :func:`grating_responses`, pooled over spatial frequencies and
    grouped by direction. Returns one row per ROI with its keys (``column, volume, plane,
    roi``), ``depth_um``, ``peak_response`` (largest mean response, in the unit of ``kind``:
    % for dF/F), the :func:`vector_sum` and :func:`osi_dsi` measures, ``reliability``,
    ``reliability_threshold`` (95th percentile of the plane's :func:`shuffled_reliability`
    with ``n_shuffles`` shuffles) and ``reliable`` (reliability above that threshold).
    """
    trial_df, roi_df, responses = grating_responses(nwb, stim_name, kind, window_s, baseline_s)
    directions, matrix = trial_matrix(responses, trial_df["direction"])
    mean, _ = tuning_curves(matrix)
    out = roi_df.copy()
    out["peak_response"] = mean.max(axis=1)
    out = pd.concat(
        [out, vector_sum(mean, directions), osi_dsi(mean, directions).drop(columns="peak_dir_deg")],
        axis=1,
    )
    out["reliability"] = reliability(matrix)
    out["reliability_threshold"] = np.nan
    for _, rows in out.groupby("plane" if "plane" in out else "depth_um").groups.items():
        rows = np.asarray(rows)
        null = shuffled_reliability(responses[:, rows], trial_df["direction"], n_shuffles, seed)
        out.loc[rows, "reliability_threshold"] = np.nanpercentile(null, 95)
    out["reliable"] = out["reliability"] > out["reliability_threshold"]
    return out
