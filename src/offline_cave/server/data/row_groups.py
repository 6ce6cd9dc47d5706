"""Decoded row groups of the large tables kept in memory, for queries of a few roots.

A query of one neuron's synapses (``filter_equal_dict={post_pt_root_id: root}``) reads one
row group of the synapse file (131,072 rows, sorted by that root) and finds a few hundred rows
in it; decompressing and decoding the row group is nearly all of its cost (~20 ms of CPU of
~22 ms). A class asks for the same neurons again and again, so the decoded row groups are kept
here, least recently used evicted first, bounded by bytes (about 18 MB a synapse row group).

:meth:`RowGroups.rows` returns the rows of a file whose ``column`` holds one of ``ids`` as an
Arrow table in file order: the row groups whose statistics admit an id (the same row groups
DuckDB's scan would read), each filtered to those ids. The query's own SQL then runs on that
table instead of the file, so its filters, order, limit and offset decide the answer exactly
as on the file.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DEFAULT_ROW_GROUP_CACHE_BYTES = 384 << 20
"""Memory for decoded row groups (about 20 synapse row groups of the default sample)."""
MIN_FILE_BYTES = 32 << 20
"""Files smaller than this are read by DuckDB as they are (their row groups are cheap)."""
MAX_ROW_GROUPS = 2
"""A query whose ids fall in more row groups than this reads the file as before."""


class RowGroups:
    """Row-group statistics and an LRU of decoded row groups, shared by all threads."""

    def __init__(self, max_bytes: int = DEFAULT_ROW_GROUP_CACHE_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._stats: dict[tuple[Path, str], tuple[np.ndarray, np.ndarray] | None] = {}
        self._groups: OrderedDict[tuple[Path, int], pa.Table] = OrderedDict()
        self._loading: dict[tuple[Path, int], threading.Lock] = {}
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def _minmax(self, path: Path, column: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Per row group (min, max) of an integer ``column``; None without full statistics."""
        key = (path, column)
        with self._lock:
            if key in self._stats:
                return self._stats[key]
        meta = pq.read_metadata(path)
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        out = None
        if column in names:
            j = names.index(column)
            lo, hi = [], []
            for i in range(meta.num_row_groups):
                st = meta.row_group(i).column(j).statistics
                if st is None or not st.has_min_max or not isinstance(st.min, int):
                    lo = None
                    break
                lo.append(st.min)
                hi.append(st.max)
            if lo is not None:
                out = (np.array(lo, dtype=np.int64), np.array(hi, dtype=np.int64))
        with self._lock:
            self._stats[key] = out
        return out

    def _group(self, path: Path, i: int) -> pa.Table:
        key = (path, i)
        with self._lock:
            table = self._groups.get(key)
            if table is not None:
                self._groups.move_to_end(key)
                self.hits += 1
                return table
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                table = self._groups.get(key)
                if table is not None:
                    self.hits += 1
                    return table
                self.misses += 1
            try:
                table = pq.ParquetFile(path).read_row_group(i)
                with self._lock:
                    if table.nbytes <= self.max_bytes:
                        self._groups[key] = table
                        self.nbytes += table.nbytes
                        while self.nbytes > self.max_bytes:
                            _, old = self._groups.popitem(last=False)
                            self.nbytes -= old.nbytes
                return table
            finally:
                with self._lock:
                    if self._loading.get(key) is gate:
                        del self._loading[key]

    def rows(self, path: Path, column: str, ids: list[int]) -> pa.Table | None:
        """The rows of ``path`` whose ``column`` is one of ``ids``, in file order (a superset
        of nothing: exactly those rows); None when the file is read as it is instead (small,
        no statistics, ids spread over more than :data:`MAX_ROW_GROUPS` row groups, or the
        cache disabled)."""
        if self.max_bytes == 0 or not ids or path.stat().st_size < MIN_FILE_BYTES:
            return None
        stats = self._minmax(path, column)
        if stats is None:
            return None
        lo, hi = stats
        wanted = np.array(sorted(set(ids)), dtype=np.int64)
        # row groups with an id in [min, max]: the first wanted id >= min must be <= max
        first = np.searchsorted(wanted, lo, side="left")
        hit = first < len(wanted)
        hit[hit] = wanted[first[hit]] <= hi[hit]
        groups = np.nonzero(hit)[0]
        if len(groups) > MAX_ROW_GROUPS:
            return None
        value_set = pa.array(wanted, type=pa.int64())
        parts = []
        for i in groups:
            table = self._group(path, int(i))
            parts.append(table.filter(pc.is_in(table.column(column), value_set=value_set)))
        if not parts:  # no row group can hold these ids: an empty table of the file's schema
            return pq.read_schema(path).empty_table()
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]
