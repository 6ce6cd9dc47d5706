"""The sample cache: parameter checks, the generator digest, verification, one build at a time.

``ensure_sample`` returns a complete, current sample directory, building it with the build
function it is given (``pipeline.build_into``) in a temporary directory that is swapped in
atomically (``contract.files.swap_in``) only once its MANIFEST.json is written.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from offline_cave.contract import layout
from offline_cave.contract.files import (
    building_dir,
    remove_stale_build_dirs,
    stale_build_dirs,
    swap_in,
    verify_files,
)
from offline_cave.contract.params import DATASTACKS, DatastackParams
from offline_cave.generator import resources

MAX_SCALE = 40.0
MIN_SCALE = 0.02
_DIGESTED_PACKAGES = ("contract", "generator")  # what the sample's bytes can depend on

# build_into(params, seed, scale, target_dir, log) -> (summary, manifest file entries)
BuildInto = Callable[[DatastackParams, int, float, Path, Callable], tuple[dict, dict]]


class SampleError(RuntimeError):
    """A sample cannot be generated or read (bad parameters, corrupt files)."""


def generator_digest() -> str:
    """Digest of the generator's source (and of the contract it writes to): any change to the
    code invalidates cached samples. Every ``.py`` file under the packages counts. It is the
    digest of the code this process loaded (read once, when this module is imported): a
    build still running old code while its files are edited must not stamp its sample with
    the new code's digest."""
    return _DIGEST_AT_IMPORT


def source_digest() -> str:
    """Digest of the generator's source files as they are on disk now."""
    digest = hashlib.sha256(layout.GENERATOR_VERSION.encode())
    root = Path(__file__).resolve().parents[1]
    for package in _DIGESTED_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


_DIGEST_AT_IMPORT = source_digest()


def check(ds_dir: Path, params: DatastackParams, seed: int, scale: float,
          deep: bool = True) -> str | None:
    """Why the sample in ``ds_dir`` cannot be used (``None`` when it is complete and current)."""
    manifest_path = ds_dir / layout.MANIFEST
    if not manifest_path.is_file():
        return "no MANIFEST.json (missing or partial sample)"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        return f"unreadable MANIFEST.json ({exc})"
    if (manifest.get("generator_version") != layout.GENERATOR_VERSION
            or manifest.get("generator_digest") != generator_digest()):
        return (f"made by another generator ({manifest.get('generator_version')}, "
                f"{manifest.get('generator_digest')}); this is {layout.GENERATOR_VERSION}, "
                f"{generator_digest()}")
    if manifest.get("params_hash") != params.params_hash(seed, scale):
        return (f"made with other parameters (seed {manifest.get('seed')}, scale "
                f"{manifest.get('scale')})")
    return verify_files(ds_dir, manifest.get("files", {}), deep=deep)


@contextmanager
def sample_lock(data_dir: Path, datastack: str) -> Iterator[None]:
    """One generator per sample at a time (parallel test workers, a server and a notebook run
    may all ask for the same sample): the others wait, then find it cached."""
    with open(Path(data_dir) / f".{datastack}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def remove_stale_builds(data_dir: Path, datastack: str) -> list[Path]:
    """Remove what killed builds of ``datastack`` left in ``data_dir`` (``.NAME.tmp-*``,
    ``.NAME.old-*``), if no build is running: every build holds :func:`sample_lock`, so when
    it is free nobody uses them; when it is taken they are left for that build to finish.
    Best effort: a read-only directory keeps them. Returns the directories removed."""
    ds_dir = layout.datastack_dir(data_dir, datastack)
    if not stale_build_dirs(ds_dir):
        return []
    try:
        with open(Path(data_dir) / f".{datastack}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return []
            try:
                return remove_stale_build_dirs(ds_dir)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    except OSError:
        return []


def ensure_sample(build_into: BuildInto, data_dir: str | Path,
                  datastack: str = "minnie65_public", seed: int = 0, scale: float = 1.0,
                  force: bool = False, deep: bool = True, log=print,
                  check_resources: bool = True) -> Path:
    """Return the directory of a complete, current sample, generating it if needed.

    A missing, partial, outdated or corrupt sample is rebuilt in a temporary directory and
    swapped in atomically, so a crash never leaves a half-written sample in place. Before a
    build, the memory and disk it needs are checked (:mod:`offline_cave.generator.resources`); a
    build that cannot fit raises :class:`SampleError` and leaves any existing sample as it was.
    """
    params = validated_params(datastack, seed, scale)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with sample_lock(data_dir, datastack):
        return _ensure_locked(build_into, data_dir, datastack, params, seed, scale, force, deep,
                              log, check_resources)


def _ensure_locked(build_into: BuildInto, data_dir: Path, datastack: str,
                   params: DatastackParams, seed: int, scale: float, force: bool, deep: bool,
                   log, check_resources: bool) -> Path:
    ds_dir = layout.datastack_dir(data_dir, datastack)
    for path in remove_stale_build_dirs(ds_dir):  # left by a killed build; we hold the lock
        log(f"{datastack}: removed {path.name}, left by an interrupted build")
    reason = "forced" if force else check(ds_dir, params, seed, scale, deep=deep)
    if reason is None:
        log(f"{datastack}: cached sample in {ds_dir} (seed {seed}, scale {scale:g})")
        return ds_dir
    if check_resources:
        try:
            resources.check_resources(datastack, scale, data_dir)
        except resources.InsufficientResources as exc:
            raise SampleError(str(exc)) from None
    if ds_dir.exists():
        log(f"{datastack}: rebuilding {ds_dir}: {reason}")
    t0 = time.perf_counter()
    log(f"{datastack}: generating the synthetic sample (seed {seed}, scale {scale:g}) ...")
    with building_dir(ds_dir) as tmp:
        summary, files = build_into(params, seed, scale, tmp, log)
        manifest = {
            "generator_version": layout.GENERATOR_VERSION, "generator_digest": generator_digest(),
            "datastack": datastack, "seed": seed,
            "scale": scale, "params_hash": params.params_hash(seed, scale),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "elapsed_s": round(time.perf_counter() - t0, 2), "summary": summary,
            "files": files,
        }
        (tmp / layout.MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        swap_in(tmp, ds_dir)
    size_mb = sum(e["bytes"] for e in files.values()) / 1e6
    log(f"{datastack}: wrote {ds_dir} ({size_mb:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    return ds_dir


def validated_params(datastack: str, seed: int, scale: float) -> DatastackParams:
    """The parameters of ``datastack``; :class:`SampleError` for a bad name, seed or scale."""
    if datastack not in DATASTACKS:
        raise SampleError(f"unknown datastack {datastack!r}; the sample has "
                          f"{', '.join(sorted(DATASTACKS))}")
    if not isinstance(seed, int) or seed < 0:
        raise SampleError(f"seed must be a non-negative integer, got {seed!r}")
    if not (MIN_SCALE <= scale <= MAX_SCALE):
        raise SampleError(f"scale must be between {MIN_SCALE} and {MAX_SCALE}, got {scale}")
    return DATASTACKS[datastack]
