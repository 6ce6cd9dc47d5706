"""Point caveclient and cloud-volume in a HOME directory at an offline server.

Writes, under ``<home>/.cloudvolume/secrets/``:

* ``cave_datastack_to_server_map.json`` -- ``{datastack: server_url}``; merged into an
  existing file, other entries are kept;
* ``<host:port>-cave-secret.json`` -- ``{"token": <32 hex chars>, "offline_cave": true}``, a
  dummy token for this server only. caveclient and cloud-volume look for this server-specific
  file before ``cave-secret.json``, so the offline server gets the dummy and a real token is
  never sent to it (the server refuses requests that carry no token, as the public services
  do, and accepts any other);
* ``cave-secret.json`` -- the same dummy, only if the file does not exist yet (code that uses
  the default token file, such as ``CAVEclient().auth.token``, then finds a token too).

An existing token file that this module did not write (no ``"offline_cave"`` marker) is a
*real* token: it is never modified. Only a server-specific file of someone else's is in the
way; it is replaced only with ``force``, after a copy to ``<name>.bak-<UTC time>``. Token
values are never printed or logged.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

MAP_FILE = "cave_datastack_to_server_map.json"
TOKEN_FILE = "cave-secret.json"
MARKER = "offline_cave"


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
    default_token: str
    """What happened to ``cave-secret.json``: "written", "kept (offline)" or "kept (real)"."""


def secrets_dir(home: str | Path) -> Path:
    return Path(home) / ".cloudvolume" / "secrets"


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


def _write_json_atomic(path: Path, obj: object, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=2)
            fh.write("\n")
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _is_offline_token(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get(MARKER) is True


def configure_home(server_url: str, home: str | Path, datastacks: list[str] | None = None,
                   *, force: bool = False) -> ConfigureResult:
    """Write the datastack map and a dummy token into ``home`` (see the module docstring)."""
    url = normalize_server_url(server_url)
    if datastacks is None:
        datastacks = served_datastacks(url)
    sdir = secrets_dir(home)
    sdir.mkdir(parents=True, exist_ok=True)

    map_path = sdir / MAP_FILE
    current: dict = {}
    if map_path.exists():
        try:
            current = json.loads(map_path.read_text() or "{}")
        except ValueError:
            if not force:
                raise ConfigureError(f"{map_path} is not valid JSON; fix it or pass --force "
                                     f"(the old file is then backed up)") from None
            shutil.copy2(map_path, map_path.with_name(f"{MAP_FILE}.bak-{_stamp()}"))
            current = {}
        if not isinstance(current, dict):
            current = {}
    current.update({name: url for name in datastacks})
    _write_json_atomic(map_path, current, mode=0o644)

    token = secrets.token_hex(16)
    token_path = sdir / server_token_file(url)
    backup = None
    if token_path.exists() and not _is_offline_token(token_path):
        if not force:
            raise ConfigureError(
                f"{token_path} holds a token this tool did not write; refusing to replace it. "
                f"Use a separate --home, or pass --force to back it up and replace it.")
        backup = token_path.with_name(f"{token_path.name}.bak-{_stamp()}")
        shutil.copy2(token_path, backup)
    written = not token_path.exists() or backup is not None
    if written:
        _write_json_atomic(token_path, {"token": token, MARKER: True})

    default_path = sdir / TOKEN_FILE
    if not default_path.exists():
        _write_json_atomic(default_path, {"token": token, MARKER: True})
        default_token = "written"
    else:
        default_token = "kept (offline)" if _is_offline_token(default_path) else "kept (real)"
    return ConfigureResult(map_path=map_path, token_path=token_path, datastacks=list(datastacks),
                           token_written=written, token_backup=backup,
                           default_token=default_token)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
