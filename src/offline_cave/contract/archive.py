"""A deterministic zip of a directory, for moving a Zarr store (a directory) as one file.

The V1DD sessions are Zarr NWB stores: a directory of ~1,500 small files per session
(datasets-facts §4.1). The generator writes the store as a directory (what ``pynwb.read_nwb``
opens) and records the size and SHA-256 of its archive; the server streams the same archive,
made by the same function from the same files, so the students' download can be checked
against the manifest as one file and unpacked into a readable store.

``iter_archive(root, members)`` yields the bytes of a zip of ``members`` (paths relative to
``root``, stored under those names) in the order given: no compression (Zarr chunks are
compressed already), every date 1980-01-01, mode 0644, so the same files give the same bytes.
It writes to an unseekable sink, so entries carry data descriptors; ``zipfile`` reads them.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

ARCHIVE_SUFFIX = ".zip"
_DATE = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1 << 20


class _Sink:
    """An unseekable file object collecting what ``zipfile`` writes."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.pos = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:  # zipfile asks for offsets; seeking is refused (seekable False)
        return self.pos

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def tree_members(root: Path, folder: str) -> list[str]:
    """Every file under ``root/folder`` as a POSIX path relative to ``root``, sorted."""
    base = Path(root)
    return sorted(p.relative_to(base).as_posix() for p in (base / folder).rglob("*")
                  if p.is_file())


def iter_archive(root: Path, members: Sequence[str]) -> Iterator[bytes]:
    """The bytes of the zip of ``members`` (relative to ``root``), in pieces of ~1 MiB."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zf:
        for rel in members:
            info = zipfile.ZipInfo(rel, date_time=_DATE)
            info.external_attr = 0o100644 << 16
            info.create_system = 3  # unix, whatever the host
            with (Path(root) / rel).open("rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
                    if len(sink.parts) > 16:
                        yield sink.take()
            yield sink.take()
    yield sink.take()


def archive_entry(root: Path, members: Sequence[str]) -> dict:
    """``{"sha256", "bytes"}`` of ``iter_archive(root, members)`` (computed, not written)."""
    digest, size = hashlib.sha256(), 0
    for piece in iter_archive(root, members):
        digest.update(piece)
        size += len(piece)
    return {"sha256": digest.hexdigest(), "bytes": size}

