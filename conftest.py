"""Let nbmake execute the book's MyST notebooks (``*.md``) in place.

nbmake 1.5.5 only collects ``*.ipynb`` and reads notebooks with ``nbformat``. With
``--nbmake`` this file (1) collects ``.md`` files whose YAML front matter declares a
``kernelspec`` and (2) swaps the ``nbformat`` module inside nbmake for a shim whose ``read``
parses ``.md`` through jupytext. Timeouts, the failing-cell report and xdist are stock nbmake;
each notebook runs with its own folder as working directory, exactly as in the book.

With ``--overwrite`` the executed notebook is written as ``.ipynb`` under ``$NB_OUT_DIR``
(default ``_build/nbmake``, same relative path) instead of over the ``.md`` source;
``.ci/seed_jupyter_cache.py`` hands those outputs to the book build.

Relies on nbmake internals (module-level ``nbformat`` in ``nb_run`` and ``pytest_items``):
keep ``nbmake`` pinned in requirements.in.
"""

from __future__ import annotations

import os
from pathlib import Path

import jupytext
import nbformat
import nbmake.nb_run
import nbmake.pytest_items
from nbmake.pytest_items import NotebookFile

from connectomics_book.build.pages import is_myst_notebook

ROOT = Path(__file__).parent.resolve()
OUT_DIR = Path(os.environ.get("NB_OUT_DIR", ROOT / "_build" / "nbmake")).resolve()


class _NbformatWithJupytext:
    """Stands in for the ``nbformat`` module inside nbmake."""

    def __getattr__(self, name):
        return getattr(nbformat, name)

    @staticmethod
    def read(fp, as_version, **kwargs):
        if str(fp).endswith(".md"):
            return jupytext.read(fp, fmt="md:myst")
        return nbformat.read(fp, as_version, **kwargs)

    @staticmethod
    def write(nb, fp, **kwargs):
        path = Path(fp)
        if path.suffix == ".md":  # --overwrite: never rewrite the source
            path = OUT_DIR / path.resolve().relative_to(ROOT).with_suffix(".ipynb")
            path.parent.mkdir(parents=True, exist_ok=True)
        return nbformat.write(nb, str(path), **kwargs)


nbmake.nb_run.nbformat = _NbformatWithJupytext()
nbmake.pytest_items.nbformat = _NbformatWithJupytext()


def pytest_collect_file(file_path: Path, parent):
    if parent.config.option.nbmake and is_myst_notebook(file_path):
        return NotebookFile.from_parent(parent, path=file_path)
    return None
