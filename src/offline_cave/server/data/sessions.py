"""The two-photon session files of a datastack sample (``<datastack>/sessions/``).

An offline class has one copy of the V1DD sessions, on the instructor's machine; the students'
pages download them from the server (``connectomics_book.sessions``). A session is a Zarr NWB
store (a directory of ~1,500 files) inside its asset folder; it travels as one zip archive of
the asset (``contract.archive``), whose size and SHA-256 the generator wrote in the sessions'
``MANIFEST.json``. Only archives listed there are served, and each one only after every file
of its asset matched the manifest (checked once per archive and process), so a damaged file is
refused, never served.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from offline_cave.contract.archive import ARCHIVE_SUFFIX
from offline_cave.contract.files import verify_files
from offline_cave.server.data.errors import MissingArtefact

SESSIONS_DIR = "sessions"
MANIFEST = "MANIFEST.json"


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
        """One entry per session: column, volume, subject, session id, and the archive of its
        asset (``file``, ``bytes``, ``sha256``) with the store's path inside it (``store``)."""
        manifest = self._manifest()
        archives = manifest.get("archives", {})
        out = []
        for s in manifest["sessions"]:
            entry = archives.get(s.get("archive", ""), {})
            out.append({"column": s["column"], "volume": s["volume"],
                        "subject_id": s.get("subject_id"), "session_id": s.get("session_id"),
                        "file": s.get("archive"), "store": s["file"],
                        "bytes": entry.get("bytes"), "sha256": entry.get("sha256")})
        return out

    def archive(self, file: str) -> tuple[Path, list[str], int]:
        """(root, members, size) of a listed session archive whose files are intact.

        Every file of the asset is checked against the manifest (size and SHA-256, once per
        process); ``contract.archive.iter_archive(root, members)`` then gives the bytes the
        manifest's archive entry describes. ``MissingArtefact`` for an unlisted name or a
        damaged file.
        """
        manifest = self._manifest()
        archives = manifest.get("archives", {})
        listed = {s.get("archive") for s in manifest["sessions"]}
        if file not in listed or file not in archives or not file.endswith(ARCHIVE_SUFFIX):
            raise MissingArtefact(f"no session file {file[:120]!r} in {self.name}; the "
                                  f"manifest lists {len(listed)} files")
        asset = file[: -len(ARCHIVE_SUFFIX)] + "/"
        members = sorted(rel for rel in manifest["files"] if rel.startswith(asset))
        with self._lock:
            if file not in self._verified:
                entries = {rel: manifest["files"][rel] for rel in members}
                if not members or verify_files(self.dir, entries, deep=True) is not None:
                    raise MissingArtefact(f"session file {file} of {self.name} is missing or "
                                          f"damaged (it does not match the manifest); "
                                          f"regenerate the sample")
                self._verified.add(file)
        return self.dir, members, int(archives[file]["bytes"])
