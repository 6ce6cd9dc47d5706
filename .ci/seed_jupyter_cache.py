"""Seed the jupyter-cache that `jupyter-book build` (execute_notebooks: cache) reads with the
notebooks nbmake already executed (`pytest --nbmake --overwrite`), so the book build does not
execute them a second time. The cache is emptied first: its outputs must come from this run
(and this run's provenance record), never from an earlier one against other data.

usage: python .ci/seed_jupyter_cache.py NBMAKE_OUT_DIR REPO_ROOT CACHE_DIR
"""

import shutil
import sys
from pathlib import Path

import nbformat
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

out_dir, repo, cache_dir = (Path(arg).resolve() for arg in sys.argv[1:4])
shutil.rmtree(cache_dir, ignore_errors=True)
cache = get_cache(str(cache_dir))
seeded = 0
for ipynb in sorted(out_dir.rglob("*.ipynb")):
    source = repo / ipynb.relative_to(out_dir).with_suffix(".md")
    if not source.is_file():
        continue  # left over from a page that was removed
    notebook = nbformat.read(ipynb, as_version=4)
    for cell in notebook.cells:
        # nbmake records timings in cell metadata; jupyter-cache hashes all cell metadata
        cell.metadata.pop("execution", None)
    cache.cache_notebook_bundle(
        CacheBundleIn(notebook, str(source)), check_validity=False, overwrite=True
    )
    seeded += 1
print(f"seeded {seeded} executed notebooks into {cache_dir}")
if seeded == 0:
    sys.exit("no executed notebooks found: did the nbmake run write any?")
