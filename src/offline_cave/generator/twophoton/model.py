"""Synthetic V1DD two-photon sessions: a response model and an NWB writer.

One session is one (column, volume) of the V1 Deep Dive: six planes 16 um apart imaged at 6 Hz
each (datasets-facts §4.1), written as one NWB file in the Zarr backend (a ``.nwb.zarr``
directory store, read with ``pynwb.read_nwb`` / ``hdmf_zarr.NWBZarrIO``) in the layout and
under the asset names of the public files (datasets-facts §4.1-4.2): ``processing['plane-N']`` with RoiResponseSeries ``dff`` (%) and ``events``
(a.u.), a ``roi_table`` keyed by (column, volume, plane, roi), projection images;
``processing['behavior']`` with ``running_speed`` and ``eye_tracking``; ``intervals['epochs']``
and ``intervals['stimulus_table']``; stimulus templates of the sparse noise and natural images.

Nothing here is real data. Every response is drawn from the model below; the latent tuning of
each ROI comes from the ``imaged`` frame the caller passes (see ``IMAGED_COLUMNS``), so tests
and pages can check that an analysis recovers what was planted.

Response model (per ROI, in inferred events per second)
-------------------------------------------------------
* rate = ``base_hz`` + evoked, evoked = ``amp_hz`` x stimulus drive x trial gain x running.
* gratings: direction tuning ``direction_tuning`` (two von Mises bumps at the preferred
  direction and its opposite plus an untuned offset, solved so that the noise-free tuning curve
  has exactly the latent ``osi`` = (R_pref - R_orth) / (R_pref + R_orth) and ``dsi`` =
  (R_pref - R_null) / (R_pref + R_null), both of the evoked rate); spatial frequency: the
  non-preferred SF scales the response by ``sf_ratio``.
* windowed gratings (30 deg window on the session's population receptive field): scaled by
  the overlap of the ROI's receptive field with the window (``window_gain``); full-field
  gratings: scaled by ``1 - surround_suppression``.
* locally sparse noise: Gaussian receptive field (azimuth/elevation from the ROI's lateral
  position, ~25 um per degree, *assumed*) with ON and OFF weights; natural images: a sparse
  gamma-distributed gain per (ROI, image).
* trial-to-trial gain ~ Gamma with CV 0.1 + 0.9 (1 - ``reliability``); during running
  (speed > 1 cm/s) the evoked part is multiplied by ``running_gain``.
* events: Poisson counts per frame; calcium: each event adds ``spike_dff`` % decaying with
  ``tau_s`` (GCaMP6s, 1-2 s), mild saturation, slow baseline drift and Gaussian noise
  (``noise_dff`` %, deeper planes noisier) give ``dff``; ``events`` are the counts as a
  deconvolution would report them: missed events, amplitude noise, one-frame jitter and rare
  false positives.

Units: times in s (session clock, 0 = ``session_start_time``), depths and positions in um,
visual angles in degrees, directions in degrees counter-clockwise from rightward drift (0 deg =
grating drifting rightward; the latent ``pref_dir_rad`` uses the same convention in radians).
Storage: ``dff`` is rounded to 1/16 %, ``events`` to 1/64 a.u. (far below the noise), so the
Blosc/zstd compressor of the Zarr chunks can shrink them; images are 128 x 128 pixels over a 400 um field of view.

This module writes files only; it knows nothing about HTTP or the server.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter, gaussian_filter1d
from scipy.signal import lfilter

from offline_cave.contract.params import V1DD_PLANE_DEPTHS_UM

if TYPE_CHECKING:
    from pynwb import NWBFile, ProcessingModule
    from pynwb.device import Device
    from pynwb.ophys import PlaneSegmentation

# ----------------------------------------------------------------------------- constants
SUBJECT_ID = "409828"  # the EM "golden mouse" (datasets-facts §1.5, §4.1)
SUBJECT_GENOTYPE = "Slc17a7-IRES2-Cre;Camk2a-tTA;Ai94"  # as written in the example file (§4.2)
SUBJECT_SEX = "M"
SUBJECT_SPECIES = "Mus musculus"
SUBJECT_DESCRIPTION = "Golden Mouse"
DATE_OF_BIRTH = dt.date(2018, 7, 3)
INSTITUTION = "Allen Institute"
KEYWORDS = ("V1", "2p", "visual coding", "multi-plane")
SESSION_DESCRIPTION = "V1 Deep Dive, Golden Mouse"
DEVICE_EQUIPMENT_ID = 722885523
# datasets-facts example session (column 2, volume 3): its real date, time and session id
EXAMPLE_SESSION = {(2, 3): (dt.datetime(2018, 11, 27, 12, 29, 5), "786071018")}
# the sample's processing time: its files' creation date and the "filtered" part of the asset
# names (the public assets' processing times are not documented here: *assumed*)
FILTERED_AT = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)

N_PLANES = 6
PLANE_SPACING_UM = 16.0
IMAGING_RATE_HZ = 6.0  # per plane (DeepScope 37 fps over 6 planes, datasets-facts §4.1)
RUNNING_RATE_HZ = 60.0  # datasets-facts §4.2: 209,040 samples in ~60 min, ~58 Hz
EYE_RATE_HZ = 30.0  # datasets-facts §4.2: ~30 Hz
FOV_UM = 400.0  # one V1DD column (datasets-facts §4.1)
IMAGE_PX = 128
DFF_QUANTUM = 1.0 / 16.0  # % -- storage resolution of dff
EVENT_QUANTUM = 1.0 / 64.0  # a.u.

# gratings (datasets-facts §4.3)
DIRECTIONS_DEG = np.arange(0.0, 360.0, 30.0)
SPATIAL_FREQUENCIES_CPD = (0.04, 0.08)
TEMPORAL_FREQUENCY_HZ = 1.0
GRATING_ON_S = 2.0
GRATING_GRAY_S = 1.0
GRATING_REPEATS = 8
WINDOW_DIAMETER_DEG = 30.0
# locally sparse noise: 9.3 deg spots at 3 Hz on an 8 x 14 grid (grid size *assumed*, as in
# the Allen Brain Observatory); monitor area the grid covers (*assumed*)
LSN_SPOT_DEG = 9.3
LSN_GRID = (8, 14)  # (elevation rows, azimuth columns)
LSN_AZIMUTH0_DEG = -10.0  # left edge of the grid
LSN_ELEVATION0_DEG = -30.0  # bottom edge of the grid
LSN_RATE_HZ = 3.0
N_NATURAL_IMAGES = 118
NATURAL_RATE_HZ = 3.0
NATURAL_IMAGE_SHAPE = (60, 80)

STIMULUS_COLUMNS = ("stim_name", "start_time", "stop_time", "temporal_frequency",
                    "spatial_frequency", "center_azimuth", "center_elevation", "direction",
                    "frame", "image_order", "image_index", "stimulus_condition_id")
EYE_COLUMNS = ("timestamps", "cr_area", "eye_area", "pupil_area", "likely_blink", "cr_center_x",
               "cr_center_y", "cr_width", "cr_height", "cr_phi", "eye_center_x", "eye_center_y",
               "eye_width", "eye_height", "eye_phi", "pupil_center_x", "pupil_center_y",
               "pupil_width", "pupil_height", "pupil_phi")
IMAGED_COLUMNS = ("column", "volume", "plane", "roi", "depth_um", "x_um", "z_um", "layer",
                  "pref_dir_rad", "osi", "dsi", "surround_suppression", "running_gain",
                  "reliability", "nucleus_id")
IMAGE_NAMES = ("correlation_projection_denoised", "max_projection_denoised", "max_projection_raw",
               "mean_projection_denoised", "mean_projection_raw")
# per-ROI hidden parameters the model draws (written to the ground-truth table)
LATENT_COLUMNS = ("sf_pref_cpd", "sf_ratio", "kappa", "amp_hz", "base_hz", "rf_azimuth_deg",
                  "rf_elevation_deg", "rf_sigma_deg", "on_weight", "window_gain", "tau_s",
                  "spike_dff", "noise_dff")
RUN_THRESHOLD_CM_S = 1.0


class PhysiologyError(ValueError):
    """The imaged-cell frame handed to the writer cannot make a session."""


# ----------------------------------------------------------------------------- design
@dataclass(frozen=True)
class Design:
    """Durations of one session's stimulus blocks (s). Gratings always show all 8 repeats.

    The real sessions are ~60 min (datasets-facts §4.2); the sample keeps both grating blocks
    whole (2 x 24 conditions x 8 repeats x 3 s = 1152 s) and shortens everything else.
    """

    pre_gray_s: float = 30.0
    gap_s: float = 3.0
    lsn_frames: int = 180  # 60 s at 3 Hz
    natural_images: int = 24  # a subset of the 118
    natural_repeats: int = 4
    spontaneous_s: float = 60.0
    post_gray_s: float = 10.0


DESIGN = Design()


@dataclass(frozen=True)
class SessionMeta:
    """Who/when of a session: deterministic from (column, volume), not from the seed."""

    column: int
    volume: int
    session_id: str
    start_time: dt.datetime  # local time, tz-aware (Seattle)
    age_days: int
    plane_experiment_ids: tuple[int, ...]

    @property
    def stem(self) -> str:
        """``{subject}_{YYYY-MM-DD}_{HH-MM-SS}`` as in the public asset names (§4.1)."""
        return f"{SUBJECT_ID}_{self.start_time:%Y-%m-%d_%H-%M-%S}"

    @property
    def file_name(self) -> str:
        """The Zarr store's name, ``{stem}.nwb.zarr``, as in the public assets (§4.1)."""
        return f"{self.stem}.nwb.zarr"

    @property
    def asset_name(self) -> str:
        """The data asset holding the store: ``{stem}_filtered_{date}_{time}`` (§4.1).

        The public assets' second date is when the files were processed; the sample's
        (``FILTERED_AT``, the sample's file creation date) is *assumed*, in the same format.
        """
        return f"{self.stem}_filtered_{FILTERED_AT:%Y-%m-%d_%H-%M-%S}"

    @property
    def relative_path(self) -> str:
        """``{asset}/{stem}.nwb.zarr``: where the store sits in a directory of assets."""
        return f"{self.asset_name}/{self.file_name}"


