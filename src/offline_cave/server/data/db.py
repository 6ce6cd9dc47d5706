"""The server's DuckDB connection, shared by every datastack and thread."""

from __future__ import annotations

import threading
from typing import Any

import duckdb
import pyarrow as pa


class Database:
    """One DuckDB connection shared by all threads (a cursor per use)."""

    def __init__(self, threads: int = 2, memory_limit: str = "1GB") -> None:
        self._con = duckdb.connect(":memory:", config={"threads": threads,
                                                       "memory_limit": memory_limit})
        self._lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            return self._con.cursor()

    def arrow(self, sql: str, params: list[Any] | None = None,
              register: dict[str, pa.Table] | None = None) -> pa.Table:
        """Run ``sql`` on a fresh cursor and return an arrow table."""
        cur = self.cursor()
        try:
            for name, table in (register or {}).items():
                cur.register(name, table)
            rel = cur.sql(sql, params=params) if params else cur.sql(sql)
            return rel.to_arrow_table()
        finally:
            cur.close()
