"""Make a data directory servable: check every sample, generate or repair what is missing.

The one place where the generator and the server meet (``python -m offline_cave serve`` and
``exec``, and :func:`offline_cave.client.runner.offline_server`, call :func:`prepare_data`
before they serve). The server itself never imports the generator: it serves what is on disk.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from offline_cave.contract import layout
from offline_cave.contract.files import verify_files
from offline_cave.contract.params import DATASTACKS

log = logging.getLogger("offline_cave.server")


class SampleMissingError(RuntimeError):
    """No usable sample on disk, and none can be generated (no generator, bad parameters, not
    enough memory or disk)."""


def prepare_data(data_dir: Path, seed: int = 0, scale: float = 1.0,
                 datastacks: list[str] | None = None, generate: bool = True) -> list[Path]:
    """Return the servable datastack directories under ``data_dir``, generating missing ones.

    A datastack is servable when its directory has ``MANIFEST.json`` (written last by the
    generator) and every file the manifest lists has its recorded size: a cheap check that
    finds missing and truncated files (``generate`` also compares checksums). With ``generate``
    (the default) the missing datastacks of ``datastacks`` (default every datastack in
    ``offline_cave.contract.params.DATASTACKS``) are generated and damaged ones rebuilt with the seed and
    scale they were made with, so start-up stays fast when the sample is intact; with
    ``generate=False`` damaged ones are left out with a warning.
    """
    data_dir = Path(data_dir)
    usable: list[str] = []
    for ds in layout.find_datastacks(data_dir):
        problem = damaged(ds)
        if problem is None:
            usable.append(ds.name)
            continue
        log.warning("%s under %s is damaged: %s", ds.name, data_dir, problem)
        if generate and ds.name in DATASTACKS:
            made = _manifest(ds)
            ensure_sample_stderr(data_dir, ds.name, int(made.get("seed", seed)),
                                 float(made.get("scale", scale)))
            usable.append(ds.name)
    if generate:
        for name in datastacks or list(DATASTACKS):
            if name not in usable:
                log.warning("generating the %s sample under %s (seed %s, scale %s)", name,
                            data_dir, seed, scale)
                ensure_sample_stderr(data_dir, name, seed, scale)
                usable.append(name)
    found = [p for p in layout.find_datastacks(data_dir) if p.name in usable]
    if not found:
        raise SampleMissingError(f"no complete sample datastack under {data_dir}")
    return found


def _manifest(ds_dir: Path) -> dict:
    try:
        made = json.loads((ds_dir / layout.MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return made if isinstance(made, dict) else {}


def damaged(ds_dir: Path) -> str | None:
    """Why a datastack directory with a MANIFEST cannot be served (cheap: sizes only)."""
    files = _manifest(ds_dir).get("files")
    if not isinstance(files, dict) or not files:
        return f"unreadable {layout.MANIFEST}"
    try:
        return verify_files(ds_dir, files, deep=False)
    except (OSError, KeyError, TypeError) as exc:
        return f"unreadable {layout.MANIFEST} ({exc})"


def ensure_sample_stderr(data_dir: Path, name: str, seed: int, scale: float) -> None:
    """Generate (or repair) a sample, reporting on stderr: stdout is serve's URL line."""
    from offline_cave.generator.pipeline import SampleError, ensure_sample

    try:
        ensure_sample(data_dir, name, seed, scale,
                      log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except SampleError as exc:
        raise SampleMissingError(f"cannot generate the {name} sample under {data_dir}: "
                                 f"{exc}") from None