def _pacific(naive: dt.datetime) -> dt.datetime:
    try:
        from zoneinfo import ZoneInfo

        return naive.replace(tzinfo=ZoneInfo("America/Los_Angeles"))
    except Exception:  # no tz database: Pacific standard time
        return naive.replace(tzinfo=dt.timezone(dt.timedelta(hours=-8)))


def session_meta(column: int, volume: int) -> SessionMeta:
    """Date, session id and plane ids of the sample's session (column, volume).

    Ages run over the documented 97-198 days (datasets-facts §4.1); column 2 volume 3 keeps the
    real example's date and session id (§4.2). Everything else is invented.
    """
    column, volume = int(column), int(volume)
    if (column, volume) in EXAMPLE_SESSION:
        start, session_id = EXAMPLE_SESSION[(column, volume)]
    else:
        k = 5 * (column - 1) + (volume - 1)  # 0..24
        age = 97 + 4 * k  # 97..193 days, never 147 (the example's age)
        h = int(hashlib.sha256(f"{column}-{volume}".encode()).hexdigest()[:8], 16)
        start = (dt.datetime.combine(DATE_OF_BIRTH, dt.time(9, 0))
                 + dt.timedelta(days=age, seconds=h % (6 * 3600)))
        session_id = str(780_000_000 + h % 9_000_000)
    age_days = (start.date() - DATE_OF_BIRTH).days
    base = int(session_id) + 329_867
    return SessionMeta(column, volume, session_id, _pacific(start), age_days,
                       tuple(base + 2 * p for p in range(N_PLANES)))


def plane_depths_um(volume: int) -> tuple[int, ...]:
    """Nominal depths (um) of planes 0..5 of a volume, shallowest first (datasets-facts §4.1)."""
    if volume not in V1DD_PLANE_DEPTHS_UM:
        raise PhysiologyError(f"volume {volume} is not one of the V1DD volumes "
                              f"{sorted(V1DD_PLANE_DEPTHS_UM)}")
    return tuple(int(d) for d in V1DD_PLANE_DEPTHS_UM[volume])


