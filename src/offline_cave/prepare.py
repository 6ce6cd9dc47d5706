"""Make a data directory servable: check every sample, generate or repair what is missing.

The one place where the generator and the server meet (``python -m offline_cave serve`` and
``exec``, and :func:`offline_cave.client.runner.offline_server`, call :func:`prepare_data`
before they serve). The server itself never imports the generator: it serves what is on disk.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from offline_cave.contract import layout
from offline_cave.contract.files import read_verified, verify_files, write_verified
from offline_cave.contract.params import DATASTACKS

log = logging.getLogger("offline_cave.server")


class SampleMissingError(RuntimeError):
    """No usable sample on disk, and none can be generated (no generator, bad parameters, not
    enough memory or disk)."""


def prepare_data(data_dir: Path, seed: int = 0, scale: float = 1.0,
                 datastacks: list[str] | None = None, generate: bool = True) -> list[Path]:
    """Return the servable datastack directories under ``data_dir``, generating missing ones.

    Only ``datastacks`` are looked at when given (default: every datastack directory under
    ``data_dir``, and every datastack of ``offline_cave.contract.params.DATASTACKS`` is
    generated when missing). A datastack is servable when its directory has ``MANIFEST.json``
    (written last by the generator) and every file the manifest lists has its size and its
    SHA-256 (:func:`damaged`). With ``generate`` (the default) missing datastacks are generated
    and damaged ones rebuilt with the seed and scale they were made with; with
    ``generate=False`` damaged ones are left out with a warning naming the file and the command
    that repairs it. Callers serve only the directories returned: a damaged file is never
    served. :class:`SampleMissingError` (a one-line message) when nothing is servable or a
    repair fails (no generator, not enough memory or disk, a read-only directory).
    """
    data_dir = Path(data_dir)
    usable: list[str] = []
    refused: list[str] = []
    for ds in layout.find_datastacks(data_dir):
        if datastacks and ds.name not in datastacks:
            continue
        _remove_stale_builds(data_dir, ds.name)
        t0 = time.perf_counter()
        problem = damaged(ds)
        if time.perf_counter() - t0 > 2.0:  # a first start after generation, or a big sample
            print(f"{ds.name}: checked the checksums of its files in "
                  f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        if problem is None:
            usable.append(ds.name)
            continue
        made = _manifest(ds)
        made_seed, made_scale = made.get("seed", seed), made.get("scale", scale)
        if generate and ds.name in DATASTACKS:
            log.warning("%s under %s is damaged (%s): rebuilding it", ds.name, data_dir,
                        problem)
            ensure_sample_stderr(data_dir, ds.name, int(made_seed), float(made_scale),
                                 problem=problem)
            usable.append(ds.name)
            continue
        refusal = (f"{ds.name} is damaged ({problem}) and not served; "
                   f"{repair_hint(data_dir, ds.name, made)}")
        log.warning("%s", refusal)
        refused.append(refusal)
    if generate:
        for name in datastacks or list(DATASTACKS):
            if name not in usable:
                log.warning("generating the %s sample under %s (seed %s, scale %s)", name,
                            data_dir, seed, scale)
                ensure_sample_stderr(data_dir, name, seed, scale)
                usable.append(name)
    found = [p for p in layout.find_datastacks(data_dir) if p.name in usable]
    if not found:
        raise SampleMissingError(f"no complete sample datastack under {data_dir}"
                                 + "".join(f"; {r}" for r in refused))
    return found


def repair_hint(data_dir: Path, name: str, made: dict | None = None) -> str:
    """The command that rebuilds datastack ``name`` under ``data_dir`` as ``made`` says it was
    made (its MANIFEST: seed and scale)."""
    if name not in DATASTACKS:
        return f"it is not a datastack this generator makes: replace {Path(data_dir) / name}"
    made = made or {}
    seed, scale = made.get("seed"), made.get("scale")
    # a MANIFEST too damaged to say gets generate's own defaults (seed 0, scale 1)
    if not isinstance(seed, int) or isinstance(seed, bool):
        seed = 0
    if not isinstance(scale, int | float) or isinstance(scale, bool) or scale <= 0:
        scale = 1.0
    return (f"repair it with `python -m offline_cave generate --out {data_dir} "
            f"--datastack {name} --seed {seed} --scale {scale:g}`")


def _remove_stale_builds(data_dir: Path, name: str) -> None:
    from offline_cave.generator.cache import remove_stale_builds

    for path in remove_stale_builds(data_dir, name):
        log.warning("removed %s under %s, left by an interrupted build", path.name, data_dir)


def _manifest(ds_dir: Path) -> dict:
    try:
        made = json.loads((ds_dir / layout.MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return made if isinstance(made, dict) else {}


# Why hash at start, and why keep a stamp: a same-size edit (bit rot, an editor's save, a
# half-finished copy over the old file) is found only by reading the bytes. The default sample
# (1.3 GB) hashes in 1.4-1.9 s from the page cache and 1.5-3 s from disk on two busy cores
# (benchmarks/bench_verify.py); a --scale 10 sample (13 GB) would take an estimated 10-20 s at
# those rates: cheap once, but not at every start of a classroom server. Hashing in the
# background while serving (a 503 for a file not yet verified) would buy a second or two at the
# default scale for more code and a window of refused queries. So a file that hashed correctly
# is recorded with its stat (device, inode, size, mtime, ctime: any write, copy or touch changes
# one of them) in ``layout.verified_stamp`` and hashed again only when its stat or its manifest
# entry changes. What a stamp cannot see is media corruption that leaves the metadata alone;
# `generate` hashes every file whatever the stamp says. In a read-only directory no stamp can be
# kept and every start hashes everything. Hashing ends before the first request, so no query
# can reach a file that is not yet verified.
def damaged(ds_dir: Path, deep: bool = True) -> str | None:
    """Why a datastack directory with a MANIFEST cannot be served (``None`` when intact).

    Every listed file must exist with its size; with ``deep`` (the default) also its SHA-256,
    read again only for files whose stat changed since they last matched (see above)."""
    files = _manifest(ds_dir).get("files")
    if not isinstance(files, dict) or not files:
        return f"unreadable {layout.MANIFEST}"
    stamp = layout.verified_stamp(ds_dir)
    records = read_verified(stamp) if deep else None
    before = dict(records or {})
    try:
        reason = verify_files(ds_dir, files, deep=deep, verified=records)
    except (KeyError, TypeError, AttributeError) as exc:
        return f"unreadable {layout.MANIFEST} ({type(exc).__name__}: {exc})"
    if records is not None:
        records = {rel: rec for rel, rec in records.items() if rel in files}
        if records != before:
            write_verified(stamp, records)
    return reason


def ensure_sample_stderr(data_dir: Path, name: str, seed: int, scale: float,
                         problem: str | None = None) -> None:
    """Generate (or repair) a sample, reporting on stderr: stdout is serve's URL line.

    ``problem`` is why an existing sample is rebuilt (named in the error if that fails)."""
    from offline_cave.generator.pipeline import SampleError, ensure_sample

    what = f"repair the {name} sample ({problem})" if problem else f"generate the {name} sample"
    try:
        ensure_sample(data_dir, name, seed, scale,
                      log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except SampleError as exc:
        raise SampleMissingError(f"cannot {what} under {data_dir}: {exc}") from None
    except OSError as exc:  # a read-only or full directory, a file owned by someone else
        where = f" ({exc.filename})" if exc.filename else ""
        raise SampleMissingError(
            f"cannot {what} under {data_dir}: {exc.strerror or exc}{where}; run `python -m "
            f"offline_cave generate --out {data_dir} --datastack {name} --seed {seed} --scale "
            f"{scale:g}` as a user who can write there, or serve a writable copy") from None
