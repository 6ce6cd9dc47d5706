"""Write the sample's V1DD two-photon sessions: one Zarr NWB store per (column, volume), cached.

``write_sessions(out_dir, imaged, seed)`` turns the imaged-cell frame (one row per imaged
neuron, columns ``physiology.IMAGED_COLUMNS``) into the public assets' layout
(datasets-facts §4.1)::

    out_dir/
        409828_2018-11-27_12-29-05_filtered_2025-06-01_00-00-00/    one asset per
            409828_2018-11-27_12-29-05.nwb.zarr/                     (column, volume): a
                .zmetadata, .zattrs, acquisition/, processing/ ...   Zarr NWB store
        ...
        rois_truth.parquet               ground truth per ROI: keys, latent tuning, hidden
                                         model parameters (physiology.LATENT_COLUMNS); not
                                         part of the public layout, tests use it
        MANIFEST.json                    written last: cache key, sessions (``file`` = the
                                         store's path), every file's hash, and per session
                                         the size and hash of its asset's archive
                                         (``contract.archive``: what the server streams)

The cache key is a digest of this module's and ``physiology``'s source, the seed and the
imaged-cell frame; a missing, partial, outdated or corrupt directory is rebuilt in a temporary
sibling and swapped in atomically. Same seed and frame -> identical arrays (and files).

``make_imaged_cells`` builds a stand-in frame for tests and for a standalone sample
(``ensure_sessions``) when the V1DD EM sample, which passes the real one, is not generated.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from offline_cave.contract.archive import ARCHIVE_SUFFIX, archive_entry, tree_members
from offline_cave.contract.files import building_dir, file_entry, swap_in, verify_files
from offline_cave.contract.params import V1DD_PLANE_DEPTHS_UM
from offline_cave.generator.twophoton import model as phys

SESSIONS_SUBDIR = "v1dd_sessions"  # <data_dir>/v1dd_sessions for the standalone sample
MANIFEST = "MANIFEST.json"
TRUTH_PARQUET = "rois_truth.parquet"
FORMAT_VERSION = "2"  # 2: Zarr NWB stores in asset folders (1: HDF5 .nwb files)
# sessions of the stand-in frame, in order: L2/3-L4 (datasets-facts example), L2/3, L5, ...
STANDIN_SESSIONS = ((2, 3), (1, 2), (5, 5), (3, 1), (4, 4))
# column centres (um, cortical x and z) of the stand-in frame: a 2 x 2 grid of 400 um columns
# and a centre column overlapping a quarter of each (datasets-facts §4.1; *assumed* numbering)
STANDIN_COLUMN_CENTERS_UM = {1: (-200.0, -200.0), 2: (200.0, -200.0), 3: (-200.0, 200.0),
                             4: (200.0, 200.0), 5: (0.0, 0.0)}
# surround suppression by layer: stronger in L2/3 than in L5 (the windowed-vs-full contrast)
STANDIN_SURROUND = {"L2/3": 0.6, "L4": 0.45, "L5": 0.25}

Log = Callable[[str], None]


def layer_of(depth_um: np.ndarray) -> np.ndarray:
    """"L2/3" above 300 um, "L4" to 409 um, "L5" below (``params.LAYER_BOUNDS_UM``)."""
    depth = np.asarray(depth_um, float)
    return np.where(depth < 300.0, "L2/3", np.where(depth < 409.0, "L4", "L5"))


def make_imaged_cells(rng: np.random.Generator, n_sessions: int = 3,
                      rois_per_plane: int | tuple[int, int] = (60, 90),
                      sessions: Sequence[tuple[int, int]] | None = None) -> pd.DataFrame:
    """A stand-in imaged-cell frame (``physiology.IMAGED_COLUMNS``), one row per ROI.

    ``sessions`` defaults to the first ``n_sessions`` of ``STANDIN_SESSIONS``;
    ``rois_per_plane`` is a count or a (low, high) range. Somata sit within +-6 um of the
    plane's nominal depth, uniformly in the column's 400 x 400 um. Latents: uniform preferred
    direction, osi ~ Beta(2, 2), dsi ~ Beta(1.5, 4), surround suppression 0.6 / 0.45 / 0.25
    (L2/3 / L4 / L5) +- 0.15, running gain U(0.8, 1.6), reliability U(0.2, 0.95); a quarter of
    the ROIs have no EM match (nucleus_id 0).
    """
    chosen = list(sessions) if sessions is not None else list(STANDIN_SESSIONS[:n_sessions])
    frames = []
    for column, volume in chosen:
        cx, cz = STANDIN_COLUMN_CENTERS_UM[column]
        for plane, depth in enumerate(V1DD_PLANE_DEPTHS_UM[volume]):
            if isinstance(rois_per_plane, int):
                n = rois_per_plane
            else:
                n = int(rng.integers(rois_per_plane[0], rois_per_plane[1] + 1))
            frames.append(pd.DataFrame({
                "column": column, "volume": volume, "plane": plane, "roi": np.arange(n),
                "depth_um": depth + rng.uniform(-6.0, 6.0, n),
                "x_um": cx + rng.uniform(-200.0, 200.0, n),
                "z_um": cz + rng.uniform(-200.0, 200.0, n)}))
    df = pd.concat(frames, ignore_index=True)
    n = len(df)
    df["layer"] = layer_of(df["depth_um"].to_numpy())
    df["pref_dir_rad"] = rng.uniform(0.0, 2 * np.pi, n)
    df["osi"] = rng.beta(2.0, 2.0, n)
    df["dsi"] = rng.beta(1.5, 4.0, n)
    base = df["layer"].map(STANDIN_SURROUND).to_numpy()
    df["surround_suppression"] = np.clip(base + rng.uniform(-0.15, 0.15, n), 0.0, 0.95)
    df["running_gain"] = rng.uniform(0.8, 1.6, n)
    df["reliability"] = rng.uniform(0.2, 0.95, n)
    ids = np.sort(rng.choice(np.arange(100_000, 800_000), n, replace=False))
    df["nucleus_id"] = np.where(rng.random(n) < 0.25, 0, rng.permutation(ids)).astype(np.int64)
    for key in ("column", "volume", "plane", "roi"):
        df[key] = df[key].astype(np.int64)
    return df[list(phys.IMAGED_COLUMNS)]


# ----------------------------------------------------------------------------- cache
def source_digest() -> str:
    """Digest of the code that makes the sessions (this package and the contract's
    ``params``)."""
    digest = hashlib.sha256(FORMAT_VERSION.encode())
    here = Path(__file__).resolve().parent
    for path in [*sorted(here.glob("*.py")), here.parents[1] / "contract" / "params.py"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def imaged_digest(imaged: pd.DataFrame) -> str:
    """Digest of the imaged-cell frame's content (``IMAGED_COLUMNS``, row order ignored)."""
    df = phys.validate_imaged(imaged)[list(phys.IMAGED_COLUMNS)]
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def read_manifest(out_dir: str | Path) -> dict:
    """The MANIFEST.json of a sessions directory (``FileNotFoundError`` if there is none)."""
    return json.loads((Path(out_dir) / MANIFEST).read_text())


