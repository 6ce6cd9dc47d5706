"""A bounded in-memory cache of whole query responses, shared by every request thread.

A class runs the same page at the same time, so most of its materialize queries are
byte-for-byte the same request (the page's example cell, its cell-type table). The sample is
read-only while it is served (its files were verified before serving), so the answer to one
request never changes: the first request computes it, and every identical request gets the
same bytes without running DuckDB again. Identical requests that arrive together wait for the
first one instead of all computing it (one computation per key).

The key is the request's path, its query string (sorted), its body bytes and the server's
current :class:`~offline_cave.server.limits.Limits` (a changed limit can change the answer).
Only 200 answers are kept; an answer larger than ``max_entry_bytes`` is sent but not kept.
The cache holds at most ``max_bytes`` of bodies and headers (least recently used evicted
first); ``max_bytes=0`` disables it. Tunable on ``serve --response-cache-bytes``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_RESPONSE_CACHE_BYTES = 256 << 20
"""Default memory for cached responses (a synapse query of one neuron is ~50-200 KB)."""
MAX_ENTRY_FRACTION = 16
"""An answer larger than ``max_bytes / MAX_ENTRY_FRACTION`` is not kept."""


@dataclass(frozen=True)
class CachedResponse:
    """What is needed to send a 200 response again: its body and raw headers (without
    ``content-length``, which the replay computes)."""

    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]

    @property
    def nbytes(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + 200


def request_key(path: str, query: dict[str, str], body: bytes, extra: object = None) -> bytes:
    """A fixed-size digest of everything that decides a query's answer."""
    h = hashlib.blake2b(digest_size=20)
    for part in (path, repr(sorted(query.items())), repr(extra)):
        data = part.encode("utf-8", "backslashreplace")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    h.update(len(body).to_bytes(8, "little"))
    h.update(body)
    return h.digest()


class ResponseCache:
    """Least-recently-used responses bounded by bytes; thread-safe; one computation per key."""

    def __init__(self, max_bytes: int = DEFAULT_RESPONSE_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"response cache size must be >= 0; got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.max_entry_bytes = self.max_bytes // MAX_ENTRY_FRACTION
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, CachedResponse] = OrderedDict()
        self._computing: dict[bytes, threading.Lock] = {}
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, key: bytes) -> CachedResponse | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
            return entry

    def _put(self, key: bytes, entry: CachedResponse) -> None:
        size = entry.nbytes
        if size > self.max_entry_bytes:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = entry
            self.nbytes += size
            while self.nbytes > self.max_bytes and self._entries:
                _, old = self._entries.popitem(last=False)
                self.nbytes -= old.nbytes

    def get_or_compute(self, key: bytes,
                       compute: Callable[[], tuple[CachedResponse | None, object]]
                       ) -> tuple[CachedResponse | None, object]:
        """``(cached, None)`` on a hit, else ``compute()``'s ``(entry or None, response)``.

        ``compute`` returns the entry to keep (None: do not keep, e.g. an error) and the
        response to send. An exception in ``compute`` propagates and keeps nothing.
        """
        if self.max_bytes == 0:
            return compute()
        entry = self._get(key)
        if entry is not None:
            return entry, None
        with self._lock:
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            entry = self._get(key)
            if entry is not None:  # computed by the request this one waited for
                return entry, None
            with self._lock:
                self.misses += 1
            try:
                entry, response = compute()
                if entry is not None:
                    self._put(key, entry)
                return entry, response
            finally:
                with self._lock:
                    if self._computing.get(key) is gate:
                        del self._computing[key]
