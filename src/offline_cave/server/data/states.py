"""Neuroglancer states kept in memory for the state service (``client.state``).

The public JSON state service stores the states that ``nglui`` shortens links with and that
``client.state.upload_state_json`` / ``get_state_json`` write and read. Here they live in the
server's memory only (never in the sample), bounded: one state is at most
:data:`MAX_STATE_BYTES`, and at most :data:`MAX_STATES` states (and :data:`MAX_TOTAL_BYTES`
together) are kept; past either bound an upload is refused (:class:`StateTooLarge`,
:class:`StateStoreFull`) rather than anything older being dropped, so a link handed out stays
valid for the life of the server. A restart forgets every state.
"""

from __future__ import annotations

import json
import threading

from offline_cave.server.data.errors import (
    DataError,
    MissingArtefact,
    StateStoreFull,
    StateTooLarge,
)

MAX_STATE_BYTES = 1024 * 1024
"""Largest state (or segment-property file) accepted, in bytes of its JSON text."""
MAX_STATES = 2000
"""Most states (and property files) kept by one server."""
MAX_TOTAL_BYTES = 256 * 1024 * 1024
"""Most bytes of JSON kept by one server, all states together."""


class StateStore:
    """States by integer id (1, 2, ...), states and segment-property files sharing the ids."""

    def __init__(self, max_state_bytes: int = MAX_STATE_BYTES, max_states: int = MAX_STATES,
                 max_total_bytes: int = MAX_TOTAL_BYTES) -> None:
        self.max_state_bytes = max_state_bytes
        self.max_states = max_states
        self.max_total_bytes = max_total_bytes
        self._lock = threading.Lock()
        self._states: dict[int, tuple[str, bytes]] = {}
        self._bytes = 0
        self._next = 1

    def add(self, kind: str, body: bytes) -> int:
        """Keep one JSON text (``kind`` "state" or "property"); returns its new id."""
        if len(body) > self.max_state_bytes:
            raise StateTooLarge(
                f"the {kind} is {len(body)} bytes; this offline state service keeps states "
                f"of at most {self.max_state_bytes} bytes (link fewer annotations, or share "
                f"the state as a file)")
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise DataError(f"the {kind} is not valid JSON: {exc}"[:300]) from None
        if not isinstance(parsed, dict):
            raise DataError(f"a Neuroglancer {kind} is a JSON object; got "
                            f"{type(parsed).__name__}")
        with self._lock:
            if (len(self._states) >= self.max_states
                    or self._bytes + len(body) > self.max_total_bytes):
                raise StateStoreFull(
                    f"the offline state service holds {len(self._states)} states "
                    f"({self._bytes} bytes), its limit ({self.max_states} states, "
                    f"{self.max_total_bytes} bytes); a restart of the server clears it")
            state_id = self._next
            self._next += 1
            self._states[state_id] = (kind, bytes(body))
            self._bytes += len(body)
        return state_id

    def get(self, kind: str, state_id: int) -> bytes:
        """The JSON text of a kept state (MissingArtefact for an unknown id or other kind)."""
        with self._lock:
            found = self._states.get(state_id)
        if found is None or found[0] != kind:
            raise MissingArtefact(
                f"no {kind} {state_id} in the offline state service (it keeps the states "
                f"uploaded since the server started: ids 1 to {self._next - 1})")
        return found[1]

    def __len__(self) -> int:
        return len(self._states)
