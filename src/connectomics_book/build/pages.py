"""The book's pages: which files the table of contents lists, and which are notebooks.

Shared by ``make`` (which notebooks to execute), ``conftest.py`` (which ``.md`` files nbmake
collects) and the page tests, so all three agree with ``_toc.yml``.

usage: python -m connectomics_book.build.pages [--notebooks [--without-nwb]] [_toc.yml]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

SUFFIXES = (".md", ".ipynb")


def is_myst_notebook(path: Path) -> bool:
    """True for a ``.md`` file (outside ``_build``) whose YAML front matter has a kernelspec."""
    path = Path(path)
    if path.suffix != ".md" or "_build" in path.parts or not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return False
    return "kernelspec:" in text[3:].split("\n---", 1)[0]


def toc_entries(node) -> Iterator[str]:
    """Every ``root``/``file`` value of a jb-book table of contents, in order."""
    if isinstance(node, dict):
        for key in ("root", "file"):
            if key in node:
                yield node[key]
        for value in node.values():
            if isinstance(value, list | dict):
                yield from toc_entries(value)
    elif isinstance(node, list):
        for item in node:
            yield from toc_entries(item)


def toc_pages(toc_path: Path = Path("_toc.yml")) -> list[Path]:
    """Source files of the pages in ``toc_path``, relative to its folder, in book order."""
    toc_path = Path(toc_path)
    root = toc_path.parent
    pages = []
    for entry in toc_entries(yaml.safe_load(toc_path.read_text(encoding="utf-8"))):
        stem = Path(entry)
        candidates = [stem] if stem.suffix in SUFFIXES else [Path(entry + s) for s in SUFFIXES]
        found = [c for c in candidates if (root / c).is_file()]
        if not found:
            raise FileNotFoundError(f"{toc_path}: no file for toc entry {entry!r}")
        pages.append(found[0])
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connectomics_book.build.pages",
        description="Print the pages of the book, one per line.",
    )
    parser.add_argument("toc", nargs="?", type=Path, default=Path("_toc.yml"))
    parser.add_argument("--notebooks", action="store_true", help="only the executable pages")
    parser.add_argument("--without-nwb", action="store_true",
                        help="leave out pages that read V1DD NWB sessions (listed on stderr)")
    args = parser.parse_args(argv)
    for page in toc_pages(args.toc):
        path = args.toc.parent / page
        if args.notebooks and not is_myst_notebook(path):
            continue
        if args.without_nwb and reads_nwb_sessions(path):
            print(f"left out (reads V1DD NWB sessions): {page}", file=sys.stderr)
            continue
        print(page)
    return 0


def reads_nwb_sessions(path: Path) -> bool:
    """True for a page that opens V1DD two-photon sessions (calls ``session_path``)."""
    return "session_path(" in Path(path).read_text(encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
