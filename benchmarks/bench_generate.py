"""Generation time and peak memory of the sample at default and larger scales.

usage: python benchmarks/bench_generate.py [--scales 1 10] [--datastack minnie65_public] [--out DIR]

Each scale runs in a fresh subprocess (``python -m offline_cave generate --force``) so that its
peak resident memory can be read from the OS. Prints one line per scale and the ratios to the
first scale measured in the same run (the machines are shared; absolute times vary).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(scale: float, datastack: str, out: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "offline_cave", "generate", "--datastack", datastack,
                           "--scale", str(scale), "--out", str(out), "--force"],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"generation failed at scale {scale}:\n{proc.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    manifest = json.loads((out / datastack / "MANIFEST.json").read_text())
    size = sum(e["bytes"] for e in manifest["files"].values())
    # ru_maxrss of children is the max over all children so far: only trust it when it grew
    return {"scale": scale, "seconds": elapsed, "peak_gb": max(peak, before) / 1e6,
            "disk_mb": size / 1e6, **manifest["summary"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--datastack", default="minnie65_public")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for scale in sorted(args.scales):  # ascending, so the children's max RSS is per run
        out = args.out or Path(tempfile.mkdtemp(prefix=f"bench-gen-{scale:g}-"))
        row = run(scale, args.datastack, out)
        rows.append(row)
        print(f"scale {scale:>5g}: {row['seconds']:7.1f} s  peak {row['peak_gb']:5.2f} GB  "
              f"disk {row['disk_mb']:7.0f} MB  nuclei {row['nuclei']:>7}  "
              f"synapses {row['synapses']:>9}  skeleton vertices {row['skeleton_vertices']:>9}",
              flush=True)
    base = rows[0]
    for row in rows[1:]:
        print(f"scale {row['scale']:g} / {base['scale']:g}: time x{row['seconds'] / base['seconds']:.1f}, "
              f"memory x{row['peak_gb'] / base['peak_gb']:.1f}, synapses "
              f"x{row['synapses'] / base['synapses']:.1f}")


if __name__ == "__main__":
    main()
