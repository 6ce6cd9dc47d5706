"""Where the pages find the public files the CAVE clients cannot redirect: one registry.

``caveclient`` and ``cloud-volume`` find their services through the datastack map in the
reader's HOME. Some course data are plain files instead (the V1DD two-photon sessions, the
MICrONS bulk exports, the flat segmentations with static meshes in a public bucket): a page
asks :func:`location` for them, and gets the public location unless the reader's sources file
names another one. That file, ``~/.config/connectomics_book/sources.json`` (or the file named
by ``$CONNECTOMICS_BOOK_SOURCES``), maps a source name to a URL or a directory; the course's
offline tooling writes it for a classroom, nothing else needs to.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

#: Environment variable naming a sources file to use instead of the default one.
ENV_SOURCES_FILE = "CONNECTOMICS_BOOK_SOURCES"
#: The default sources file, relative to the HOME directory.
SOURCES_FILE = Path(".config") / "connectomics_book" / "sources.json"
#: Where downloaded files are kept (relative to HOME unless ``$CONNECTOMICS_BOOK_CACHE``).
ENV_CACHE_DIR = "CONNECTOMICS_BOOK_CACHE"
CACHE_DIR = Path(".cache") / "connectomics_book"


@dataclass(frozen=True)
class Source:
    """A kind of public file the pages read."""

    name: str
    public: str | None
    """The public download location, or None when the files have no direct public URL."""
    how_to_get: str
    """What a reader does to get the files when :attr:`public` is None."""


V1DD_SESSIONS = Source(
    name="v1dd_sessions",
    public=None,
    how_to_get=(
        "The public V1DD two-photon sessions are Allen Institute data assets (one Zarr NWB "
        "file per session, as used by the SWDB databook); download the ones you need and set "
        "V1DD_NWB_DIR to the directory holding them."
    ),
)

MINNIE65_BULK = Source(
    name="minnie65_bulk",
    public="https://storage.googleapis.com/mat_dbs/public/minnie65_phase3_v1",
    how_to_get=(
        "The MICrONS bulk exports (a materialization's tables as CSV.gz files, the synapse "
        "table as synapses_pni_2_v1_filtered_view.csv.gz) are public files under "
        "v{version}/ at this location; no token is needed."
    ),
)

MINNIE65_SEG_M1300 = Source(
    name="minnie65_seg_m1300",
    public="precomputed://gs://iarpa_microns/minnie/minnie65/seg_m1300",
    how_to_get=(
        "The flat segmentation of MICrONS version 1300 with its static multi-resolution "
        "meshes, in a public bucket: CloudVolume(path, use_https=True) reads it."
    ),
)

MINNIE65_SEG_M943 = Source(
    name="minnie65_seg_m943",
    public="precomputed://gs://iarpa_microns/minnie/minnie65/seg_m943",
    how_to_get=(
        "The flat segmentation of MICrONS version 943 with its static multi-resolution "
        "meshes, in a public bucket: CloudVolume(path, use_https=True) reads it."
    ),
)

MINNIE65_CONNTILITY_V117 = Source(
    name="minnie65_conntility_v117",
    public="https://zenodo.org/records/8364070/files/microns_mm3_connectome.h5",
    how_to_get=(
        "The Blue Brain release of the MICrONS minnie65_public_v117 connectome formatted for "
        "Connectome-utilities (Zenodo record 8364070, one HDF5 file with a 'full' and a "
        "'condensed' representation): conntility.ConnectivityMatrix.from_h5(path, "
        "'condensed') reads it; no token is needed."
    ),
)

REGISTRY: dict[str, Source] = {V1DD_SESSIONS.name: V1DD_SESSIONS,
                               MINNIE65_BULK.name: MINNIE65_BULK,
                               MINNIE65_SEG_M1300.name: MINNIE65_SEG_M1300,
                               MINNIE65_SEG_M943.name: MINNIE65_SEG_M943,
                               MINNIE65_CONNTILITY_V117.name: MINNIE65_CONNTILITY_V117}


def sources_file() -> Path:
    """The sources file in use (it need not exist)."""
    named = os.environ.get(ENV_SOURCES_FILE)
    return Path(named) if named else Path.home() / SOURCES_FILE


def configured() -> dict[str, str]:
    """The entries of the sources file ({} when there is none or it is unreadable)."""
    try:
        data = json.loads(sources_file().read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def location(name: str) -> str | None:
    """Where source ``name`` is: the sources file's entry, else its public location."""
    if name not in REGISTRY:
        raise KeyError(f"unknown source {name!r}; known: {sorted(REGISTRY)}")
    return configured().get(name) or REGISTRY[name].public


def cache_dir(name: str) -> Path:
    """The download cache of source ``name``."""
    root = os.environ.get(ENV_CACHE_DIR)
    return (Path(root) if root else Path.home() / CACHE_DIR) / name
