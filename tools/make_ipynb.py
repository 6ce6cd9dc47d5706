"""Write the ``.ipynb`` twin of every page, for the Colab button.

The pages are MyST Markdown (``chapters/**/*.md``), which Google Colab cannot open. The book
theme's Colab button links to ``<page>.ipynb`` on GitHub when that file sits next to the page, so
each page gets an output-free notebook converted with jupytext. The ``.md`` stays the source:
the twins are generated, excluded from the book build (``_config.yml``) and checked by
``tests/test_book_pages.py``; regenerate them after editing a page.

usage: python tools/make_ipynb.py [--check]   (run from the repository root)
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat

from connectomics_book.pages import is_myst_notebook, toc_pages

ROOT = Path(__file__).resolve().parent.parent
HEADER = ("Generated from {name} by tools/make_ipynb.py for Google Colab; edit the .md page, "
          "not this file.")


def render_ipynb(md_path: Path) -> str:
    """The text of the output-free notebook twin of a MyST page."""
    nb = jupytext.read(md_path, fmt="md:myst")
    nb.metadata.pop("jupytext", None)  # the twin is not a paired file
    nb.metadata["colab"] = {"provenance": []}
    nb.metadata["connectomics_book"] = {"note": HEADER.format(name=md_path.name)}
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell-{index}"  # stable ids: the twins only change when a page does
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def notebook_pages(root: Path = ROOT) -> list[Path]:
    """The pages of the table of contents that are notebooks (have a kernelspec)."""
    return [root / p for p in toc_pages(root / "_toc.yml") if is_myst_notebook(root / p)]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for md in notebook_pages():
        target = md.with_suffix(".ipynb")
        text = render_ipynb(md)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            stale.append(target.relative_to(ROOT))
            if not check:
                target.write_text(text, encoding="utf-8")
    if check and stale:
        print("out of date (run `python tools/make_ipynb.py`): "
              + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    print(f"{'checked' if check else 'wrote'} the .ipynb twins; "
          f"{len(stale)} {'stale' if check else 'changed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
