"""Small file helpers shared by the generator, the session writer and the server."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

HASH = "sha256"
"""The manifest's checksum. SHA-256 rather than BLAKE2b: with the SHA extensions of current
x86 CPUs OpenSSL's SHA-256 hashes about 1.6 GB/s here against 0.9 GB/s for hashlib's BLAKE2b
(``benchmarks/bench_verify.py`` measures both)."""
HASH_WORKERS = 2
"""Files hashed at once: hashlib releases the GIL, and a machine has at least two cores."""
RACY_NS = 2_000_000_000
"""A file changed less than this before it was hashed gets no stamp: a second write within the
file system's timestamp granularity would not change its stat (git's "racily clean" case)."""


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, HASH).hexdigest()


def file_entry(path: Path) -> dict:
    """The manifest entry of a file: its checksum and size."""
    return {"sha256": sha256(path), "bytes": path.stat().st_size}


def stat_key(st: os.stat_result) -> list[int]:
    """What changes whenever a file's bytes can have changed: device, inode, size, mtime and
    ctime (ctime cannot be set back by ``touch``; a rewrite, copy or rename onto it changes the
    inode or ctime)."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def verify_files(root: Path, files: dict[str, dict], deep: bool = True,
                 verified: dict[str, dict] | None = None) -> str | None:
    """Why the files listed in a manifest are unusable, or ``None`` when all are intact.

    ``files`` maps paths relative to ``root`` to ``file_entry`` dicts. Sizes are always
    checked first, for every file (missing and truncated files are found without reading
    anything); with ``deep`` every file is then hashed and compared with its checksum (bit
    flips, same-size edits). ``verified`` (deep only) maps paths to ``{"key": stat_key,
    "sha256": ...}`` of files hashed before: a file whose stat key and manifest checksum still
    match its record is not read again; every file found intact is recorded in it (except one
    changed moments ago, see ``RACY_NS``). The first damaged file in manifest order is named.
    """
    stats: dict[str, os.stat_result] = {}
    for rel, entry in files.items():
        try:
            st = (root / rel).stat()
        except OSError:
            return f"missing file {rel}"
        if not stat.S_ISREG(st.st_mode):
            return f"missing file {rel}"
        if st.st_size != entry["bytes"]:
            return f"file {rel} has the wrong size (truncated or modified)"
        stats[rel] = st
    if not deep:
        return None
    known = verified if verified is not None else {}
    todo = [rel for rel in files
            if known.get(rel) != {"key": stat_key(stats[rel]), "sha256": files[rel]["sha256"]}]
    started = time.time_ns()

    def hash_one(rel: str) -> tuple[str, str | OSError, os.stat_result | None]:
        try:
            digest = sha256(root / rel)
            return rel, digest, (root / rel).stat()
        except OSError as exc:
            return rel, exc, None

    with ThreadPoolExecutor(HASH_WORKERS) as pool:
        for rel, digest, after in pool.map(hash_one, todo):
            if isinstance(digest, OSError):
                pool.shutdown(wait=True, cancel_futures=True)
                return f"file {rel} cannot be read ({digest.strerror or digest})"
            if digest != files[rel]["sha256"]:
                known.pop(rel, None)
                pool.shutdown(wait=True, cancel_futures=True)
                return f"file {rel} does not match its checksum (corrupt)"
            key = stat_key(stats[rel])
            if (verified is not None and stat_key(after) == key
                    and max(key[3], key[4]) < started - RACY_NS):
                verified[rel] = {"key": key, "sha256": digest}
    return None


def read_verified(path: Path) -> dict[str, dict]:
    """The records of :func:`verify_files` stored at ``path`` (empty when missing or unreadable:
    everything is then hashed again)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    records = data.get("files") if isinstance(data, dict) else None
    return dict(records) if isinstance(records, dict) else {}


def write_verified(path: Path, records: dict[str, dict]) -> bool:
    """Store ``records`` at ``path``; False when it cannot be written (a read-only directory:
    then every start hashes the sample again)."""
    try:
        write_atomic(Path(path), (json.dumps({"format": 1, "files": records}, sort_keys=True)
                                  + "\n").encode(), mode=0o644)
    except OSError:
        return False
    return True


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace`` (no torn reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@contextmanager
def building_dir(dest: Path) -> Iterator[Path]:
    """A fresh temporary directory next to ``dest`` to build into; removed if the block fails.

    Use with :func:`swap_in` at the end of the block, so ``dest`` is never half-written.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(dest), dir=dest.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_in(tmp: Path, dest: Path) -> None:
    """Replace the directory ``dest`` by ``tmp`` (same parent): the old one is moved aside
    first and deleted after, so ``dest`` is always either the old or the new directory."""
    tmp, dest = Path(tmp), Path(dest)
    old = None
    if dest.exists():
        old = dest.parent / f"{_old_prefix(dest)}{os.getpid()}"
        dest.rename(old)
    tmp.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _tmp_prefix(dest: Path) -> str:
    return f".{dest.name}.tmp-"


def _old_prefix(dest: Path) -> str:
    return f".{dest.name}.old-"


def stale_build_dirs(dest: Path) -> list[Path]:
    """The directories :func:`building_dir` and :func:`swap_in` leave next to ``dest`` when
    their process is killed mid-build. Only a caller that holds the lock every builder of
    ``dest`` takes (``generator.cache.sample_lock``) may remove them: then none is in use."""
    dest = Path(dest)
    if not dest.parent.is_dir():
        return []
    prefixes = (_tmp_prefix(dest), _old_prefix(dest))
    return sorted(p for p in dest.parent.iterdir()
                  if p.name.startswith(prefixes) and p.is_dir() and not p.is_symlink())


def remove_stale_build_dirs(dest: Path) -> list[Path]:
    """Remove :func:`stale_build_dirs` (best effort); return those that are gone."""
    removed = []
    for path in stale_build_dirs(dest):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            removed.append(path)
    return removed
