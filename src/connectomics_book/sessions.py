"""Find the NWB file of a V1DD two-photon session: ``session_path(column, volume)``.

The one function pages call to get physiology data; they then open the file with
``pynwb.read_nwb(path)`` exactly as with the public files. Where the files are comes from the
course's source registry (:mod:`connectomics_book.sources`): a local directory, or a server
the files are downloaded from once (with a progress bar) into a cache and reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from connectomics_book import download, sources

#: Environment variable naming the directory with the real V1DD NWB files.
ENV_NWB_DIR = "V1DD_NWB_DIR"
#: Environment variable naming the directory of the course's generated sample.
ENV_SAMPLE_DIR = "OFFLINE_CAVE_DATA"
#: Default name of the generated sample directory (looked up from the working directory up).
DEFAULT_SAMPLE_DIR = "sample-data"
#: Where sessions live inside the sample directory, most specific first: the sessions of the
#: ``v1dd_public`` sample (whose ROIs join to its EM tables), then a standalone set.
SAMPLE_SUBDIRS = ("v1dd_public/sessions", "v1dd_sessions")
#: The EM "golden mouse"; preferred when several mice have a session at (column, volume).
GOLDEN_MOUSE = "409828"

_EXPERIMENT = re.compile(r"column\s*(\d+)\s*,\s*volume\s*(\d+)", re.IGNORECASE)
_SUFFIXES = (".nwb", ".nwb.zarr")
#: Written last into a downloaded asset folder: the SHA-256 of the zip it was unpacked from.
DOWNLOADED = ".downloaded.sha256"


# 70 lines because of its numpydoc docstring (the page readers' reference); the code is ~20
def session_path(column: int, volume: int, data_dir: str | os.PathLike | None = None) -> Path:
    """Path of the NWB file of V1DD two-photon session (``column``, ``volume``).

    Parameters
    ----------
    column, volume
        The imaging column (1-5) and volume (1-5; column 2 has a sixth) of the V1 Deep Dive.
        Each volume is six planes 16 um apart (``processing['plane-0']`` ... ``['plane-5']``),
        and its ROIs join to the EM table ``functional_coregistration_manual_2`` on
        (column, volume, plane, roi).
    data_dir
        A directory holding session files. When omitted, the directory in the environment
        variable ``V1DD_NWB_DIR`` is used; when that is unset too, the location the source
        registry gives for ``v1dd_sessions`` (a directory, or a server whose files are
        downloaded into ``~/.cache/connectomics_book/v1dd_sessions/``), then the course's
        generated sample (``$OFFLINE_CAVE_DATA``, default a ``sample-data`` directory in the
        working directory or one of its parents; sessions under ``v1dd_public/sessions/`` or
        ``v1dd_sessions/``). A directory you name is the only place searched: the synthetic
        sample never silently replaces real data.

    Returns
    -------
    pathlib.Path
        Open it with ``pynwb.read_nwb(path)``.

    Raises
    ------
    FileNotFoundError
        No session (column, volume) in the directory; the message lists the (column, volume)
        pairs that are there.

    Notes
    -----
    **Where the real files are.**
    The public V1DD physiology is one NWB file per session in the Zarr backend, 101 sessions
    of 4 mice (26 of the golden mouse 409828), distributed as Allen Institute data assets (as
    used by the SWDB databook) named ``{subject}_{YYYY-MM-DD}_{HH-MM-SS}_filtered_{date}_{time}``
    and holding ``{subject}_{YYYY-MM-DD}_{HH-MM-SS}.nwb.zarr``, e.g.
    ``409828_2018-11-27_12-29-05.nwb.zarr`` (column 2, volume 3). Point ``V1DD_NWB_DIR`` at the
    directory with those assets (or files); reading them needs ``hdmf-zarr`` installed next to
    ``pynwb``. File names do not say which column and volume a session imaged, so the files
    are opened once and matched by their ``experiment_description`` ("2-photon imaging of
    column C, volume V"), preferring the golden mouse when several mice match. That branch
    cannot be tested offline (no real files and no network here); the course's tests cover
    only the synthetic sample, whose sessions are Zarr NWB stores in asset folders named the
    same way.
    """
    column, volume = int(column), int(volume)
    if data_dir is not None:
        directories = [Path(data_dir)]
    elif os.environ.get(ENV_NWB_DIR):
        directories = [Path(os.environ[ENV_NWB_DIR])]
    else:
        where = sources.location(sources.V1DD_SESSIONS.name)
        if where and urlsplit(where).scheme in ("http", "https"):
            return download_session(where, column, volume)
        directories = ([Path(where)] if where else []) + _sample_directories()
    found: dict[tuple[int, int], Path] = {}
    for directory in directories:
        index = available_sessions(directory)
        if (column, volume) in index:
            return index[(column, volume)]
        for key, path in index.items():
            found.setdefault(key, path)
    where = ", ".join(str(d) for d in directories) or "(no directory)"
    pairs = ", ".join(f"({c}, {v})" for c, v in sorted(found)) or "none"
    raise FileNotFoundError(
        f"no V1DD session for column {column}, volume {volume} in {where}. Sessions available "
        f"there (column, volume): {pairs}. {sources.V1DD_SESSIONS.how_to_get} (Or generate "
        f"the course sample: make sample.)"
    )


def download_session(base_url: str, column: int, volume: int) -> Path:
    """The cached copy of session (``column``, ``volume``) from a session server.

    ``base_url`` serves ``manifest`` (JSON ``{"sessions": [{column, volume, subject_id, file,
    bytes, sha256}]}``) and ``file/<name>``. A file is downloaded once, checked against its
    size and SHA-256, and kept under :func:`connectomics_book.sources.cache_dir`; later calls
    reuse it while it still matches. A Zarr store is a directory, so it comes as the zip of
    its asset folder (``file`` ends in ``.zip``; ``store`` is the store's path inside it): the
    zip is checked, unpacked and deleted, and the store's path is returned.
    """
    base_url = base_url.rstrip("/")
    listing = _get(base_url, "manifest").json()["sessions"]
    matches = [s for s in listing if (int(s["column"]), int(s["volume"])) == (column, volume)]
    if not matches:
        pairs = ", ".join(sorted({f"({s['column']}, {s['volume']})" for s in listing}))
        raise FileNotFoundError(f"no V1DD session for column {column}, volume {volume} at "
                                f"{base_url}. Sessions there (column, volume): {pairs or 'none'}.")
    entry = next((s for s in matches if str(s.get("subject_id")) == GOLDEN_MOUSE), matches[0])
    name = str(entry["file"])
    if Path(name).name != name or name.startswith("."):
        raise ValueError(f"unexpected session file name from {base_url}: {name!r}")
    parts = urlsplit(base_url)
    folder = sources.cache_dir(sources.V1DD_SESSIONS.name) / re.sub(
        r"[^A-Za-z0-9._-]", "_", parts.netloc)
    if name.endswith(".zip"):
        return _download_store(base_url, entry, folder)
    path = folder / name
    if path.is_file() and path.stat().st_size == entry["bytes"] \
            and _sha256(str(path), path.stat().st_mtime) == entry["sha256"]:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    _fetch(base_url, name, path, int(entry["bytes"]), str(entry["sha256"]))
    return path


def _download_store(base_url: str, entry: dict, folder: Path) -> Path:
    """The cached Zarr store of a session that travels as the zip of its asset folder."""
    name, digest = str(entry["file"]), str(entry["sha256"])
    store = PurePosixPath(str(entry.get("store", "")))
    if (store.is_absolute() or len(store.parts) != 2 or ".." in store.parts
            or not store.name.endswith(".nwb.zarr") or name != f"{store.parts[0]}.zip"):
        raise ValueError(f"unexpected session store from {base_url}: {entry.get('store')!r}")
    asset = folder / store.parts[0]
    marker = asset / DOWNLOADED
    folder.mkdir(parents=True, exist_ok=True)
    # one process at a time checks, fetches and swaps in an asset: two pages opening the
    # same session at once must not unpack it twice, nor remove the store the other reads
    with _locked(folder / f".{asset.name}.lock"):
        if (asset / store.name).is_dir() and marker.is_file() and marker.read_text() == digest:
            return asset / store.name
        archive = folder / name
        _fetch(base_url, name, archive, int(entry["bytes"]), digest)
        try:
            _unpack(archive, asset, digest)
        finally:
            archive.unlink(missing_ok=True)
    return asset / store.name


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block; where
    the platform has no ``fcntl`` (Windows) the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux / macOS
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _unpack(archive: Path, asset: Path, digest: str) -> None:
    """Unpack the zip of ``asset`` beside it and swap it in, marked with its checksum."""
    import shutil
    import zipfile

    tmp = Path(tempfile.mkdtemp(dir=asset.parent, prefix=f".{asset.name}."))
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                path = PurePosixPath(member)
                if path.is_absolute() or ".." in path.parts or path.parts[0] != asset.name:
                    raise OSError(f"unexpected file {member!r} in {archive.name}")
            zf.extractall(tmp)
        (tmp / asset.name / DOWNLOADED).write_text(digest)
        if asset.exists():
            shutil.rmtree(asset)
        os.replace(tmp / asset.name, asset)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _get(base_url: str, rel: str, stream: bool = False):
    """GET ``base_url/rel`` with the reader's token for that server; errors in words."""
    from caveclient.auth import AuthClient

    parts = urlsplit(base_url)
    token = AuthClient(server_address=f"{parts.scheme}://{parts.netloc}").token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return download.get(f"{base_url}/{rel}", headers=headers, stream=stream)


def _fetch(base_url: str, name: str, path: Path, size: int, digest: str) -> None:
    """Download one file to ``path`` through a temporary file, with a progress bar."""
    response = _get(base_url, f"file/{name}", stream=True)
    download.stream_to(response, path, url=f"{base_url}/file/{name}", size=size,
                       digests=[download.sha256_hex(digest)])


@cache
def _sha256(path: str, mtime: float) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def available_sessions(directory: str | os.PathLike) -> dict[tuple[int, int], Path]:
    """{(column, volume): path} of the session files in ``directory`` (empty if none).

    Uses the sample's ``MANIFEST.json`` when present; otherwise looks at ``*.nwb`` and
    ``*.nwb.zarr`` in the directory and its subdirectories (one level, like data assets) and
    reads each file's ``experiment_description`` and subject.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    manifest = directory / "MANIFEST.json"
    if manifest.is_file():
        try:
            sessions = json.loads(manifest.read_text()).get("sessions", [])
            index = {(int(s["column"]), int(s["volume"])): directory / s["file"] for s in sessions}
            if index and all(p.exists() for p in index.values()):
                return index
        except (OSError, ValueError, KeyError, TypeError):
            pass  # fall back to opening the files
    candidates = sorted(
        p for pattern in ("*", "*/*") for p in directory.glob(pattern) if p.name.endswith(_SUFFIXES)
    )
    index: dict[tuple[int, int], Path] = {}
    golden: set[tuple[int, int]] = set()
    for path in candidates:
        key_subject = _session_key(str(path), path.stat().st_mtime)
        if key_subject is None:
            continue
        key, subject = key_subject
        if key in golden:
            continue
        if subject == GOLDEN_MOUSE:
            golden.add(key)
            index[key] = path
        else:
            index.setdefault(key, path)
    return index


def _sample_directories() -> list[Path]:
    env = os.environ.get(ENV_SAMPLE_DIR)
    if env:
        roots = [Path(env)]
    else:
        here = Path.cwd().resolve()
        roots = [
            d / DEFAULT_SAMPLE_DIR
            for d in (here, *here.parents)
            if (d / DEFAULT_SAMPLE_DIR).is_dir()
        ][:1]
    return [root / sub for root in roots for sub in SAMPLE_SUBDIRS]


@cache
def _session_key(path: str, mtime: float) -> tuple[tuple[int, int], str] | None:
    """((column, volume), subject id) of a session file, or None if it is not one."""
    try:
        if path.endswith(".nwb"):
            import h5py

            with h5py.File(path, "r") as f:
                text = _text(f["general/experiment_description"][()])
                subject = (
                    _text(f["general/subject/subject_id"][()])
                    if "general/subject/subject_id" in f
                    else ""
                )
        else:
            import pynwb

            nwb = pynwb.read_nwb(path)
            try:
                text = nwb.experiment_description or ""
                subject = nwb.subject.subject_id if nwb.subject is not None else ""
            finally:
                io = nwb.get_read_io()
                if io is not None:
                    io.close()
    except Exception:  # not an NWB file we can read: skip it
        return None
    match = _EXPERIMENT.search(text)
    if match is None:
        return None
    return (int(match.group(1)), int(match.group(2))), str(subject)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
