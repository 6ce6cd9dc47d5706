"""The EM-like image and supervoxel chunks of a sample (``layout.IMAGERY_*``), read only.

``imagery/imagery.json`` says where the region is, its resolution, chunk sizes and encodings
(written by ``generator/imagery.py``), and ``scales`` the mips it has (each with its key,
resolution, box and chunk size: the full-resolution box, its downsampled mips and a wider box
at the coarsest mip). A chunk is asked for by its precomputed name
``x0-x1_y0-y1_z0-z1``; a name off the chunk grid, or of a chunk outside the region, is a
:class:`MissingArtefact` (cloud-volume's ``fill_missing`` reads such a chunk as zeros, as the
real bucket's missing chunks are).
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path

from offline_cave.contract import layout
from offline_cave.server.data.errors import MissingArtefact

_CHUNK = re.compile(r"(\d{1,9})-(\d{1,9})_(\d{1,9})-(\d{1,9})_(\d{1,9})-(\d{1,9})")
KINDS = {"em": ("image", layout.IMAGERY_EM_DIR, ""),
         "ws": ("watershed", layout.IMAGERY_WS_DIR, ".gz")}


class Imagery:
    """The imagery of one datastack directory (``meta`` None when it has none)."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)

    @cached_property
    def meta(self) -> dict | None:
        path = self.dir / layout.IMAGERY_JSON
        if not path.is_file():
            return None
        return json.loads(path.read_text())

    def chunk_size(self, kind: str) -> list[int] | None:
        """The chunk size of ``em`` or ``ws`` (None without imagery)."""
        if self.meta is None:
            return None
        return list(self.meta[KINDS[kind][0]]["chunk_size"])

    def scales(self) -> list[dict]:
        """The stored mips, finest first (one, the full resolution, for an older sample)."""
        meta = self.meta
        if meta is None:
            return []
        return meta.get("scales") or [{"key": meta["key"], "resolution": meta["resolution"],
                                       "box_vx": meta["box_vx"],
                                       "chunk_size": meta["image"]["chunk_size"]}]

    def info_scales(self, base: dict, encoding: str) -> list[dict]:
        """The ``scales`` of a precomputed info: ``base`` (the mip-0 scale of the served
        info: size and voxel offset) with the stored mips' keys, resolutions and chunk
        sizes; a coarser mip's offset is mip 0's divided by its factor, rounded down, and its
        size rounded up."""
        out = []
        for sc in self.scales():
            factor = [r // b for r, b in zip(sc["resolution"], self.scales()[0]["resolution"],
                                              strict=True)]
            off = [o // f for o, f in zip(base["voxel_offset"], factor, strict=True)]
            end = [-(-(o + n) // f) for o, n, f in zip(base["voxel_offset"], base["size"],
                                                        factor, strict=True)]
            out.append({**base, "key": sc["key"], "resolution": list(sc["resolution"]),
                        "voxel_offset": off, "size": [e - o for e, o in zip(end, off,
                                                                              strict=True)],
                        "chunk_sizes": [list(sc["chunk_size"])], "encoding": encoding})
        return out

    def chunk(self, kind: str, key: str, name: str) -> bytes:
        """The stored bytes of one chunk (JPEG for ``em``, gzipped raw uint64 for ``ws``)."""
        meta = self.meta
        if meta is None:
            raise MissingArtefact("this sample has no EM imagery (only minnie65_public does)")
        _, rel_dir, suffix = KINDS[kind]
        scale = next((sc for sc in self.scales() if sc["key"] == key), None)
        if scale is None:
            raise MissingArtefact(f"no scale {key[:40]!r}; the sample's imagery has the scales "
                                  f"{[sc['key'] for sc in self.scales()]}")
        m = _CHUNK.fullmatch(name)
        if not m:
            raise MissingArtefact("chunk names look like 'x0-x1_y0-y1_z0-z1' (voxels); got "
                                  f"{name[:60]!r}")
        v = [int(g) for g in m.groups()]
        lo, hi = scale["box_vx"]
        size = scale["chunk_size"]
        for axis in range(3):
            start, end = v[2 * axis], v[2 * axis + 1]
            if (start < lo[axis] or end > hi[axis] or (start - lo[axis]) % size[axis]
                    or end - start != size[axis]):
                raise MissingArtefact(
                    f"chunk {name!r} is not one of the sample's: its imagery covers voxels "
                    f"{lo} to {hi} in chunks of {size} (elsewhere read as empty)")
        path = self.dir / rel_dir / key / f"{name}{suffix}"
        try:
            return path.read_bytes()
        except OSError as err:
            raise MissingArtefact(f"chunk {name!r} is missing from the sample") from err


def imagery_of(ds) -> Imagery:
    """The (lazily created) imagery reader of a datastack (``store.Datastack``)."""
    return ds.attached("imagery", lambda: Imagery(ds.dir))
