"""Small file helpers shared by the generator, the session writer and the server."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def file_entry(path: Path) -> dict:
    """The manifest entry of a file: its checksum and size."""
    return {"sha256": sha256(path), "bytes": path.stat().st_size}


def verify_files(root: Path, files: dict[str, dict], deep: bool = True) -> str | None:
    """Why the files listed in a manifest are unusable, or ``None`` when all are intact.

    ``files`` maps paths relative to ``root`` to ``file_entry`` dicts. Sizes are always
    checked (truncation); checksums too when ``deep`` (bit flips, edits).
    """
    for rel, entry in files.items():
        path = root / rel
        if not path.is_file():
            return f"missing file {rel}"
        if path.stat().st_size != entry["bytes"]:
            return f"file {rel} has the wrong size (truncated or modified)"
        if deep and sha256(path) != entry["sha256"]:
            return f"file {rel} does not match its checksum (corrupt)"
    return None


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
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
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
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        dest.rename(old)
    tmp.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
