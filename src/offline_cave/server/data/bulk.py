"""The bulk export files of a datastack sample (``<datastack>/bulk/``), read only.

The public release ships whole tables as files in a bucket (see ``generator/bulk.py``); the
server hands out the sample's copies. Only files listed in ``bulk/index.json`` are served, by
their listed name, so no request can name a path outside the directory. The files are part of
the datastack's ``MANIFEST.json`` and were checked (size and SHA-256) before the server
started listening; the index gives each one's MD5 and CRC32C for the ``x-goog-hash`` header.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from offline_cave.contract import layout
from offline_cave.server.data.errors import MissingArtefact, shown


class BulkFiles:
    """The bulk export files of one datastack directory."""

    def __init__(self, ds_dir: Path, name: str) -> None:
        self.dir = ds_dir / layout.BULK_DIR
        self.index_path = ds_dir / layout.BULK_INDEX
        self.name = name

    @cached_property
    def files(self) -> dict[str, dict]:
        """``{"v{N}/<name>": {bytes, md5, crc32c}}`` ({} when the sample has no exports)."""
        try:
            index = json.loads(self.index_path.read_text())
            files = index["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, dict)}

    def entry(self, version: str, file: str) -> tuple[Path, dict]:
        """The path and index entry of ``v{N}/<file>``; MissingArtefact when it is not listed."""
        rel = f"{version}/{file}"
        entry = self.files.get(rel)
        if entry is None:
            versions = sorted({k.split("/", 1)[0] for k in self.files})
            if not versions:
                raise MissingArtefact(f"datastack {self.name} has no bulk export files")
            here = sorted(k.split("/", 1)[1] for k in self.files if k.startswith(f"{version}/"))
            names = sorted({n.split("/", 1)[0] + ("/" if "/" in n else "") for n in here})
            listed = (f"; {version} has {', '.join(names)}" if here
                      else f"; exported versions: {', '.join(versions)}")
            raise MissingArtefact(f"no bulk file {shown(rel)} in {self.name}{listed}")
        return self.dir / rel, entry
