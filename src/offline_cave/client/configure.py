"""Point caveclient and cloud-volume in a HOME directory at an offline server, and undo it.

:func:`configure_home` writes, under ``<home>/.cloudvolume/secrets/``:

* ``cave_datastack_to_server_map.json`` -- ``{datastack: server_url}``; merged into an
  existing file, other entries are kept;
* ``<host:port>-cave-secret.json`` -- ``{"token": <32 hex chars>, "offline_cave": true}``, a
  dummy token for this server only. caveclient and cloud-volume look for this server-specific
  file before ``cave-secret.json``, so the offline server gets the dummy and a real token is
  never sent to it (the server refuses requests that carry no token, as the public services
  do, and accepts any other);

and, when the server has ``v1dd_public`` or ``minnie65_public``, the course package's sources
file ``<home>/.config/connectomics_book/sources.json`` (the pages then download the V1DD
session files, the MICrONS bulk exports, and the flat segmentations ``seg_m943`` /
``seg_m1300`` with their static meshes, from this server), merged the same way.

It never creates or changes a token file the public services use (``cave-secret.json``, the
``global.*-cave-secret.json`` files): a student who has no token yet can still save one later
with ``CAVEclient().auth.save_token(...)``. A server-specific file someone else wrote is
replaced only with ``force``.

Every file it changes is recorded first in ``<home>/.cloudvolume/offline_cave-undo/``: the
original bytes (or that the file did not exist), the directories it created, and a checksum
of what it wrote. :func:`unconfigure_home` puts the HOME back exactly as it was, except for
a file someone changed since (that one is kept, and said so). Token values are never
printed or logged.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from offline_cave.contract.files import write_atomic

MAP_FILE = "cave_datastack_to_server_map.json"
TOKEN_FILE = "cave-secret.json"
MARKER = "offline_cave"
UNDO_DIR = "offline_cave-undo"
# The course package's source registry (connectomics_book.sources): where the pages download
# the V1DD session files from; the server serves them under SESSIONS_PATH. A test checks that
# these names agree with the course package.
SOURCES_FILE = Path(".config") / "connectomics_book" / "sources.json"
SESSIONS_SOURCE = "v1dd_sessions"
SESSIONS_DATASTACK = "v1dd_public"
SESSIONS_PATH = f"/sessions/api/v1/datastack/{SESSIONS_DATASTACK}"
# ... and the MICrONS bulk exports (the public bucket's v{N}/ folders, routes/bulk.py)
BULK_SOURCE = "minnie65_bulk"
BULK_DATASTACK = "minnie65_public"
BULK_PATH = f"/mat_dbs/public/{BULK_DATASTACK}"
# The flat segmentations with static meshes (connectomics_book.sources names them
# minnie65_seg_m{N}); the server serves them under /static/{datastack}/seg_m{N}.
STATIC_SEG_DATASTACK = "minnie65_public"
STATIC_SEG_SOURCES = {"minnie65_seg_m1300": "seg_m1300", "minnie65_seg_m943": "seg_m943"}
JOURNAL = "journal.json"


class ConfigureError(RuntimeError):
    """Configuration refused or impossible (message written for the user)."""


@dataclass
class ConfigureResult:
    """What :func:`configure_home` did."""

    map_path: Path
    token_path: Path
    """The server-specific token file the clients will use for this server."""
    datastacks: list[str]
    token_written: bool
    token_backup: Path | None
    """Where the replaced server-specific token file was saved (``force`` only)."""
    default_token: str
    """The state of ``cave-secret.json``, which is never touched: "absent" or "kept (real)"."""
    changed: list[Path] = field(default_factory=list)
    """Every file written (each one recorded for :func:`unconfigure_home`)."""


@dataclass
class UndoResult:
    """What :func:`unconfigure_home` did."""

    restored: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    """Files changed by someone else since ``configure``: left as they are."""
    nothing_to_do: bool = False


def secrets_dir(home: str | Path) -> Path:
    return Path(home) / ".cloudvolume" / "secrets"


def undo_dir(home: str | Path) -> Path:
    return Path(home) / ".cloudvolume" / UNDO_DIR


def normalize_server_url(url: str) -> str:
    """``http(s)://host[:port]`` without a trailing slash; ValueError otherwise."""
    parts = urlsplit(str(url).strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"server must look like http://127.0.0.1:8765; got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"server must be a bare http://host:port address; got {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def server_token_file(server_url: str) -> str:
    """Name of the token file the clients look up first for ``server_url``."""
    return f"{urlsplit(normalize_server_url(server_url)).netloc}-{TOKEN_FILE}"


def served_datastacks(server_url: str, timeout: float = 5.0) -> list[str]:
    """Ask a running server for its datastacks (``/info/api/v2/datastacks``)."""
    # any token will do (the server only checks that there is one); this one is not kept
    request = urllib.request.Request(f"{server_url}/info/api/v2/datastacks",
                                     headers={"Authorization": f"Bearer {secrets.token_hex(16)}"})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        names = json.loads(r.read())
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("unexpected datastack list from the server")
    return names


def _json_bytes(obj: object) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_offline_token(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get(MARKER) is True


class Journal:
    """The undo record of one HOME: original state of every path ``configure`` touched."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.dir = undo_dir(home)
        self.path = self.dir / JOURNAL
        self.data: dict = {"created_dirs": [], "files": {}}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
            except ValueError:
                raise ConfigureError(f"{self.path} is damaged; configure will not write over "
                                     f"what it records. Move it away to start afresh.") from None

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.home))

    def make_dirs(self, path: Path) -> None:
        """Create ``path`` and its missing parents, remembering which were new."""
        missing = []
        p = path
        while not p.exists():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            d.mkdir()
            self.data["created_dirs"].append(self._rel(d))

    def record(self, path: Path) -> None:
        """Save ``path``'s original state the first time it is about to be changed."""
        rel = self._rel(path)
        entry = self.data["files"].get(rel)
        if entry is not None:
            if ("written" not in entry or not path.is_file()
                    or _digest(path.read_bytes()) == entry["written"]):
                return
            # someone changed it since configure wrote it
            if "map_entries" in entry:
                entry["merge"] = True  # undo then restores only the entries configure set
                self.save()
                return
        else:
            entry = self.data["files"][rel] = {}
        entry["existed"] = path.exists()
        if entry["existed"]:
            self.make_dirs(self.dir)
            backup = self.dir / f"{len(list(self.dir.glob('*.orig')))}.orig"
            shutil.copy2(path, backup)
            entry.update(backup=backup.name, mode=path.stat().st_mode & 0o777)
        self.save()

    def wrote(self, path: Path, data: bytes) -> None:
        self.data["files"][self._rel(path)]["written"] = _digest(data)
        self.save()

    def save(self) -> None:
        self.make_dirs(self.dir)
        write_atomic(self.path, _json_bytes(self.data), mode=0o600)

    def backup_of(self, path: Path) -> Path | None:
        entry = self.data["files"].get(self._rel(path), {})
        return self.dir / entry["backup"] if entry.get("backup") else None


def _read_dict(path: Path) -> dict:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _merge_json(journal: Journal, path: Path, current: dict, updates: dict[str, str],
                mode: int) -> bool:
    """Write ``current`` updated with ``updates`` to a JSON map file; False if nothing changed.

    The entries' previous values are journalled too, so that undo can put back just those
    when someone else changed the file meanwhile.
    """
    wanted = {**current, **updates}
    if wanted == current and path.exists():
        return False
    journal.record(path)
    previous = journal.data["files"][journal._rel(path)].setdefault("map_entries", {})
    for name in updates:
        previous.setdefault(name, current.get(name))
    _write(journal, path, _json_bytes(wanted), mode)
    return True


def _write(journal: Journal, path: Path, data: bytes, mode: int) -> None:
    journal.record(path)
    write_atomic(path, data, mode=mode)
    journal.wrote(path, data)


def configure_home(server_url: str, home: str | Path, datastacks: list[str] | None = None,
                   *, force: bool = False) -> ConfigureResult:
    """Write the datastack map and a dummy token into ``home`` (see the module docstring)."""
    url = normalize_server_url(server_url)
    if datastacks is None:
        datastacks = served_datastacks(url)
    home = Path(home).absolute()
    journal = Journal(home)
    sdir = secrets_dir(home)
    map_path = sdir / MAP_FILE
    token_path = sdir / server_token_file(url)

    current: dict = {}
    if map_path.exists():
        try:
            current = json.loads(map_path.read_text() or "{}")
        except ValueError:
            if not force:
                raise ConfigureError(f"{map_path} is not valid JSON; fix it, or run "
                                     f"`python -m offline_cave configure` again with --force "
                                     f"(the old file is kept for `unconfigure`)") from None
            current = {}
        if not isinstance(current, dict):
            current = {}
    foreign_token = token_path.exists() and not _is_offline_token(token_path)
    if foreign_token and not force:
        raise ConfigureError(
            f"{token_path} holds a token this tool did not write; refusing to replace it. "
            f"Run `python -m offline_cave configure` again with a separate --home, or with "
            f"--force to save it for `unconfigure` and replace it.")

    journal.make_dirs(sdir)
    changed = []
    if _merge_json(journal, map_path, current, {name: url for name in datastacks}, 0o644):
        changed.append(map_path)
    entries = {}
    if SESSIONS_DATASTACK in datastacks:
        entries[SESSIONS_SOURCE] = f"{url}{SESSIONS_PATH}"
    if BULK_DATASTACK in datastacks:
        entries[BULK_SOURCE] = f"{url}{BULK_PATH}"
    if STATIC_SEG_DATASTACK in datastacks:
        entries.update({name: f"precomputed://{url}/static/{STATIC_SEG_DATASTACK}/{seg}"
                        for name, seg in STATIC_SEG_SOURCES.items()})
    if entries:
        sources_path = home / SOURCES_FILE
        journal.make_dirs(sources_path.parent)
        if _merge_json(journal, sources_path, _read_dict(sources_path), entries, 0o644):
            changed.append(sources_path)
    written = not token_path.exists() or foreign_token
    if written:
        _write(journal, token_path, _json_bytes({"token": secrets.token_hex(16), MARKER: True}),
               0o600)
        changed.append(token_path)

    default_path = sdir / TOKEN_FILE
    default_token = "kept (real)" if default_path.exists() else "absent"
    return ConfigureResult(map_path=map_path, token_path=token_path, datastacks=list(datastacks),
                           token_written=written,
                           token_backup=journal.backup_of(token_path) if foreign_token else None,
                           default_token=default_token, changed=changed)


def _restore_map_entries(path: Path, previous: dict[str, str | None]) -> bool:
    """Put back only the datastack entries ``configure`` set in a map changed since."""
    try:
        current = json.loads(path.read_text() or "{}")
    except ValueError:
        return False
    if not isinstance(current, dict):
        return False
    for name, value in previous.items():
        if value is None:
            current.pop(name, None)
        else:
            current[name] = value
    write_atomic(path, _json_bytes(current), mode=path.stat().st_mode & 0o777)
    return True


def unconfigure_home(home: str | Path) -> UndoResult:
    """Put back every file :func:`configure_home` changed in ``home``; see the module doc."""
    home = Path(home).absolute()
    journal_dir = undo_dir(home)
    if not (journal_dir / JOURNAL).exists():
        return UndoResult(nothing_to_do=True)
    journal = Journal(home)
    result = UndoResult()
    for rel, entry in journal.data["files"].items():
        path = home / rel
        now = path.read_bytes() if path.is_file() else None
        changed = "written" in entry and now is not None and _digest(now) != entry["written"]
        if "map_entries" in entry and now is not None and (changed or entry.get("merge")):
            if _restore_map_entries(path, entry["map_entries"]):
                result.restored.append(path)
            else:
                result.kept.append(path)
        elif changed:
            result.kept.append(path)
        elif entry["existed"]:
            original = (journal_dir / entry["backup"]).read_bytes()
            write_atomic(path, original, mode=entry["mode"])
            result.restored.append(path)
        elif now is not None:
            path.unlink()
            result.removed.append(path)
    shutil.rmtree(journal_dir)
    for rel in reversed(journal.data["created_dirs"]):
        d = home / rel
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    return result
