"""``src/offline_cave/COVERAGE.md``: no call is marked supported or partial without a test that
exists (issue 10: "no row is marked supported without a test")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO_ROOT

MATRIX = REPO_ROOT / "src" / "offline_cave" / "COVERAGE.md"
STATUSES = {"supported", "partial", "not"}


def rows(text: str) -> list[dict[str, str]]:
    """The rows of every ``| call | status | notes | test |`` table of the matrix."""
    out = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.lstrip().startswith("|") or len(cells) != 4:
            continue
        if cells[0] == "call" or set(cells[0]) <= {"-"}:
            continue  # header and rule
        out.append(dict(zip(("call", "status", "notes", "test"), cells, strict=True)))
    return out


def missing_tests(test_cell: str, root: Path) -> list[str]:
    """The references of a test cell (``path::function``, comma separated) that name no
    test function under ``root``; an empty cell is one missing reference."""
    refs = [r.strip() for r in test_cell.split(",") if r.strip()]
    if not refs:
        return ["(no test named)"]
    bad = []
    for ref in refs:
        path, _, name = ref.partition("::")
        name = re.sub(r"\[.*\]$", "", name)
        file = root / path
        if not (path.startswith("tests/") and name.startswith("test_") and file.is_file()
                and re.search(rf"^def {re.escape(name)}\(", file.read_text(), re.M)):
            bad.append(ref)
    return bad


def test_the_matrix_has_rows_with_known_statuses() -> None:
    table = rows(MATRIX.read_text())
    assert len(table) > 40
    assert {r["status"] for r in table} <= STATUSES, {r["status"] for r in table} - STATUSES
    assert all(r["notes"] for r in table if r["status"] == "not"), "a 'not' row says why"


def test_every_supported_or_partial_row_names_existing_tests() -> None:
    problems = {r["call"]: missing_tests(r["test"], REPO_ROOT)
                for r in rows(MATRIX.read_text()) if r["status"] in ("supported", "partial")}
    problems = {call: bad for call, bad in problems.items() if bad}
    assert not problems, problems


@pytest.mark.parametrize("cell, bad", [
    ("", ["(no test named)"]),
    ("tests/offline_cave/test_coverage_matrix.py::test_no_such_test", ["tests/offline_cave/"
                                                                      "test_coverage_matrix.py"
                                                                      "::test_no_such_test"]),
    ("tests/nowhere.py::test_x", ["tests/nowhere.py::test_x"]),
    ("tests/offline_cave/test_coverage_matrix.py::test_the_matrix_has_rows_with_known_statuses",
     []),
])
def test_the_checker_catches_missing_tests(cell: str, bad: list[str]) -> None:
    assert missing_tests(cell, REPO_ROOT) == bad


def test_a_supported_row_without_a_test_is_caught() -> None:
    text = "| call | status | notes | test |\n|---|---|---|---|\n| `x()` | supported | | |\n"
    (row,) = rows(text)
    assert row["status"] == "supported" and missing_tests(row["test"], REPO_ROOT)