def check(out_dir: str | Path, imaged: pd.DataFrame, seed: int, deep: bool = True) -> str | None:
    """Why ``out_dir`` cannot be reused for (imaged, seed); ``None`` when it is complete."""
    out_dir = Path(out_dir)
    try:
        manifest = read_manifest(out_dir)
    except FileNotFoundError:
        return "no MANIFEST.json (missing or partial sessions)"
    except (OSError, ValueError) as exc:
        return f"unreadable MANIFEST.json ({exc})"
    if manifest.get("source_digest") != source_digest():
        return "made by another version of the session generator"
    if manifest.get("seed") != seed or manifest.get("imaged_digest") != imaged_digest(imaged):
        return "made from another seed or imaged-cell frame"
    return verify_files(Path(out_dir), manifest.get("files", {}), deep=deep)


# ----------------------------------------------------------------------------- writing
def write_sessions(out_dir: str | Path, imaged: pd.DataFrame, seed: int, force: bool = False,
                   log: Log | None = None) -> list[Path]:
    """Write (or reuse) one Zarr NWB store per (column, volume) of ``imaged`` in ``out_dir``.

    ``imaged`` has one row per imaged neuron with ``physiology.IMAGED_COLUMNS`` (keys
    column 1-5, volume 1-5, plane 0-5, roi = 0..n-1 within each plane; positions in um of the
    cortical frame; latent tuning). Returns the store paths (directories
    ``{asset}/{stem}.nwb.zarr``) sorted by (column, volume). A
    current directory (same code, seed and frame; files intact) is returned untouched.
    Raises ``physiology.PhysiologyError`` for a malformed frame.
    """
    out_dir = Path(out_dir)
    say = log or (lambda _msg: None)
    df = phys.validate_imaged(imaged)
    reason = "forced" if force else check(out_dir, df, seed)
    if reason is None:
        manifest = read_manifest(out_dir)
        say(f"v1dd sessions: cached in {out_dir}")
        return [out_dir / s["file"] for s in manifest["sessions"]]
    if out_dir.exists():
        say(f"v1dd sessions: rebuilding {out_dir}: {reason}")
    t0 = time.perf_counter()
    with building_dir(out_dir) as tmp:
        ref = (float(df["x_um"].mean()), float(df["z_um"].mean()))
        sessions, truths, files, archives = [], [], {}, {}
        for (column, volume), rows in df.groupby(["column", "volume"], sort=True):
            t1 = time.perf_counter()
            data = phys.simulate_session(rows, seed, ref)
            phys.write_nwb(data, tmp / data.meta.relative_path)
            members = tree_members(tmp, data.meta.asset_name)
            archive = data.meta.asset_name + ARCHIVE_SUFFIX
            archives[archive] = archive_entry(tmp, members)
            truth = data.truth.copy()
            truth.insert(4, "session_id", data.meta.session_id)
            truths.append(truth)
            n_rois = [len(p.rois) for p in data.planes]
            sessions.append({
                "column": int(column), "volume": int(volume),
                "file": data.meta.relative_path, "archive": archive,
                "session_id": data.meta.session_id, "subject_id": phys.SUBJECT_ID,
                "session_start_time": data.meta.start_time.isoformat(),
                "n_frames": int(data.planes[0].timestamps.size), "rois_per_plane": n_rois,
                "duration_s": data.schedule.duration_s,
                "window_center_deg": list(data.window_center_deg)})
            files.update({rel: file_entry(tmp / rel) for rel in members})
            say(f"  column {column} volume {volume}: {sum(n_rois)} ROIs, {len(members)} "
                f"files, {archives[archive]['bytes'] / 1e6:.1f} MB in "
                f"{time.perf_counter() - t1:.1f} s")
        truth_path = tmp / TRUTH_PARQUET
        pd.concat(truths, ignore_index=True).to_parquet(truth_path, index=False)
        files[TRUTH_PARQUET] = file_entry(truth_path)
        manifest = {"format_version": FORMAT_VERSION, "source_digest": source_digest(),
                    "seed": seed, "imaged_digest": imaged_digest(df),
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                    "elapsed_s": round(time.perf_counter() - t0, 2), "sessions": sessions,
                    "files": files, "archives": archives}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        swap_in(tmp, out_dir)
    size_mb = sum(f["bytes"] for f in files.values()) / 1e6
    say(f"v1dd sessions: wrote {len(sessions)} sessions to {out_dir} ({size_mb:.1f} MB) in "
        f"{time.perf_counter() - t0:.1f} s")
    return [out_dir / s["file"] for s in sessions]


def ensure_sessions(data_dir: str | Path, seed: int = 0, force: bool = False,
                    log: Log | None = print) -> Path:
    """A standalone sample of sessions from ``make_imaged_cells`` in ``data_dir/v1dd_sessions``.

    For when the ``v1dd_public`` EM sample (which writes sessions of its own imaged cells,
    joinable to its tables) is not generated. Returns the directory.
    """
    imaged = make_imaged_cells(np.random.default_rng([seed, 0x1DD]))
    out_dir = Path(data_dir) / SESSIONS_SUBDIR
    write_sessions(out_dir, imaged, seed, force=force, log=log)
    return out_dir


if __name__ == "__main__":  # python -m offline_cave.generator.twophoton.sessions [data_dir] [seed]
    import sys

    ensure_sessions(sys.argv[1] if len(sys.argv) > 1 else "sample-data",
                    int(sys.argv[2]) if len(sys.argv) > 2 else 0)
