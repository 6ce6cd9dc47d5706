"""Time, memory and file sizes of the synthetic V1DD two-photon sessions.

Usage::

    .venv/bin/python benchmarks/bench_sessions.py                      # 3 sessions, 60-90 ROIs/plane
    .venv/bin/python benchmarks/bench_sessions.py --sessions 4 --rois 120

Builds the stand-in imaged-cell frame (``offline_cave.generator.twophoton.sessions.make_imaged_cells``), then per
session times the simulation (``physiology.simulate_session``) and the NWB write
(``physiology.write_nwb``) separately, and reports the file size and the storage of its
largest datasets. Finally times ``write_sessions`` end to end (with manifest and hashes) and
the cached second call. Prints wall times, peak RSS increase (psutil, sampled every 50 ms).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import psutil

from offline_cave.generator.twophoton import model as phys
from offline_cave.generator.twophoton.sessions import make_imaged_cells, write_sessions


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


def storage_by_kind(path: Path) -> Counter:
    """Bytes on disk per dataset kind (plane datasets pooled over planes)."""
    sizes: Counter = Counter()

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset):
            parts = name.split("/")
            if parts[0] == "processing" and parts[1].startswith("plane-"):
                key = "plane-*/" + "/".join(parts[2:4])
            elif parts[0] == "stimulus":
                key = "/".join(parts[:3])
            else:
                key = "/".join(parts[:3])
            sizes[key] += obj.id.get_storage_size()

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--rois", type=int, default=None,
                        help="ROIs per plane (default: 60-90 drawn per plane)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng([args.seed, 0x1DD])
    per_plane = args.rois if args.rois is not None else (60, 90)
    imaged = make_imaged_cells(rng, n_sessions=args.sessions, rois_per_plane=per_plane)
    print(f"{len(imaged)} ROIs in {args.sessions} sessions")
    df = phys.validate_imaged(imaged)
    ref = (float(df["x_um"].mean()), float(df["z_um"].mean()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for (column, volume), rows in df.groupby(["column", "volume"]):
            with PeakRSS() as mem:
                t0 = time.perf_counter()
                data = phys.simulate_session(rows, args.seed, ref)
                t1 = time.perf_counter()
                path = phys.write_nwb(data, tmp / data.meta.file_name)
                t2 = time.perf_counter()
            frames = data.planes[0].timestamps.size
            print(f"column {column} volume {volume}: {len(rows)} ROIs x {frames} frames, "
                  f"simulate {t1 - t0:.1f} s, write {t2 - t1:.1f} s, "
                  f"{path.stat().st_size / 1e6:.1f} MB, "
                  f"peak RSS +{(mem.peak - mem.base) / 1e6:.0f} MB")
            for key, size in storage_by_kind(path).most_common(4):
                print(f"    {size / 1e6:6.2f} MB  {key}")
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            paths = write_sessions(tmp / "v1dd_sessions", imaged, args.seed)
            t1 = time.perf_counter()
            write_sessions(tmp / "v1dd_sessions", imaged, args.seed)
            t2 = time.perf_counter()
        total = sum(p.stat().st_size for p in paths) / 1e6
        print(f"write_sessions: {len(paths)} files, {total:.1f} MB in {t1 - t0:.1f} s "
              f"(cached call {t2 - t1:.2f} s), peak RSS +{(mem.peak - mem.base) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
