"""The two-photon session files of a datastack sample (``<datastack>/sessions/``).

An offline class has one copy of the V1DD sessions, on the instructor's machine; the students'
pages download them from the server (``connectomics_book.sessions``). Only files listed in the
sessions' ``MANIFEST.json`` are served, and each one only after its size and SHA-256 match the
manifest (checked once per file and process), so a damaged file is refused, never served.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from offline_cave.contract.files import sha256
from offline_cave.server.data.errors import MissingArtefact

SESSIONS_DIR = "sessions"
MANIFEST = "MANIFEST.json"
SESSION_SUFFIX = ".nwb"


class SessionFiles:
    """The verified session files of one datastack directory."""

    def __init__(self, ds_dir: Path, name: str) -> None:
        self.dir = ds_dir / SESSIONS_DIR
        self.name = name
        self._verified: set[str] = set()
        self._lock = threading.Lock()

    def _manifest(self) -> dict:
        path = self.dir / MANIFEST
        if not path.is_file():
            raise MissingArtefact(f"datastack {self.name} has no two-photon sessions")
        try:
            manifest = json.loads(path.read_text())
            manifest["sessions"], manifest["files"]  # noqa: B018 (both keys must be there)
        except (OSError, ValueError, KeyError, TypeError):
            raise MissingArtefact(f"the session manifest of {self.name} is damaged; "
                                  f"regenerate the sample") from None
        return manifest

    def listing(self) -> list[dict]:
        """One entry per session: column, volume, subject, file name, bytes, sha256."""
        manifest = self._manifest()
        out = []
        for s in manifest["sessions"]:
            entry = manifest["files"].get(s["file"], {})
            out.append({"column": s["column"], "volume": s["volume"],
                        "subject_id": s.get("subject_id"), "session_id": s.get("session_id"),
                        "file": s["file"], "bytes": entry.get("bytes"),
                        "sha256": entry.get("sha256")})
        return out

    def path(self, file: str) -> Path:
        """The path of a listed, intact session file (MissingArtefact otherwise)."""
        manifest = self._manifest()
        listed = {s["file"] for s in manifest["sessions"]}
        if file not in listed or not file.endswith(SESSION_SUFFIX):
            raise MissingArtefact(f"no session file {file[:120]!r} in {self.name}; the "
                                  f"manifest lists {len(listed)} files")
        path = self.dir / file
        entry = manifest["files"].get(file)
        with self._lock:
            if file not in self._verified:
                if (entry is None or not path.is_file()
                        or path.stat().st_size != entry["bytes"]
                        or sha256(path) != entry["sha256"]):
                    raise MissingArtefact(f"session file {file} of {self.name} is missing or "
                                          f"damaged (it does not match the manifest); "
                                          f"regenerate the sample")
                self._verified.add(file)
        return path