# ----------------------------------------------------------------------------- tuning
def tuning_shape(osi: np.ndarray, dsi: np.ndarray, kappa: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Tuned fraction ``a`` and null-bump deficit ``d`` that give the latent OSI and DSI.

    The curve is ``T(x) = 1 - a + a [vm(x) + (1 - d) vm(x - pi)]`` with
    ``vm(x) = exp(kappa (cos x - 1))`` and x the angle from the preferred direction. Its
    OSI = (T(0) - T(pi/2)) / (T(0) + T(pi/2)) and DSI = (T(0) - T(pi)) / (T(0) + T(pi)) are
    solved for ``a`` and ``d`` by a few fixed-point steps; targets beyond what ``kappa``
    allows are clipped (a <= 1, 0 <= d <= 1).
    """
    osi = np.clip(np.asarray(osi, float), 0.0, 0.999)
    dsi = np.clip(np.asarray(dsi, float), 0.0, 0.999)
    e1, e2 = np.exp(-kappa), np.exp(-2.0 * kappa)
    d = np.full_like(osi, 0.5)
    a = np.ones_like(osi)
    for _ in range(8):
        p = 1.0 + (1.0 - d) * e2  # T at the preferred direction (before offset)
        o = (2.0 - d) * e1  # T at orthogonal
        a = np.clip(2.0 * osi / np.maximum((1 - osi) * p - (1 + osi) * o + 2 * osi, 1e-9),
                    1e-6, 1.0)
        d = np.clip(2.0 * dsi * (1.0 + a * e2) / (a * ((1.0 - e2) + dsi * (1.0 + e2))), 0.0, 1.0)
    return a, d


def direction_tuning(theta_rad: np.ndarray, pref_rad: np.ndarray, osi: np.ndarray,
                     dsi: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """Noise-free evoked response to direction(s) ``theta_rad``, 1 at the preferred direction.

    Broadcasts ``theta_rad`` (shape (..., 1) or scalar) against the per-ROI parameters.
    Directions in radians, counter-clockwise from rightward drift.
    """
    a, d = tuning_shape(osi, dsi, kappa)
    x = np.asarray(theta_rad) - pref_rad
    vm = np.exp(kappa * (np.cos(x) - 1.0))
    vm_null = np.exp(kappa * (np.cos(x - np.pi) - 1.0))
    t = 1.0 - a + a * (vm + (1.0 - d) * vm_null)
    peak = 1.0 - a + a * (1.0 + (1.0 - d) * np.exp(-2.0 * kappa))
    return t / peak


def selectivity(responses: np.ndarray, directions_rad: np.ndarray) -> tuple[np.ndarray, ...]:
    """Preferred direction, preferred orientation (rad) and global OSI from a tuning curve.

    ``responses`` is (..., n_directions) mean evoked response per direction (any unit).
    Orientation is the vector sum in doubled-angle space, in [0, pi); gOSI =
    |sum r e^{2i theta}| / sum r; preferred direction is the direction of the largest response.
    """
    r = np.asarray(responses, float)
    z2 = (r * np.exp(2j * directions_rad)).sum(-1)
    pref_ori = (np.angle(z2) / 2.0) % np.pi
    g_osi = np.abs(z2) / np.maximum(np.abs(r.sum(-1)), 1e-12)
    pref_dir = directions_rad[np.argmax(r, axis=-1)]
    return pref_dir, pref_ori, g_osi


# ----------------------------------------------------------------------------- latents
def validate_imaged(imaged: pd.DataFrame) -> pd.DataFrame:
    """Check the imaged-cell frame; return it sorted by (column, volume, plane, roi).

    Raises :class:`PhysiologyError` naming the first problem: missing columns, out-of-range
    keys, duplicated (column, volume, plane, roi), or ROIs not numbered 0..n-1 in a plane
    (``roi`` is the row of the plane's ``roi_table``).
    """
    missing = [c for c in IMAGED_COLUMNS if c not in imaged.columns]
    if missing:
        raise PhysiologyError(f"the imaged-cell frame lacks column(s) {missing}; it needs "
                              f"{list(IMAGED_COLUMNS)}")
    df = imaged.sort_values(["column", "volume", "plane", "roi"], kind="stable")
    df = df.reset_index(drop=True)
    for key, lo, hi in (("column", 1, 5), ("volume", 1, max(V1DD_PLANE_DEPTHS_UM)),
                        ("plane", 0, N_PLANES - 1)):
        bad = ~df[key].between(lo, hi)
        if bad.any():
            raise PhysiologyError(f"{key} must be in {lo}..{hi}; got "
                                  f"{sorted(df.loc[bad, key].unique().tolist())[:5]}")
    keys = ["column", "volume", "plane", "roi"]
    dup = df.duplicated(keys)
    if dup.any():
        raise PhysiologyError(f"duplicated (column, volume, plane, roi): "
                              f"{df.loc[dup, keys].head(3).to_dict('records')}")
    expected = df.groupby(["column", "volume", "plane"]).cumcount()
    if not (df["roi"].to_numpy() == expected.to_numpy()).all():
        bad = df.loc[df["roi"].to_numpy() != expected.to_numpy(), keys].head(3)
        raise PhysiologyError("roi must number the ROIs of each plane 0..n-1 (the row of the "
                              f"plane's roi_table); first offenders {bad.to_dict('records')}")
    for key in ("osi", "dsi", "surround_suppression", "reliability"):
        if not df[key].between(0.0, 1.0).all():
            raise PhysiologyError(f"{key} must be within 0..1")
    return df


def draw_latents(rois: pd.DataFrame, rng: np.random.Generator,
                 ref_xz_um: tuple[float, float]) -> pd.DataFrame:
    """Hidden per-ROI parameters of the response model (``LATENT_COLUMNS``), one row per ROI.

    ``ref_xz_um`` is the lateral position (um, cortical frame) whose receptive field sits at
    azimuth 50 deg, elevation 10 deg; RFs move 1 deg per 25 um (*assumed*) with 4 deg scatter.
    ``window_gain`` is filled in later, when the session's window centre is known.
    """
    n = len(rois)
    depth = rois["depth_um"].to_numpy(float)
    out = pd.DataFrame(index=rois.index)
    out["sf_pref_cpd"] = np.asarray(SPATIAL_FREQUENCIES_CPD)[rng.integers(0, 2, n)]
    out["sf_ratio"] = rng.uniform(0.25, 0.85, n)  # response at the other SF / at the preferred
    out["kappa"] = rng.uniform(2.0, 4.0, n)  # bump width: HWHM ~ 35-50 deg
    out["amp_hz"] = np.exp(rng.normal(np.log(2.5), 0.45, n))  # evoked events/s at the optimum
    out["base_hz"] = np.exp(rng.normal(np.log(0.25), 0.4, n))
    out["rf_azimuth_deg"] = (50.0 + (rois["x_um"].to_numpy(float) - ref_xz_um[0]) / 25.0
                             + rng.normal(0.0, 4.0, n))
    out["rf_elevation_deg"] = (10.0 + (rois["z_um"].to_numpy(float) - ref_xz_um[1]) / 25.0
                               + rng.normal(0.0, 4.0, n))
    out["rf_sigma_deg"] = rng.uniform(5.0, 8.0, n)
    out["on_weight"] = rng.uniform(0.2, 0.8, n)  # OFF weight = 1 - on_weight
    out["window_gain"] = np.nan
    out["tau_s"] = rng.uniform(1.0, 2.0, n)  # GCaMP6s decay
    out["spike_dff"] = np.exp(rng.normal(np.log(10.0), 0.25, n))  # % per event
    out["noise_dff"] = 3.0 + 4.0 * np.clip(depth, 0, 600) / 500.0 + rng.uniform(0.0, 1.5, n)
    return out


# ----------------------------------------------------------------------------- stimuli
@dataclass
class Schedule:
    """What the screen showed: the stimulus table, the epochs and the templates."""

    stimulus_table: pd.DataFrame  # STIMULUS_COLUMNS, one row per presentation
    epochs: pd.DataFrame  # stim_name, start_time, stop_time, duration
    lsn_templates: np.ndarray  # (n_frames, 8, 14) uint8: 0 black, 127 gray, 255 white
    natural_templates: np.ndarray  # (n_images, 60, 80) uint8
    natural_image_ids: np.ndarray  # which of the 118 images the subset shows
    duration_s: float


def _lsn_templates(rng: np.random.Generator, n: int) -> np.ndarray:
    """Sparse-noise frames: spots at least 3 grid cells apart (Chebyshev), black or white."""
    rows, cols = LSN_GRID
    out = np.full((n, rows, cols), 127, dtype=np.uint8)
    cells = np.array([(r, c) for r in range(rows) for c in range(cols)])
    for k in range(n):
        taken: list[np.ndarray] = []
        for idx in rng.permutation(len(cells)):
            rc = cells[idx]
            if all(np.abs(rc - t).max() >= 3 for t in taken):
                taken.append(rc)
                out[k, rc[0], rc[1]] = 255 if rng.random() < 0.5 else 0
    return out


def _natural_templates(rng: np.random.Generator, n: int) -> np.ndarray:
    """Stand-in "natural" images: 1/f noise, 8-bit (the real 118 images are photographs)."""
    h, w = NATURAL_IMAGE_SHAPE
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(h, w))
    out = np.empty((n, h, w), dtype=np.uint8)
    for k in range(n):
        phase = np.exp(2j * np.pi * rng.random((h, w)))
        img = np.real(np.fft.ifft2(amp * phase))
        img = (img - img.mean()) / img.std()
        out[k] = np.clip(127 + 40 * img, 0, 255).astype(np.uint8)
    return out


def stimulus_schedule(rng: np.random.Generator, center_deg: tuple[float, float],
                      design: Design = DESIGN) -> Schedule:
    """Randomized presentations of one session, in the order of the example file (§4.2).

    Full-field then windowed gratings (12 directions x 2 SF x 8 repeats, 2 s on, 1 s gray,
    order randomized within each block), locally sparse noise, natural images (a subset in
    two fixed random orders, alternating), spontaneous gray. ``center_deg`` = (azimuth,
    elevation) of the windowed gratings. Condition ids: full gratings 0-23 (SF-major, then
    direction: SF 0.08 cpd at 150 deg is 17, as in the example file), windowed 24-47, then one
    id per sparse-noise frame, per natural image and one for spontaneous. ``frame`` is the
    sparse-noise template index, ``image_index`` the natural image (0-117) and ``image_order``
    which of the two fixed orders (0 or 1) a presentation belongs to (*assumed*: the public
    documentation does not define it); columns that do not apply are NaN.
    """
    rows: list[dict] = []
    epochs: list[dict] = []
    t = design.pre_gray_s
    t, cond = _grating_blocks(rng, center_deg, design, rows, epochs, t)
    lsn, t, cond = _lsn_block(rng, design, rows, epochs, t, cond)
    ids, natural, t, cond = _natural_block(rng, design, rows, epochs, t, cond)

    rows.append(_stim_row("spontaneous", t, t + design.spontaneous_s,
                          stimulus_condition_id=cond))
    epochs.append({"stim_name": "spontaneous", "start_time": t,
                   "stop_time": t + design.spontaneous_s})
    t += design.spontaneous_s + design.post_gray_s

    table = pd.DataFrame(rows, columns=list(STIMULUS_COLUMNS))
    table["stimulus_condition_id"] = table["stimulus_condition_id"].astype(np.int64)
    ep = pd.DataFrame(epochs)
    ep["duration"] = ep["stop_time"] - ep["start_time"]
    return Schedule(table, ep[["stim_name", "start_time", "stop_time", "duration"]], lsn,
                    natural, ids, float(t))


def _stim_row(name: str, start: float, stop: float, **kw) -> dict:
    """One stimulus-table row: every column NaN except those given."""
    r = dict.fromkeys(STIMULUS_COLUMNS, np.nan)
    r.update(stim_name=name, start_time=start, stop_time=stop, **kw)
    return r


def _grating_blocks(rng: np.random.Generator, center_deg: tuple[float, float],
                    design: Design, rows: list[dict], epochs: list[dict],
                    t: float) -> tuple[float, int]:
    """Append the full-field then windowed grating blocks; return the next (time, cond id)."""
    nan = np.nan
    cond = 0
    for name, windowed in (("drifting_gratings_full", False),
                           ("drifting_gratings_windowed", True)):
        conds = [(s, d) for s in range(len(SPATIAL_FREQUENCIES_CPD))
                 for d in range(len(DIRECTIONS_DEG))]
        order = np.concatenate([rng.permutation(len(conds)) for _ in range(GRATING_REPEATS)])
        start = t
        for c in order:
            s, d = conds[c]
            rows.append(_stim_row(name, t, t + GRATING_ON_S,
                                  temporal_frequency=TEMPORAL_FREQUENCY_HZ,
                                  spatial_frequency=SPATIAL_FREQUENCIES_CPD[s],
                                  center_azimuth=center_deg[0] if windowed else nan,
                                  center_elevation=center_deg[1] if windowed else nan,
                                  direction=DIRECTIONS_DEG[d], stimulus_condition_id=cond + c))
            t += GRATING_ON_S + GRATING_GRAY_S
        epochs.append({"stim_name": name, "start_time": start, "stop_time": t - GRATING_GRAY_S})
        cond += len(conds)
        t += design.gap_s
    return t, cond


def _lsn_block(rng: np.random.Generator, design: Design, rows: list[dict],
               epochs: list[dict], t: float, cond: int) -> tuple[np.ndarray, float, int]:
    """Append the sparse-noise block; return its templates and the next (time, cond id)."""
    lsn = _lsn_templates(rng, design.lsn_frames)
    start = t
    for k in range(design.lsn_frames):
        rows.append(_stim_row("locally_sparse_noise", t, t + 1.0 / LSN_RATE_HZ, frame=float(k),
                              stimulus_condition_id=cond + k))
        t += 1.0 / LSN_RATE_HZ
    epochs.append({"stim_name": "locally_sparse_noise", "start_time": start, "stop_time": t})
    cond += design.lsn_frames
    t += design.gap_s
    return lsn, t, cond


def _natural_block(rng: np.random.Generator, design: Design, rows: list[dict],
                   epochs: list[dict], t: float,
                   cond: int) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Append the natural-image block; return image ids, templates, next (time, cond id)."""
    ids = np.sort(rng.choice(N_NATURAL_IMAGES, design.natural_images, replace=False))
    natural = _natural_templates(rng, design.natural_images)
    orders = [rng.permutation(design.natural_images) for _ in range(2)]
    start = t
    for rep in range(design.natural_repeats):
        for k in orders[rep % 2]:
            rows.append(_stim_row("natural_images", t, t + 1.0 / NATURAL_RATE_HZ,
                                  image_order=float(rep % 2), image_index=float(ids[k]),
                                  stimulus_condition_id=cond + int(k)))
            t += 1.0 / NATURAL_RATE_HZ
    epochs.append({"stim_name": "natural_images", "start_time": start, "stop_time": t})
    cond += design.natural_images
    t += design.gap_s
    return ids, natural, t, cond


# ----------------------------------------------------------------------------- behaviour
@dataclass
class Behavior:
    """Running speed (cm/s at 60 Hz) and the eye-tracking table (30 Hz, pixels)."""

    running_t: np.ndarray
    running_speed: np.ndarray
    eye: pd.DataFrame  # EYE_COLUMNS

    def running_at(self, t: np.ndarray) -> np.ndarray:
        """1.0 where the mouse runs (speed > 1 cm/s) at times ``t`` (s), else 0.0."""
        speed = np.interp(t, self.running_t, self.running_speed)
        return (speed > RUN_THRESHOLD_CM_S).astype(float)


def simulate_behavior(rng: np.random.Generator, duration_s: float) -> Behavior:
    """Alternating stationary (~45 s) and running (~20 s) bouts; pupil dilates with running.

    About a third of the time is running (10-30 cm/s per bout); the encoder adds 0.2 cm/s
    noise. Eye tracking: ellipse fits in pixels (areas in pixels^2, angles in rad), blinks
    every ~30 s (NaN pupil and corneal reflection, ``likely_blink`` True) and a NaN-heavy
    first 1.5 s, as in the real tables (§4.2).
    """
    t_run, speed = _running_speed(rng, duration_s)
    eye = _eye_fits(rng, duration_s, t_run, speed)
    blink = _blinks(rng, eye["timestamps"], duration_s)
    eye["likely_blink"] = blink
    for name in EYE_COLUMNS:
        if name in ("timestamps", "likely_blink"):
            continue
        values = np.round(np.asarray(eye[name], float) * 256) / 256
        if name.startswith(("pupil", "cr")):
            values[blink] = np.nan
        eye[name] = values.astype(np.float32)
    return Behavior(t_run, speed.astype(np.float32), pd.DataFrame(eye)[list(EYE_COLUMNS)])


def _running_speed(rng: np.random.Generator,
                   duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Running-speed times and values (cm/s, 60 Hz): alternating stationary/running bouts."""
    n_run = int(np.floor(duration_s * RUNNING_RATE_HZ))
    t_run = np.arange(n_run) / RUNNING_RATE_HZ
    target = np.zeros(n_run)
    t, running = 0.0, False
    while t < duration_s:
        length = (4.0 + rng.exponential(20.0)) if running else (5.0 + rng.exponential(45.0))
        if running:
            sel = (t_run >= t) & (t_run < t + length)
            wobble = gaussian_filter1d(rng.normal(0, 1, sel.sum()), RUNNING_RATE_HZ * 1.5)
            target[sel] = np.maximum(rng.uniform(10, 30) * (1 + 3.0 * wobble), 2.0)
        t += length
        running = not running
    speed = gaussian_filter1d(target, 0.4 * RUNNING_RATE_HZ) + rng.normal(0, 0.2, n_run)
    return t_run, np.round(speed * 256) / 256


def _eye_fits(rng: np.random.Generator, duration_s: float, t_run: np.ndarray,
              speed: np.ndarray) -> dict[str, np.ndarray]:
    """Eye-tracking ellipse fits at 30 Hz (unrounded, no blinks); the pupil follows running."""
    n_eye = int(np.floor(duration_s * EYE_RATE_HZ))
    t_eye = np.arange(n_eye) / EYE_RATE_HZ
    run_eye = gaussian_filter1d((np.interp(t_eye, t_run, speed) > RUN_THRESHOLD_CM_S) * 1.0,
                                3.0 * EYE_RATE_HZ)
    slow = gaussian_filter1d(rng.normal(0, 1, n_eye), 10 * EYE_RATE_HZ) * 8.0
    pupil_area = 1500.0 * (1.0 + 0.6 * run_eye + 0.15 * slow) + rng.normal(0, 20, n_eye)
    pupil_area = np.maximum(pupil_area, 300.0)
    ratio = 1.0 + 0.05 * np.tanh(rng.normal(0, 1, n_eye))
    pupil_w = np.sqrt(pupil_area / np.pi * ratio)
    pupil_h = pupil_area / (np.pi * pupil_w)
    # saccades: the gaze jumps every ~6 s and stays
    jumps = np.cumsum(rng.exponential(6.0, int(duration_s / 3) + 2))
    k = np.searchsorted(jumps, t_eye)
    gaze = rng.normal(0, 6.0, (jumps.size + 1, 2))[k]
    pupil_cx = 320.0 + gaze[:, 0] + rng.normal(0, 0.5, n_eye)
    pupil_cy = 240.0 + gaze[:, 1] + rng.normal(0, 0.5, n_eye)
    eye_w = 110.0 + rng.normal(0, 0.8, n_eye)
    eye_h = 85.0 + rng.normal(0, 0.8, n_eye)
    cr_w = 6.0 + rng.normal(0, 0.2, n_eye)
    cr_h = 5.5 + rng.normal(0, 0.2, n_eye)
    return {
        "timestamps": t_eye,
        "cr_area": np.pi * cr_w * cr_h,
        "eye_area": np.pi * eye_w * eye_h,
        "pupil_area": pupil_area,
        "likely_blink": np.zeros(n_eye, dtype=bool),
        "cr_center_x": pupil_cx - 0.3 * gaze[:, 0] + 12.0 + rng.normal(0, 0.3, n_eye),
        "cr_center_y": pupil_cy - 0.3 * gaze[:, 1] - 8.0 + rng.normal(0, 0.3, n_eye),
        "cr_width": cr_w, "cr_height": cr_h, "cr_phi": rng.normal(0, 0.05, n_eye),
        "eye_center_x": 320.0 + rng.normal(0, 0.6, n_eye),
        "eye_center_y": 245.0 + rng.normal(0, 0.6, n_eye),
        "eye_width": eye_w, "eye_height": eye_h, "eye_phi": rng.normal(0.02, 0.02, n_eye),
        "pupil_center_x": pupil_cx, "pupil_center_y": pupil_cy,
        "pupil_width": pupil_w, "pupil_height": pupil_h, "pupil_phi": rng.normal(0, 0.2, n_eye),
    }


def _blinks(rng: np.random.Generator, t_eye: np.ndarray, duration_s: float) -> np.ndarray:
    """Blink mask over ``t_eye``: the first 1.5 s and a blink every ~30 s."""
    blink = t_eye < 1.5
    for onset in np.cumsum(rng.exponential(30.0, int(duration_s / 10) + 2)):
        blink |= (t_eye >= onset) & (t_eye < onset + rng.uniform(0.15, 0.5))
    return blink


# ----------------------------------------------------------------------------- responses
def stimulus_drive(schedule: Schedule, latents: pd.DataFrame, rois: pd.DataFrame,
                   natural_gain: np.ndarray | None = None) -> np.ndarray:
    """Noise-free evoked rate (events/s) of every ROI to every stimulus row, before the
    trial gain and running: shape (n_rows, n_rois).

    ``rois`` holds the latent tuning (pref_dir_rad, osi, dsi, surround_suppression) and
    ``latents`` the hidden parameters (``draw_latents``, with ``window_gain`` filled in);
    ``natural_gain`` (118 images x n_rois, mean ~0.5) the sparse natural-image selectivity
    (``None``: no response to natural images).
    """
    st = schedule.stimulus_table
    n_rows, n = len(st), len(rois)
    drive = np.zeros((n_rows, n))
    if n == 0:
        return drive
    amp = latents["amp_hz"].to_numpy()
    name = st["stim_name"].to_numpy()

    grating = np.flatnonzero(np.char.startswith(name.astype(str), "drifting_gratings"))
    theta = np.deg2rad(st["direction"].to_numpy()[grating])[:, None]
    tune = direction_tuning(theta, rois["pref_dir_rad"].to_numpy(), rois["osi"].to_numpy(),
                            rois["dsi"].to_numpy(), latents["kappa"].to_numpy())
    sf = st["spatial_frequency"].to_numpy()[grating][:, None]
    sf_gain = np.where(np.isclose(sf, latents["sf_pref_cpd"].to_numpy()), 1.0,
                       latents["sf_ratio"].to_numpy())
    windowed = (name[grating] == "drifting_gratings_windowed")[:, None]
    context = np.where(windowed, latents["window_gain"].to_numpy(),
                       1.0 - rois["surround_suppression"].to_numpy())
    drive[grating] = amp * tune * sf_gain * context

    lsn_rows = np.flatnonzero(name == "locally_sparse_noise")
    if lsn_rows.size:
        frames = schedule.lsn_templates[st["frame"].to_numpy()[lsn_rows].astype(int)]
        polarity = (frames.astype(float) - 127.0) / 128.0  # -1 black .. +1 white
        r_n, c_n = LSN_GRID
        el = LSN_ELEVATION0_DEG + LSN_SPOT_DEG * (np.arange(r_n) + 0.5)
        az = LSN_AZIMUTH0_DEG + LSN_SPOT_DEG * (np.arange(c_n) + 0.5)
        d2 = ((az[None, None, :] - latents["rf_azimuth_deg"].to_numpy()[:, None, None]) ** 2
              + (el[None, :, None] - latents["rf_elevation_deg"].to_numpy()[:, None, None]) ** 2)
        rf = np.exp(-d2 / (2 * latents["rf_sigma_deg"].to_numpy()[:, None, None] ** 2))
        on = latents["on_weight"].to_numpy()
        on_map = (polarity > 0.5).reshape(len(lsn_rows), -1) * 1.0
        off_map = (polarity < -0.5).reshape(len(lsn_rows), -1) * 1.0
        rf_flat = rf.reshape(n, -1)
        lsn_drive = on * (on_map @ rf_flat.T) + (1.0 - on) * (off_map @ rf_flat.T)
        drive[lsn_rows] = 0.8 * amp * np.minimum(lsn_drive, 1.5)

    nat_rows = np.flatnonzero(name == "natural_images")
    if nat_rows.size and natural_gain is not None:
        img = st["image_index"].to_numpy()[nat_rows].astype(int)
        drive[nat_rows] = amp * 0.7 * natural_gain[img]
    return drive


def trial_gains(rng: np.random.Generator, n_rows: int, reliability: np.ndarray) -> np.ndarray:
    """Multiplicative trial-to-trial gain (mean 1) per (stimulus row, ROI).

    Gamma with coefficient of variation 0.1 + 0.9 (1 - reliability): reliable ROIs repeat
    their response, unreliable ones respond on some trials only.
    """
    cv = 0.1 + 0.9 * (1.0 - np.asarray(reliability, float))
    shape = 1.0 / cv**2
    return rng.gamma(shape, 1.0 / shape, (n_rows, shape.size))


def row_at(schedule: Schedule, t: np.ndarray) -> np.ndarray:
    """Index of the stimulus row on screen at times ``t`` (s), -1 between presentations."""
    st = schedule.stimulus_table
    start, stop = st["start_time"].to_numpy(), st["stop_time"].to_numpy()
    k = np.searchsorted(start, t, side="right") - 1
    inside = (k >= 0) & (t < stop[np.clip(k, 0, None)])
    return np.where(inside, k, -1)


def simulate_plane(rng: np.random.Generator, frame_t: np.ndarray, rows_on: np.ndarray,
                   drive: np.ndarray, gains: np.ndarray, running: np.ndarray,
                   rois: pd.DataFrame, latents: pd.DataFrame
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``dff`` (%), ``events`` (a.u.) and true event counts, each (frames, ROIs).

    ``rows_on``: stimulus row per frame (-1 = gray); ``drive``/``gains``: (n_rows, n_rois);
    ``running``: 0/1 per frame.
    """
    nf, n = frame_t.size, len(rois)
    if n == 0:
        empty = np.zeros((nf, 0), np.float32)
        return empty, empty.copy(), empty.copy()
    dt_frame = 1.0 / IMAGING_RATE_HZ
    evoked = np.zeros((nf, n))
    on = rows_on >= 0
    evoked[on] = (drive * gains)[rows_on[on]]
    run_gain = 1.0 + (rois["running_gain"].to_numpy() - 1.0)[None, :] * running[:, None]
    rate = latents["base_hz"].to_numpy()[None, :] + evoked * run_gain
    counts = rng.poisson(rate * dt_frame).astype(float)

    gamma = np.exp(-dt_frame / latents["tau_s"].to_numpy())
    calcium = np.empty_like(counts)
    for i in range(n):
        calcium[:, i] = lfilter([1.0], [1.0, -gamma[i]], counts[:, i])
    signal = calcium * latents["spike_dff"].to_numpy()
    signal = signal / (1.0 + signal / 500.0)  # GCaMP6s saturation
    drift = lfilter([1.0], [1.0, -np.exp(-dt_frame / 60.0)], rng.normal(0, 1, (nf, n)), axis=0)
    drift *= 1.5 / max(float(drift.std()), 1e-9)
    noise = rng.normal(0.0, 1.0, (nf, n)) * latents["noise_dff"].to_numpy()
    dff = np.round((signal + drift + noise) / DFF_QUANTUM) * DFF_QUANTUM

    snr = latents["spike_dff"].to_numpy() / latents["noise_dff"].to_numpy()
    p_detect = np.clip(0.35 + 0.2 * snr, 0.3, 0.95)
    detected = rng.binomial(counts.astype(np.int64), p_detect[None, :]).astype(float)
    late = rng.random((nf, n)) < 0.1  # reported one frame late
    shifted = np.where(late, 0.0, detected)
    shifted[1:] += np.where(late[:-1], detected[:-1], 0.0)
    false_pos = (rng.random((nf, n)) < 0.002) * rng.uniform(0.3, 1.0, (nf, n))
    amplitude = latents["spike_dff"].to_numpy() * np.exp(rng.normal(0, 0.3, (nf, n)))
    events = (shifted + false_pos) * amplitude
    events = np.round(events / EVENT_QUANTUM) * EVENT_QUANTUM
    return dff.astype(np.float32), events.astype(np.float32), counts.astype(np.float32)


# ----------------------------------------------------------------------------- images
def _fov(rois: pd.DataFrame) -> tuple[float, float, float]:
    """(x0, z0, um per pixel) of the session's field of view: >= 400 um, centred on the ROIs."""
    if len(rois) == 0:
        return -FOV_UM / 2, -FOV_UM / 2, FOV_UM / IMAGE_PX
    x, z = rois["x_um"].to_numpy(float), rois["z_um"].to_numpy(float)
    span = max(FOV_UM, float(np.ptp(x)) + 30.0, float(np.ptp(z)) + 30.0)
    cx, cz = (x.min() + x.max()) / 2, (z.min() + z.max()) / 2
    return cx - span / 2, cz - span / 2, span / IMAGE_PX


def pixel_masks(rois: pd.DataFrame, fov: tuple[float, float, float],
                rng: np.random.Generator) -> list[np.ndarray]:
    """Disk masks (radius 5-7 um) as (k, 3) arrays of (x, y, weight 1.0), x = lateral x."""
    x0, z0, px = fov
    yy, xx = np.mgrid[0:IMAGE_PX, 0:IMAGE_PX]
    masks = []
    for x_um, z_um in rois[["x_um", "z_um"]].to_numpy(float):
        cx, cy = (x_um - x0) / px, (z_um - z0) / px
        r = rng.uniform(5.0, 7.0) / px
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= max(r, 0.75) ** 2
        if not inside.any():  # always at least the pixel under the centre
            inside[int(np.clip(round(cy), 0, IMAGE_PX - 1)),
                   int(np.clip(round(cx), 0, IMAGE_PX - 1))] = True
        ys, xs = np.nonzero(inside)
        masks.append(np.column_stack([xs, ys, np.ones(xs.size)]))
    return masks


def projection_images(masks: list[np.ndarray], dff: np.ndarray, plane: int,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Correlation, max and mean projections (128 x 128, float32) from masks and activity."""
    yy, xx = np.mgrid[0:IMAGE_PX, 0:IMAGE_PX]
    vignette = 1.0 - 0.35 * (((xx - 64) / 64.0) ** 2 + ((yy - 64) / 64.0) ** 2)
    background = 180.0 * vignette + 25.0 * gaussian_filter(rng.normal(0, 1, (IMAGE_PX,) * 2), 4)
    cells = np.zeros((IMAGE_PX, IMAGE_PX))
    peaks = np.zeros_like(cells)
    corr = np.zeros_like(cells)
    for i, m in enumerate(masks):
        xs, ys = m[:, 0].astype(int), m[:, 1].astype(int)
        bright = rng.uniform(60.0, 200.0)
        cells[ys, xs] += bright
        peak = float(np.nanmax(dff[:, i])) if dff.shape[0] else 0.0
        peaks[ys, xs] += bright * (1.0 + max(peak, 0.0) / 100.0)
        corr[ys, xs] = np.maximum(corr[ys, xs], rng.uniform(0.3, 0.9))
    mean_raw = background + cells + rng.normal(0, 12.0, cells.shape)
    max_raw = background * 1.6 + peaks + rng.normal(0, 30.0, cells.shape)
    corr_img = gaussian_filter(corr, 0.6) + np.abs(rng.normal(0, 0.05, cells.shape))
    out = {
        "correlation_projection_denoised": np.round(np.clip(corr_img, 0, 1) * 1024) / 1024,
        "max_projection_denoised": np.round(gaussian_filter(max_raw, 0.8)),
        "max_projection_raw": np.round(max_raw),
        "mean_projection_denoised": np.round(gaussian_filter(mean_raw, 0.8)),
        "mean_projection_raw": np.round(mean_raw),
    }
    return {f"{k}_plane-{plane}": v.astype(np.float32) for k, v in out.items()}


# ----------------------------------------------------------------------------- session
@dataclass
class PlaneData:
    """One plane's ROIs, traces (frames x ROIs) and images."""

    plane: int
    depth_um: int
    timestamps: np.ndarray  # s, float64
    rois: pd.DataFrame  # imaged rows of this plane, sorted by roi, + pika columns
    masks: list[np.ndarray]
    dff: np.ndarray  # %, float32
    events: np.ndarray  # a.u., float32
    counts: np.ndarray  # true events per frame (ground truth, not written to the NWB)
    images: dict[str, np.ndarray]


@dataclass
class SessionData:
    """Everything one NWB file holds, plus the ground truth the file does not."""

    meta: SessionMeta
    schedule: Schedule
    behavior: Behavior
    planes: list[PlaneData]
    truth: pd.DataFrame  # per ROI: keys, latent tuning and LATENT_COLUMNS
    seed: int
    window_center_deg: tuple[float, float] = field(default=(np.nan, np.nan))


def _session_rng(seed: int, column: int, volume: int, part: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), 0x2F0705, int(column), int(volume), part])


def frame_times(n_frames: int, plane: int) -> np.ndarray:
    """Frame times (s) of a plane: volumes at 6 Hz, planes staggered by 1/36 s."""
    return np.arange(n_frames) / IMAGING_RATE_HZ + plane / (IMAGING_RATE_HZ * N_PLANES)


def simulate_session(session_rois: pd.DataFrame, seed: int,
                     ref_xz_um: tuple[float, float] | None = None,
                     design: Design = DESIGN) -> SessionData:
    """Simulate one (column, volume) session from its rows of the imaged-cell frame.

    ``session_rois`` must already be validated (``validate_imaged``) and hold one column and
    one volume. ``ref_xz_um`` anchors retinotopy (default: the mean lateral position of the
    session's ROIs; ``write_sessions`` passes the mean over all sessions so neighbouring
    columns see neighbouring parts of the screen). Deterministic in (seed, column, volume).
    """
    column, volume = (int(v) for v in session_rois[["column", "volume"]].iloc[0])
    if session_rois[["column", "volume"]].nunique().max() != 1:
        raise PhysiologyError("simulate_session takes the rows of one (column, volume)")
    meta = session_meta(column, volume)
    depths = plane_depths_um(volume)
    rois = session_rois.reset_index(drop=True)
    if ref_xz_um is None:
        ref_xz_um = (float(rois["x_um"].mean()), float(rois["z_um"].mean()))
    latents = draw_latents(rois, _session_rng(seed, column, volume, 1), ref_xz_um)
    center = (round(float(latents["rf_azimuth_deg"].mean()), 1),
              round(float(latents["rf_elevation_deg"].mean()), 1))
    if not np.isfinite(center[0]):
        center = (50.0, 10.0)
    dist = np.hypot(latents["rf_azimuth_deg"] - center[0],
                    latents["rf_elevation_deg"] - center[1])
    latents["window_gain"] = np.exp(-(dist**2) / (2 * (WINDOW_DIAMETER_DEG / 2) ** 2))

    schedule = stimulus_schedule(_session_rng(seed, column, volume, 2), center, design)
    behavior = simulate_behavior(_session_rng(seed, column, volume, 3), schedule.duration_s)
    natural_gain = _session_rng(seed, column, volume, 5).gamma(0.5, 1.0,
                                                               (N_NATURAL_IMAGES, len(rois)))
    drive = stimulus_drive(schedule, latents, rois, natural_gain)
    gains = trial_gains(_session_rng(seed, column, volume, 4), len(schedule.stimulus_table),
                        rois["reliability"].to_numpy())
    n_frames = int(np.floor(schedule.duration_s * IMAGING_RATE_HZ)) - 1
    fov = _fov(rois)
    planes = []
    for plane in range(N_PLANES):
        sel = np.flatnonzero(rois["plane"].to_numpy() == plane)
        p_rois = rois.iloc[sel].reset_index(drop=True)
        rng = _session_rng(seed, column, volume, 10 + plane)
        t = frame_times(n_frames, plane)
        dff, events, counts = simulate_plane(rng, t, row_at(schedule, t), drive[:, sel],
                                             gains[:, sel], behavior.running_at(t), p_rois,
                                             latents.iloc[sel].reset_index(drop=True))
        p_rois = p_rois.copy()
        p_rois["pika_roi_id"] = [f"{meta.plane_experiment_ids[plane]}_{r:04d}"
                                 for r in p_rois["roi"]]
        p_rois["pika_roi_confidence"] = np.round(rng.beta(20.0, 1.8, len(p_rois)), 3)
        p_rois["is_soma"] = True
        masks = pixel_masks(p_rois, fov, rng)
        images = projection_images(masks, dff, plane, rng)
        planes.append(PlaneData(plane, depths[plane], t, p_rois, masks, dff, events, counts,
                                images))
    truth = pd.concat([rois[list(IMAGED_COLUMNS)], latents.reset_index(drop=True)], axis=1)
    return SessionData(meta, schedule, behavior, planes, truth, int(seed), center)


# ----------------------------------------------------------------------------- NWB
def _compressed(data: np.ndarray, chunk_rows: int | None = None):
    from hdmf_zarr import ZarrDataIO
    from numcodecs import Blosc

    data = np.ascontiguousarray(data)
    if data.size == 0:
        return data
    chunks = None
    if data.ndim == 2 and chunk_rows:
        chunks = (min(chunk_rows, data.shape[0]), data.shape[1])
    return ZarrDataIO(data, chunks=chunks,
                      compressor=Blosc(cname="zstd", clevel=5, shuffle=Blosc.SHUFFLE))


def identifier(meta: SessionMeta, seed: int) -> str:
    """Deterministic NWB identifier of a sample session (a UUID derived from its keys)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL,
                          f"offline_cave/v1dd/{SUBJECT_ID}/{meta.column}/{meta.volume}/{seed}"))


def build_nwbfile(data: SessionData) -> NWBFile:
    """The in-memory ``pynwb.NWBFile`` of a simulated session (datasets-facts §4.2)."""
    nwb = _empty_nwbfile(data)
    device = nwb.create_device(name="DeepScope",
                               description=f"two-photon microscope, equipment_id "
                                           f"{DEVICE_EQUIPMENT_ID}")
    for p in data.planes:
        _add_plane(nwb, device, p)
    _add_behavior(nwb, data.behavior)
    _add_intervals(nwb, data.schedule)
    _add_stimulus_templates(nwb, data.schedule)
    return nwb


def _empty_nwbfile(data: SessionData) -> NWBFile:
    """The NWBFile with the session's metadata and subject, and no data yet."""
    from pynwb import NWBFile
    from pynwb.file import Subject

    meta = data.meta
    subject = Subject(subject_id=SUBJECT_ID, age=f"P{meta.age_days}D", age__reference="birth",
                      genotype=SUBJECT_GENOTYPE, sex=SUBJECT_SEX, species=SUBJECT_SPECIES,
                      description=SUBJECT_DESCRIPTION,
                      date_of_birth=_pacific(dt.datetime.combine(DATE_OF_BIRTH, dt.time())))
    return NWBFile(
        session_description=SESSION_DESCRIPTION,
        identifier=identifier(meta, data.seed),
        session_start_time=meta.start_time,
        file_create_date=[FILTERED_AT],
        experiment_description=f"2-photon imaging of column {meta.column}, volume {meta.volume}",
        session_id=meta.session_id,
        institution=INSTITUTION,
        keywords=list(KEYWORDS),
        subject=subject,
        notes=("OFFLINE SYNTHETIC SAMPLE: simulated by offline_cave.generator.twophoton.model "
               f"(seed {data.seed}); not real data."),
    )


def _add_plane(nwb: NWBFile, device: Device, p: PlaneData) -> None:
    """Add a plane's imaging plane and its processing module (ROIs, traces, images)."""
    from pynwb.base import Images
    from pynwb.image import GrayscaleImage
    from pynwb.ophys import ImageSegmentation, OpticalChannel

    channel = OpticalChannel(name="channel", description="GCaMP6s green channel",
                             emission_lambda=940.0)  # 940 for both, as the real files say
    imaging_plane = nwb.create_imaging_plane(
        name=f"plane-{p.plane}", optical_channel=channel,
        description=f"2-photon imaging plane {p.plane}, depth {p.depth_um} microns",
        device=device, excitation_lambda=940.0, imaging_rate=IMAGING_RATE_HZ,
        indicator="gcamp6s", location=f"{p.depth_um} um")
    module = nwb.create_processing_module(f"plane-{p.plane}",
                                          "Single-plane ophys processing module")
    segmentation = ImageSegmentation(name="image_segmentation")
    table = segmentation.create_plane_segmentation(
        name="roi_table", description=f"output from suite2p for plane-{p.plane}",
        imaging_plane=imaging_plane)
    _fill_roi_table(table, p)
    module.add(segmentation)
    _add_roi_series(module, table, p)
    module.add(Images(name="images", description="projection images of the plane",
                      images=[GrayscaleImage(name=k, data=_compressed(v))
                              for k, v in p.images.items()]))


def _fill_roi_table(table: PlaneSegmentation, p: PlaneData) -> None:
    """Add the key columns and one row (with its pixel mask) per ROI of the plane."""
    empty = len(p.rois) == 0  # typed empty columns: pynwb cannot infer a dtype from []
    for name, desc, dtype in (
            ("column", "V1DD imaging column (1-5)", np.int64),
            ("volume", "imaging volume within the column (1-5)", np.int64),
            ("plane", "plane within the volume (0-5)", np.int64),
            ("roi", "index of the ROI within the plane", np.int64),
            ("pika_roi_id", "ROI id, '{plane experiment id}_{roi:04d}'", str),
            ("pika_roi_confidence", "classifier confidence that the ROI is a soma", float),
            ("is_soma", "ROI classified as a soma", bool)):
        if empty:
            table.add_column(name, desc, data=np.array([], dtype=dtype))
        else:
            table.add_column(name, desc)
    if empty:
        table.add_column("pixel_mask", "pixel masks: (x, y, weight)", index=True,
                         data=np.zeros(0, dtype=[("x", "u4"), ("y", "u4"),
                                                 ("weight", "f4")]))
    for r, mask in zip(p.rois.itertuples(index=False), p.masks, strict=True):
        table.add_roi(pixel_mask=[(int(x), int(y), float(w)) for x, y, w in mask],
                      column=int(r.column), volume=int(r.volume), plane=int(r.plane),
                      roi=int(r.roi), pika_roi_id=str(r.pika_roi_id),
                      pika_roi_confidence=float(r.pika_roi_confidence),
                      is_soma=bool(r.is_soma))


def _add_roi_series(module: ProcessingModule, table: PlaneSegmentation, p: PlaneData) -> None:
    """Add the plane's ``dff`` and ``events`` RoiResponseSeries over all its ROIs."""
    from pynwb.ophys import RoiResponseSeries

    region = table.create_roi_table_region(region=list(range(len(p.rois))),
                                           description="Soma-only ROIs")
    dff = RoiResponseSeries(
        name="dff", data=_compressed(p.dff, 1024), rois=region, unit="%",
        timestamps=_compressed(p.timestamps),
        description="dF/F (percent) of the soma ROIs; frames x ROIs")
    events = RoiResponseSeries(
        name="events", data=_compressed(p.events, 1024), rois=region, unit="a.u.",
        timestamps=dff, description="inferred events (spike-like, a.u.); frames x ROIs")
    module.add(dff)
    module.add(events)


def _add_behavior(nwb: NWBFile, behavior_data: Behavior) -> None:
    """Add the ``behavior`` module: running speed and the eye-tracking table."""
    from hdmf.common import DynamicTable, VectorData
    from pynwb import TimeSeries

    behavior = nwb.create_processing_module("behavior", "running and eye tracking")
    behavior.add(TimeSeries(name="running_speed", data=_compressed(behavior_data.running_speed),
                            unit="cm/s", timestamps=_compressed(behavior_data.running_t),
                            description="running speed of the mouse on the disk (cm/s)"))
    eye = behavior_data.eye
    behavior.add(DynamicTable(
        name="eye_tracking", description="DLC ellipse fits of eye, pupil and corneal "
                                         "reflection (pixels, pixels^2, rad)",
        id=_compressed(np.arange(len(eye))),
        columns=[VectorData(name=c, description=c.replace("_", " "),
                            data=_compressed(eye[c].to_numpy())) for c in EYE_COLUMNS]))


def _add_intervals(nwb: NWBFile, schedule: Schedule) -> None:
    """Add the stimulus table and the epochs."""
    from pynwb.epoch import TimeIntervals

    st = schedule.stimulus_table
    nwb.add_time_intervals(TimeIntervals.from_dataframe(
        st[["start_time", "stop_time"] + [c for c in STIMULUS_COLUMNS
                                          if c not in ("start_time", "stop_time")]],
        name="stimulus_table", table_description="one row per stimulus presentation"))
    nwb.add_epoch_column("stim_name", "stimulus block")
    nwb.add_epoch_column("duration", "stop_time - start_time (s)")
    for e in schedule.epochs.itertuples(index=False):
        nwb.add_epoch(start_time=float(e.start_time), stop_time=float(e.stop_time),
                      stim_name=str(e.stim_name), duration=float(e.duration))


def _add_stimulus_templates(nwb: NWBFile, schedule: Schedule) -> None:
    """Add the sparse-noise frames and the natural images as stimulus templates."""
    from pynwb.base import ImageReferences, Images
    from pynwb.image import GrayscaleImage

    lsn = [GrayscaleImage(name=str(k), data=img, description="sparse noise frame")
           for k, img in enumerate(schedule.lsn_templates)]
    nwb.add_stimulus_template(Images(
        name="locally_sparse_noise", images=lsn,
        description=f"{LSN_SPOT_DEG} deg spots on an {LSN_GRID[0]} x {LSN_GRID[1]} grid, "
                    "0 black, 127 gray, 255 white; row = elevation, column = azimuth",
        order_of_images=ImageReferences(name="order_of_images", data=lsn)))
    natural = [GrayscaleImage(name=str(int(i)), data=img,
                              description=f"natural image {int(i)} (synthetic 1/f stand-in)")
               for i, img in zip(schedule.natural_image_ids,
                                 schedule.natural_templates, strict=True)]
    nwb.add_stimulus_template(Images(
        name="natural_images", images=natural, description="natural images (a subset)",
        order_of_images=ImageReferences(name="order_of_images", data=natural)))


def _container_path(obj) -> str:
    parts = []
    while obj is not None:
        parts.append(f"{type(obj).__name__}:{obj.name}")
        obj = obj.parent
    return "/".join(reversed(parts))


def deterministic_object_ids(nwb) -> None:
    """Replace the random ``object_id`` (uuid4) of every container by a UUID derived from the
    file's identifier and the container's path, so the same session gives the same bytes."""
    namespace = uuid.UUID(nwb.identifier)
    for obj in [nwb, *nwb.all_children()]:
        if hasattr(obj, "_AbstractContainer__object_id"):
            obj._AbstractContainer__object_id = str(uuid.uuid5(namespace, _container_path(obj)))


def write_nwb(data: SessionData, path: str | Path) -> Path:
    """Write a simulated session to ``path``, a new Zarr NWB store (a directory); returns it.

    The writer consolidates the metadata (``.zmetadata``) as the public stores have, so
    opening reads one small file.
    """
    import numcodecs
    from hdmf_zarr import ZarrIO
    from pynwb import get_manager

    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; the sessions are written into a new directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    nwb = build_nwbfile(data)
    deterministic_object_ids(nwb)
    # object references (region, image and link references) as JSON, not hdmf-zarr's default
    # Pickle, which numcodecs >= 0.16 refuses to decode unless the reader opts in; NWBZarrIO
    # does not pass the codec on, so its base ZarrIO writes, with pynwb's type manager
    with ZarrIO(str(path), mode="w", manager=get_manager(),
                object_codec_class=numcodecs.JSON) as io:
        io.write(nwb)
    return path
