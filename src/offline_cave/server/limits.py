"""Per-request resource limits of the server (tunable on ``python -m offline_cave serve``).

One :class:`Limits` is kept in ``app.state.limits`` and read on every request, so a test (or
an instructor's server) can change it without restarting. The defaults are sized for a laptop
and leave room for the course's own largest requests (all nucleus supervoxels of the sample
in one ``get_roots`` call, a whole synapse-table page of 500,000 rows).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_JSON_DEPTH = 64
"""Deepest nesting of ``[``/``{`` accepted in a JSON body (caveclient sends at most 4)."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; every limit answers with a 4xx that names it."""

    max_ids: int = 500_000
    """Distinct ids in one request (an id list, a ``filter_in_dict`` column), after
    de-duplication (400)."""
    max_body_bytes: int = 64 * 1024 * 1024
    """Request body size, counted while it streams in (413 as soon as it passes)."""
    max_rows: int = 500_000
    """Rows of one query response; also the largest ``limit`` and ``random_sample`` (400)."""
    read_timeout: float = 30.0
    """Seconds to wait for the next piece of a request body (408 when it stops coming)."""
    query_timeout: float = 60.0
    """Seconds one DuckDB query may run before it is interrupted (503)."""

    def __post_init__(self) -> None:
        for name in ("max_ids", "max_body_bytes", "max_rows", "read_timeout", "query_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"limit {name} must be > 0; got {getattr(self, name)!r}")
