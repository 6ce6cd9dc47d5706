"""Generation wall time and peak memory per ``--scale``, per stage, and the largest scale.

usage: python benchmarks/bench_scale.py [--scales 1 2 4] [--datastack minnie65_public]
                                        [--out DIR] [--memory-gb 24]

Each scale runs ``python -m offline_cave generate --force`` in a fresh subprocess while a
thread samples its resident memory (``/proc/PID/status`` VmRSS, every 0.2 s), so the peak is
the process's own, not the maximum over earlier children. The generator's progress lines
(``  stage: ... [t s, peak G GB]``) give the peak reached by the end of each stage, so the
stage that sets the peak can be read off. Prints one line per scale, the per-stage peaks, the
least-squares slope (GB and s per unit of scale) and the largest scale whose predicted peak
fits in ``--memory-gb`` less 2 GB for the system. The machines are shared: absolute times vary
with the load; the memory figures do not.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_STAGE = re.compile(r"^\s+([a-z0-9 -]+):.*\[([0-9.]+) s, peak ([0-9.]+) GB\]")


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(scale: float, datastack: str, out: Path) -> dict:
    """Generate ``datastack`` at ``scale`` into ``out``; wall time, peak RSS, stage peaks."""
    env_path = f"{REPO / 'src'}:{REPO}"
    cmd = [sys.executable, "-m", "offline_cave", "generate", "--datastack", datastack,
           "--scale", f"{scale:g}", "--out", str(out), "--force", "--skip-resource-check"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**__import__("os").environ, "PYTHONPATH": env_path})
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _rss_kb(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stages: list[tuple[str, float, float]] = []
    lines = []
    for line in proc.stdout:
        lines.append(line)
        m = _STAGE.match(line)
        if m:
            stages.append((m.group(1), float(m.group(2)), float(m.group(3))))
    proc.wait()
    sampler.join()
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"generation failed at scale {scale}:\n{''.join(lines[-30:])}")
    manifest = json.loads((out / datastack / "MANIFEST.json").read_text())
    size = sum(e["bytes"] for e in manifest["files"].values())
    return {"scale": scale, "seconds": elapsed, "peak_gb": peak[0] * 1024 / 1e9,
            "disk_gb": size / 1e9, "stages": stages, **manifest["summary"]}


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of ys on xs."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - slope * mx, slope


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--datastack", default="minnie65_public")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the samples under DIR/scale-S (default: temporary)")
    parser.add_argument("--memory-gb", type=float, default=24.0)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for scale in sorted(args.scales):
            out = (args.out or Path(tmp)) / f"scale-{scale:g}"
            row = run(scale, args.datastack, out)
            rows.append(row)
            print(f"scale {scale:>4g}: {row['seconds']:7.1f} s  peak RSS {row['peak_gb']:5.2f} GB"
                  f"  disk {row['disk_gb']:5.2f} GB  synapses {row['synapses']:>10}  "
                  f"nuclei {row['nuclei']:>7}", flush=True)
            prev = None
            for name, t, p in row["stages"]:
                mark = "  <- raises the peak" if prev is not None and p > prev + 0.05 else ""
                print(f"    {name:<14} at {t:7.1f} s  peak so far {p:5.2f} GB{mark}")
                prev = p if prev is None else max(prev, p)
            if args.out is None:
                import shutil

                shutil.rmtree(out, ignore_errors=True)
    if len(rows) < 2:
        return 0
    xs = [r["scale"] for r in rows]
    base_gb, per_gb = fit(xs, [r["peak_gb"] for r in rows])
    base_s, per_s = fit(xs, [r["seconds"] for r in rows])
    _, per_disk = fit(xs, [r["disk_gb"] for r in rows])
    print(f"per unit of scale: peak {per_gb:+.2f} GB (intercept {base_gb:.2f} GB), "
          f"time {per_s:+.0f} s (intercept {base_s:.0f} s), disk {per_disk:+.2f} GB")
    for r in rows[1:]:
        print(f"scale {r['scale']:g} / {rows[0]['scale']:g}: time x{r['seconds'] / rows[0]['seconds']:.2f}"
              f", peak x{r['peak_gb'] / rows[0]['peak_gb']:.2f}, synapses "
              f"x{r['synapses'] / rows[0]['synapses']:.2f}")
    budget = args.memory_gb - 2.0
    if per_gb > 0:
        largest = (budget - base_gb) / per_gb
        print(f"largest scale in {args.memory_gb:g} GB ({budget:g} GB for the generator, "
              f"extrapolated linearly): {largest:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
