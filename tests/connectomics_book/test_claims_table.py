"""docs/claims.md, the claim -> source table of issue 13, covers the book and cites real keys.

Every executed page of ``_toc.yml`` has at least one row; every ``cite:`` key of the table
and every ``{footcite:p}`` key of a page is an entry of ``resources/references.bib`` (the
build would only warn about a page's key once it renders; the table is never built).
``test_table_checks_can_fail`` feeds the checks a table that misses a page and cites a key
that does not exist.
"""

from __future__ import annotations

import re

from connectomics_book.build.pages import is_myst_notebook, toc_pages
from tests.fixtures.paths import REPO_ROOT

CLAIMS = REPO_ROOT / "docs" / "claims.md"
BIB = REPO_ROOT / "resources" / "references.bib"


def bib_keys(text: str) -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", text, re.MULTILINE))


def table_rows(text: str) -> list[tuple[str, str, str]]:
    """(page, claim, source) of every data row of the markdown table."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and line.startswith("|") and cells[0] not in ("page", "---"):
            rows.append((cells[0], cells[1], cells[2]))
    return rows


def cited_keys(source: str) -> set[str]:
    """Keys after 'cite:' up to the next '(' ';' or '.' (comma-separated)."""
    keys: set[str] = set()
    for group in re.findall(r"cite:\s*([^(;.]+)", source):
        keys |= {k.strip() for k in group.split(",") if k.strip()}
    return keys


def executed_pages() -> list[str]:
    pages = [p for p in toc_pages(REPO_ROOT / "_toc.yml") if is_myst_notebook(REPO_ROOT / p)]
    return [str(p.relative_to("chapters").with_suffix("")) for p in pages
            if p.parts[0] == "chapters"]


def table_problems(table: str, bib: str, pages: list[str]) -> list[str]:
    rows = table_rows(table)
    keys = bib_keys(bib)
    problems = [f"no row for {page}" for page in pages
                if not any(row[0] == page for row in rows)]
    for page, claim, source in rows:
        if not source:
            problems.append(f"{page}: claim without a source: {claim[:60]!r}")
        for key in cited_keys(source) - keys:
            problems.append(f"{page}: cites {key!r}, not in references.bib")
    return problems


def test_every_executed_page_has_rows_and_real_keys() -> None:
    pages = executed_pages()
    assert len(pages) >= 25, pages
    problems = table_problems(CLAIMS.read_text(encoding="utf-8"),
                              BIB.read_text(encoding="utf-8"), pages)
    assert not problems, "; ".join(problems)


def test_pages_cite_only_bibliography_keys() -> None:
    keys = bib_keys(BIB.read_text(encoding="utf-8"))
    missing = []
    for page in (REPO_ROOT / "chapters").rglob("*.md"):
        for group in re.findall(r"\{footcite:p\}`([^`]+)`", page.read_text(encoding="utf-8")):
            missing += [f"{page.name}: {k}" for k in group.split(",") if k.strip() not in keys]
    assert not missing, missing


def test_table_checks_can_fail() -> None:
    bib = "@misc{known,\n  title = {x},\n}\n"
    table = ("| page | claim | source |\n|---|---|---|\n"
             "| a/01 | a claim | cite: known, unknown (§1) |\n| a/01 | typed | |\n")
    problems = table_problems(table, bib, ["a/01", "b/02"])
    assert "no row for b/02" in problems
    assert any("'unknown'" in p for p in problems)
    assert any("without a source" in p for p in problems)
    assert not any("'known'" in p for p in problems)
