"""What checking a sample's checksums costs ``serve`` and ``exec`` at start.

    python benchmarks/bench_verify.py [--data sample-data] [--reps 3] [--cold]

Prints, for the datastacks under ``--data``:

* hash throughput of SHA-256 and BLAKE2b on the sample's files (one thread, page cache warm),
  which is why the manifest keeps SHA-256;
* a first start: every file hashed (``contract.files.verify_files`` with its worker threads;
  also with one thread), from the page cache and, with ``--cold``, after dropping the sample's
  pages from it (``posix_fadvise(DONTNEED)`` on its files only: the read comes from disk);
* a later start: the verified stamp matches, only ``stat`` calls;
* ``prepare_data`` as ``serve`` runs it before listening, with the stamp in place.

The stamps are written to a temporary directory, never into ``--data``, so any sample can be
measured, a read-only one too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from offline_cave.contract import files as files_mod
from offline_cave.contract import layout
from offline_cave.prepare import damaged, prepare_data


def listed(ds_dir: Path) -> dict[str, dict]:
    return json.loads((ds_dir / layout.MANIFEST).read_text())["files"]


def drop_from_page_cache(ds_dirs: list[Path]) -> None:
    for ds in ds_dirs:
        for rel in listed(ds):
            fd = os.open(ds / rel, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def throughput(ds_dirs: list[Path], algo: str) -> float:
    """MB/s of ``algo`` over every listed file, one thread."""
    total, t0 = 0, time.perf_counter()
    for ds in ds_dirs:
        for rel, entry in listed(ds).items():
            with open(ds / rel, "rb") as fh:
                hashlib.file_digest(fh, algo)
            total += entry["bytes"]
    return total / 1e6 / (time.perf_counter() - t0)


def first_start(ds_dirs: list[Path], stamps: Path) -> float:
    """Seconds to verify every datastack with no stamp (what the first start after a build
    costs)."""
    for stamp in stamps.glob("*"):
        stamp.unlink()
    t0 = time.perf_counter()
    for ds in ds_dirs:
        problem = damaged(ds)
        if problem is not None:
            sys.exit(f"{ds.name} is damaged: {problem}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("sample-data"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cold", action="store_true",
                    help="also time a first start with the sample's pages dropped from the cache")
    args = ap.parse_args()
    ds_dirs = layout.find_datastacks(args.data)
    if not ds_dirs:
        sys.exit(f"no sample under {args.data}")
    n_files = sum(len(listed(ds)) for ds in ds_dirs)
    size_mb = sum(e["bytes"] for ds in ds_dirs for e in listed(ds).values()) / 1e6
    print(f"{', '.join(ds.name for ds in ds_dirs)} under {args.data}: {n_files} files, "
          f"{size_mb:.0f} MB; {os.cpu_count()} cores; {files_mod.HASH_WORKERS} hash threads")

    stamps = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    layout.verified_stamp = lambda ds_dir: stamps / f"{Path(ds_dir).name}.verified.json"
    # every module reads the stamp path through offline_cave.contract.layout
    throughput(ds_dirs, "sha256")  # warm the page cache
    for algo in ("sha256", "blake2b"):
        rates = [throughput(ds_dirs, algo) for _ in range(args.reps)]
        print(f"  {algo:8s} one thread, warm cache: {max(rates):6.0f} MB/s (best of {args.reps})")

    warm = [first_start(ds_dirs, stamps) for _ in range(args.reps)]
    print(f"first start, every file hashed, warm cache: {min(warm):.2f} s "
          f"(median {sorted(warm)[len(warm) // 2]:.2f} s, {size_mb / min(warm):.0f} MB/s)")
    workers = files_mod.HASH_WORKERS
    files_mod.HASH_WORKERS = 1
    single = [first_start(ds_dirs, stamps) for _ in range(args.reps)]
    files_mod.HASH_WORKERS = workers
    print(f"  the same with one hash thread: {min(single):.2f} s "
          f"(ratio {min(single) / min(warm):.2f})")
    if args.cold:
        colds = []
        for _ in range(args.reps):
            drop_from_page_cache(ds_dirs)
            colds.append(first_start(ds_dirs, stamps))
        print(f"first start, every file hashed, read from disk: {min(colds):.2f} s "
              f"(median {sorted(colds)[len(colds) // 2]:.2f} s)")

    first_start(ds_dirs, stamps)  # leaves the stamps of a verified sample
    later = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        for ds in ds_dirs:
            assert damaged(ds) is None
        later.append(time.perf_counter() - t0)
    print(f"later start, stamp matches (stat only): {min(later) * 1000:.1f} ms")
    t0 = time.perf_counter()
    prepare_data(args.data, datastacks=[ds.name for ds in ds_dirs], generate=False)
    print(f"prepare_data before serve listens, with the stamp: "
          f"{(time.perf_counter() - t0) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
