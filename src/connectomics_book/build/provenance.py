"""Record which data the book's outputs are computed from.

Run this in exactly the environment the pages execute in, just before executing them::

    python -m connectomics_book.build.provenance _build/provenance.json

It does what a page does -- ``CAVEclient(DATASTACK)`` -- and writes down what the server
says about itself: the datastack description, its local server, the materialization versions
it offers and whether the pinned one is among them. The Sphinx extension
:mod:`connectomics_book.build.banner` turns that record into the banner on every page, so
the banner states what actually answered, not what someone meant to run against.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from connectomics_book.constants import DATASTACK_VERSIONS

#: Marker the offline stand-in puts in every datastack description it serves.
SYNTHETIC_MARKER = "OFFLINE SYNTHETIC SAMPLE"

SOURCE_SYNTHETIC = "synthetic"
SOURCE_PUBLIC = "public"


class ProvenanceError(RuntimeError):
    """The environment cannot produce the outputs the book pins."""


def classify(description: str | None) -> str:
    """``"synthetic"`` if a datastack description is the offline sample's, else ``"public"``."""
    return SOURCE_SYNTHETIC if SYNTHETIC_MARKER in (description or "") else SOURCE_PUBLIC


def describe_datastack(datastack: str, version: int) -> dict[str, Any]:
    """Ask the CAVE services (wherever caveclient is configured to go) about ``datastack``.

    Raises :class:`ProvenanceError` if the pinned materialization ``version`` is not served.
    """
    from caveclient import CAVEclient

    client = CAVEclient(datastack)
    info = client.info.get_datastack_info()
    versions = sorted(int(v) for v in client.materialize.get_versions())
    if version not in versions:
        raise ProvenanceError(
            f"materialization version {version} of {datastack!r} is not served by "
            f"{client.server_address} (available: {versions}); the pages pin {version} in "
            "connectomics_book.constants"
        )
    description = info.get("description") or ""
    return {
        "datastack": datastack,
        "materialization_version": version,
        "source": classify(description),
        "description": description.strip(),
        "global_server": client.server_address,
        "local_server": info.get("local_server"),
        "aligned_volume": (info.get("aligned_volume") or {}).get("name"),
        "available_versions": versions,
    }


def collect(pairs=DATASTACK_VERSIONS) -> dict[str, Any]:
    """The whole provenance record for every (datastack, version) pair the book uses."""
    import caveclient

    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "caveclient_version": caveclient.__version__,
        "datastacks": [describe_datastack(name, version) for name, version in pairs],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connectomics_book.build.provenance", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("out", type=Path, help="JSON file to write, e.g. _build/provenance.json")
    parser.add_argument(
        "--expect",
        choices=(SOURCE_SYNTHETIC, SOURCE_PUBLIC),
        help="fail unless every datastack is served from this kind of source",
    )
    args = parser.parse_args(argv)
    try:
        record = collect()
        for ds in record["datastacks"]:
            if args.expect and ds["source"] != args.expect:
                raise ProvenanceError(
                    f"expected {args.expect} data, but {ds['datastack']} is served as "
                    f"{ds['source']} data by {ds['global_server']}; check which server "
                    "caveclient is configured to use (~/.cloudvolume)"
                )
    except ProvenanceError as err:
        print(f"provenance: {err}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    for ds in record["datastacks"]:
        print(
            f"provenance: {ds['datastack']} v{ds['materialization_version']} -> "
            f"{ds['source']} data from {ds['local_server']} (written to {args.out})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
