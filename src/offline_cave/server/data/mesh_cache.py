"""The bounded on-disk cache of built mesh fragments: a size cap, LRU eviction, a disk margin.

A mesh is built from its skeleton on first request (:mod:`offline_cave.server.data.mesh`,
about 470 KB a neuron; every cell of the default sample would be ~7 GB), so any client could
fill the disk by asking for every root. One :class:`MeshCache` per server holds the fragment
files of every datastack (``<datastack>/cache/meshes-v<N>/nucleus_<id>.frag``) and keeps them

* under ``max_bytes`` in total (``serve --mesh-cache-bytes``, default 1 GiB): the least
  recently served fragments are deleted first to make room;
* clear of the disk's last free bytes: a write never leaves less than
  :func:`free_margin` free (2 GiB or 5 % of the disk, whichever is smaller), checked with
  :func:`shutil.disk_usage` before every write; if evicting cannot make that room, the mesh
  is served from memory and not written.

Fragments already on disk when the server starts (from an earlier run, or of an older mesh
builder version, which is never served again) are counted on the first mesh request, oldest
first, so a restart never lets the cache grow past the cap; a ``max_bytes`` of 0 writes
nothing. The
accounting is per server process: two servers on one data directory may hold twice the cap
between them (the disk margin still holds for both).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections import OrderedDict
from pathlib import Path

from offline_cave.contract.files import write_atomic

log = logging.getLogger("offline_cave.server")

DEFAULT_MESH_CACHE_BYTES = 1 << 30
"""Default cap of the mesh cache: 1 GiB (about 2,200 neuron meshes)."""
FREE_MARGIN_BYTES = 2 << 30
FREE_MARGIN_FRACTION = 0.05
_FRAGMENTS = "meshes-v*/nucleus_*.frag"


def free_margin(total_bytes: int) -> int:
    """Free disk a cache write must leave: 2 GiB or 5 % of the disk, whichever is smaller."""
    return int(min(FREE_MARGIN_BYTES, FREE_MARGIN_FRACTION * total_bytes))


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (what :func:`shutil.disk_usage` can stat)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


class MeshCache:
    """Fragment files under ``cache_dirs`` (each a datastack's ``cache/``), at most
    ``max_bytes`` in total, least recently served evicted first; see the module docstring."""

    def __init__(self, cache_dirs: list[Path], max_bytes: int = DEFAULT_MESH_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"the mesh cache size must be >= 0 bytes; got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.cache_dirs = [Path(d) for d in cache_dirs]
        self._lock = threading.Lock()
        self._entries: OrderedDict[Path, int] = OrderedDict()  # least recently served first
        self.total = 0
        self._scanned = False
        self._warned: set[str] = set()

    # ---- bookkeeping
    def _scan(self) -> None:
        """Count the fragments already on disk (under the lock), oldest first."""
        if self._scanned:
            return
        self._scanned = True
        found: list[tuple[float, Path, int]] = []
        for d in self.cache_dirs:
            try:
                for path in d.glob(_FRAGMENTS):
                    st = path.stat()
                    found.append((st.st_mtime, path, st.st_size))
            except OSError as exc:
                log.warning("cannot list the mesh cache %s: %s", d, exc)
        for _, path, size in sorted(found, key=lambda f: (f[0], str(f[1]))):
            self._entries[path] = size
            self.total += size
        self._shrink(0)

    def _forget(self, path: Path) -> None:
        size = self._entries.pop(path, None)
        if size is not None:
            self.total -= size

    def _evict_oldest(self) -> int:
        """Delete the least recently served fragment; the bytes it freed (0 if none left)."""
        path, size = self._entries.popitem(last=False)
        self.total -= size
        try:
            path.unlink()
        except FileNotFoundError:
            return 0
        except OSError as exc:  # read-only or vanished directory: no room won
            log.warning("cannot evict cached mesh %s: %s", path, exc)
            return 0
        return size

    def _shrink(self, room_for: int) -> None:
        """Evict until ``room_for`` more bytes fit under the cap."""
        while self._entries and self.total + room_for > self.max_bytes:
            self._evict_oldest()

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    # ---- the cache
    def get(self, path: Path) -> bytes | None:
        """The cached bytes of ``path`` (marked as just served), or None."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            with self._lock:
                self._forget(path)
            return None
        with self._lock:
            self._scan()
            if path in self._entries:
                self._entries.move_to_end(path)
            else:  # written by another server on this data directory
                self._entries[path] = len(data)
                self.total += len(data)
        return data

    def put(self, path: Path, data: bytes) -> bool:
        """Cache ``data`` as ``path`` if it fits under the cap and the disk margin (evicting
        the least recently served first); False when it was not written."""
        need = len(data)
        with self._lock:
            self._scan()
            self._forget(path)  # a damaged file being replaced
            if need > self.max_bytes:
                if self.max_bytes:
                    self._warn_once("cap", "a %d-byte mesh is larger than the mesh cache "
                                    "(serve --mesh-cache-bytes %d); served without caching",
                                    need, self.max_bytes)
                return False
            self._shrink(need)
            try:
                usage = shutil.disk_usage(_existing(path.parent))
            except OSError as exc:
                self._warn_once("stat", "cannot check the free disk for the mesh cache "
                                "(%s); meshes are served without caching", exc)
                return False
            margin = free_margin(usage.total)
            free = usage.free
            while free - need < margin and self._entries:
                free += self._evict_oldest()
            if free - need < margin:
                self._warn_once("disk", "only %.1f GB free on the disk of %s (a cached mesh "
                                "must leave %.1f GB); meshes are served without caching "
                                "until there is room", usage.free / 1e9, path.parent,
                                margin / 1e9)
                return False
            try:
                write_atomic(path, data)
            except OSError as exc:  # read-only data directory, or the disk filled meanwhile
                self._warn_once("write", "cannot cache mesh %s (%s); meshes are served "
                                "without caching", path, exc)
                return False
            self._entries[path] = need
            self.total += need
            return True

    def discard(self, path: Path) -> None:
        """Forget (and delete) a damaged fragment."""
        with self._lock:
            self._forget(path)
        try:
            os.unlink(path)
        except OSError:
            pass
