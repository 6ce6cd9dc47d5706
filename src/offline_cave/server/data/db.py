"""The server's DuckDB connection, shared by every datastack and thread."""

from __future__ import annotations

import threading
from typing import Any

import duckdb
import pyarrow as pa

from offline_cave.server.data.errors import OutOfResources, QueryTimeout


class Database:
    """One DuckDB connection shared by all threads (a cursor per use).

    ``query_timeout`` (seconds, None = none) bounds every query: a query still running then is
    interrupted and raises :class:`~offline_cave.server.data.errors.QueryTimeout`; one that
    passes the memory limit raises :class:`~offline_cave.server.data.errors.OutOfResources`.
    """

    def __init__(self, threads: int = 2, memory_limit: str = "1GB",
                 query_timeout: float | None = None) -> None:
        self._con = duckdb.connect(":memory:", config={"threads": threads,
                                                       "memory_limit": memory_limit})
        self._lock = threading.Lock()
        self.memory_limit = memory_limit
        self.query_timeout = query_timeout

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            return self._con.cursor()

    def arrow(self, sql: str, params: list[Any] | None = None,
              register: dict[str, pa.Table] | None = None) -> pa.Table:
        """Run ``sql`` on a fresh cursor and return an arrow table (within the time limit)."""
        cur = self.cursor()
        timeout = self.query_timeout
        timer = threading.Timer(timeout, cur.interrupt) if timeout else None
        try:
            for name, table in (register or {}).items():
                cur.register(name, table)
            if timer is not None:
                timer.daemon = True
                timer.start()
            rel = cur.sql(sql, params=params) if params else cur.sql(sql)
            return rel.to_arrow_table()
        except duckdb.InterruptException:
            raise QueryTimeout(f"the query ran longer than {timeout:g} s, the server's query "
                               f"time limit (serve --query-timeout), and was stopped; narrow it "
                               f"with filters or a smaller limit") from None
        except duckdb.OutOfMemoryException:
            raise OutOfResources(f"the query needs more than the server's {self.memory_limit} "
                                 f"of query memory; narrow it with filters or a smaller "
                                 f"limit") from None
        finally:
            if timer is not None:
                timer.cancel()
            cur.close()
