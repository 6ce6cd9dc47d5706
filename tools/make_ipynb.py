"""Write the ``.ipynb`` twin of every page, for the Colab button.

The pages are MyST Markdown (``chapters/**/*.md``), which Google Colab cannot open. The book
theme's Colab button links to ``<page>.ipynb`` on GitHub when that file sits next to the page, so
each page gets an output-free notebook converted with jupytext. The ``.md`` stays the source:
the twins are generated, excluded from the book build (``_config.yml``) and checked by
``tests/connectomics_book/test_pages.py``; regenerate them after editing a page.

Colab renders plain Markdown only, so the few MyST constructs the pages use are rewritten in
the twins: ``:::{admonition} Title`` blocks become quotes with a bold title, ``{footcite:p}`key```
becomes "(Author et al., year)", and ``{footbibliography}`` the list of the works cited since the
previous one (from ``resources/references.bib``). Links to other pages, relative in the book,
become links that work from Colab: to the other page's twin opened in Colab, or to the page on
GitHub when it has no code.

The pages carry no setup code. Each twin starts with a setup cell (tagged ``remove-cell``)
written here from :mod:`connectomics_book.constants`: on Colab it installs the pinned packages
(``COLAB_INSTALL``), then it sets the book's display options (``DISPLAY_SETUP``, which the book
build runs from ``.ci/ipython/profile_default/startup/``).

usage: python tools/make_ipynb.py [--check]   (run from the repository root)
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path

import jupytext
import nbformat

from connectomics_book.build.pages import is_myst_notebook, toc_pages
from connectomics_book.constants import COLAB_INSTALL, DISPLAY_SETUP

ROOT = Path(__file__).resolve().parent.parent
BIB = ROOT / "resources" / "references.bib"
HEADER = ("Generated from {name} by tools/make_ipynb.py for Google Colab; edit the .md page, "
          "not this file.")


_ADMONITION = re.compile(r"^:::\{admonition\}[ \t]*(.*)\n((?:.*\n)*?):::[ \t]*$", re.MULTILINE)
_CITE = re.compile(r"\{footcite:([pt])\}`([^`]+)`")
_PAGE_LINK = re.compile(r"\]\((?![a-z]+:)([^)#\s]+\.md)(#[^)\s]*)?\)")
_BIBLIOGRAPHY = re.compile(r"^```\{footbibliography\}[ \t]*\n```[ \t]*$", re.MULTILINE)


SETUP_TAGS = ["remove-cell"]


def setup_source() -> str:
    """The first cell of every twin: the Colab install, then the book's display options."""
    return "\n".join([
        "# Setup (written by tools/make_ipynb.py): on Google Colab, install the course's pinned",
        "# packages; then the display options of the book.",
        "import sys",
        "",
        'if "google.colab" in sys.modules:',
        f"    {COLAB_INSTALL}",
        "",
        DISPLAY_SETUP,
    ])


@cache
def _bibliography() -> dict:
    from pybtex.database import parse_file

    return dict(parse_file(str(BIB)).entries)


def _surname(person) -> str:
    return " ".join(person.last_names).replace("{", "").replace("}", "")


def _authors_short(entry) -> str:
    people = [p for p in entry.persons.get("author", []) if _surname(p) != "others"]
    if not people:
        return "Anonymous"
    if len(people) == 2 and len(entry.persons["author"]) == 2:
        return f"{_surname(people[0])} and {_surname(people[1])}"
    return _surname(people[0]) + (" et al." if len(entry.persons["author"]) > 1 else "")


def _reference(key: str) -> str:
    entry = _bibliography()[key]
    fields = {k: v.replace("{", "").replace("}", "") for k, v in entry.fields.items()}
    text = f"{_authors_short(entry)} ({fields.get('year', 'n.d.')}). {fields.get('title', key)}."
    if fields.get("journal"):
        text += f" *{fields['journal']}*"
        if fields.get("volume"):
            text += f" {fields['volume']}"
        if fields.get("pages"):
            text += f", {fields['pages'].replace('--', '-')}"
        text += "."
    if fields.get("doi"):
        text += f" https://doi.org/{fields['doi']}"
    return text


def page_url(target: Path, root: Path = ROOT) -> str:
    """Where a book page opens from Colab: its twin in Colab, or the Markdown on GitHub."""
    from connectomics_book.constants import REPOSITORY_URL

    rel = target.resolve().relative_to(root).as_posix()
    if is_myst_notebook(target):
        github = REPOSITORY_URL.removeprefix("https://github.com/")
        return (f"https://colab.research.google.com/github/{github}/blob/main/"
                f"{rel.removesuffix('.md')}.ipynb")
    return f"{REPOSITORY_URL}/blob/main/{rel}"


def colab_markdown(text: str, cited: list[str], page: Path | None = None) -> str:
    """Plain-Markdown version of a MyST markdown cell; appends new citation keys to ``cited``.

    ``page`` (the cell's source file) resolves relative links to other pages."""

    def admonition(match: re.Match) -> str:
        body = [line for line in match.group(2).splitlines() if not line.startswith(":class:")]
        while body and not body[0].strip():
            body.pop(0)
        quoted = [f"> **{match.group(1).strip()}**", ">"] + [f"> {line}".rstrip() for line in body]
        return "\n".join(quoted)

    def cite(match: re.Match) -> str:
        keys = [k.strip() for k in match.group(2).split(",")]
        cited.extend(k for k in keys if k not in cited)
        entries = [_bibliography()[k] for k in keys]
        if match.group(1) == "t":
            return "; ".join(f"{_authors_short(e)} ({e.fields.get('year', 'n.d.')})"
                             for e in entries)
        return "(" + "; ".join(f"{_authors_short(e)}, {e.fields.get('year', 'n.d.')}"
                               for e in entries) + ")"

    def bibliography(_: re.Match) -> str:
        listed = "\n".join(f"- {_reference(k)}" for k in cited)
        cited.clear()
        return listed

    def link(match: re.Match) -> str:
        target = (page.parent / match.group(1)) if page is not None else None
        if target is None or not target.is_file():
            return match.group(0)
        return f"]({page_url(target)}{match.group(2) or ''})"

    text = _ADMONITION.sub(admonition, text)
    text = _PAGE_LINK.sub(link, text)
    text = _CITE.sub(cite, text)
    return _BIBLIOGRAPHY.sub(bibliography, text)


def render_ipynb(md_path: Path) -> str:
    """The text of the output-free notebook twin of a MyST page."""
    nb = jupytext.read(md_path, fmt="md:myst")
    nb.metadata.pop("jupytext", None)  # the twin is not a paired file
    nb.metadata["colab"] = {"provenance": []}
    nb.metadata["connectomics_book"] = {"note": HEADER.format(name=md_path.name)}
    setup = nbformat.v4.new_code_cell(setup_source(), metadata={"tags": list(SETUP_TAGS)})
    nb.cells.insert(0, setup)
    cited: list[str] = []
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell-{index}"  # stable ids: the twins only change when a page does
        if cell.cell_type == "markdown":
            cell.source = colab_markdown(cell.source, cited, md_path)
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
