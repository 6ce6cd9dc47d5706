"""What the prose says of a page's results holds in the page's *executed* output.

``test_page_claims.py`` reads page sources: it checks that a direction is written from a
computed number rather than typed. This file reads the outputs of the executed notebooks
(``$NB_OUT_DIR/chapters/<dir>/<page>.ipynb``, written by ``conftest.py`` when nbmake runs
with ``--overwrite``; ``make test`` runs it as the step ``check-claims`` right after the
notebooks) and checks that what the prose states beside them, mostly a published result of
the real data the page cites, is what the page printed: a sample (or a change of it) that
flips a sign or a verdict fails here instead of leaving prose that the output contradicts.

Without ``$NB_OUT_DIR`` or its notebooks the checks are skipped, unless
``CLAIMS_REQUIRE_EXECUTED=1`` (``make check-claims`` sets it with ``NB_OUT_DIR``), which
turns a missing notebook into a failure.
``test_output_checks_can_fail`` feeds every check an output that contradicts its page.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO_ROOT

#: Where the executed notebooks are; unset (as in ``make unit``, which runs before the
#: notebooks, so ``_build/nbmake`` may hold a previous run's) skips the checks.
NB_OUT_DIR = Path(os.environ["NB_OUT_DIR"]) if os.environ.get("NB_OUT_DIR") else None
REQUIRE = os.environ.get("CLAIMS_REQUIRE_EXECUTED") == "1"
NUMBER = r"([+\u2212-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?)"


def output_text(notebook: dict) -> str:
    """Everything the code cells printed or returned as text, in cell order."""
    parts = []
    for cell in notebook.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                parts.append("".join(out.get("text", "")))
            elif out.get("output_type") in ("execute_result", "display_data"):
                parts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def number(text: str) -> float:
    return float(text.replace("\u2212", "-"))


def find(pattern: str, text: str, what: str, problems: list[str]) -> re.Match | None:
    match = re.search(pattern, text)
    if match is None:
        problems.append(f"the output does not print {what}")
    return match


#: skeletons/02: the fewest cells with enough labelled inputs for the prose to hold
MIN_COMPARED_CELLS = 10


def skeleton_synapses_output(text: str) -> list[str]:
    """skeletons/02. Prose: basket cells contact the soma and proximal dendrites, Martinotti
    cells the distal dendrites (schneidermizell2025), so MC - BC > 0; and a test on pooled
    synapses gives a smaller p-value than the test over cells (pseudo-replication)."""
    problems: list[str] = []
    m = find(r"basket inputs land (closer to|farther from) the soma than Martinotti inputs:"
             rf"\s*median difference {NUMBER} µm \(95 % bootstrap CI over cells {NUMBER} to "
             rf"{NUMBER} µm\), Wilcoxon p = {NUMBER}", text, "the per-cell comparison",
             problems)
    pooled = find(rf"would claim p = {NUMBER}", text, "the pooled p-value", problems)
    # the prose: a cell-level interval over the cells that have enough inputs of both types
    cells = find(r"(\d+) of (\d+) cells have at least \d+ basket and \d+ Martinotti inputs",
                 text, "how many cells enter the comparison", problems)
    if cells and int(cells.group(1)) < MIN_COMPARED_CELLS:
        problems.append(f"only {cells.group(1)} of {cells.group(2)} cells enter the per-cell "
                        f"comparison; a bootstrap over fewer than "
                        f"{MIN_COMPARED_CELLS} cells says little")
    if m:
        effect, low, high, p_cells = (number(m.group(i)) for i in (2, 3, 4, 5))
        if m.group(1) != "closer to" or effect <= 0:
            problems.append(f"basket inputs are not closer to the soma than Martinotti "
                            f"inputs ({m.group(1)}, {effect:+.0f} µm), against the cited "
                            f"targeting")
        if not low <= effect <= high:
            problems.append("the effect lies outside its own bootstrap interval")
        if pooled and not number(pooled.group(1)) < p_cells:
            problems.append("the pooled test is not more 'significant' than the test over "
                            "cells, as the prose on pseudo-replication says")
    return problems


def state_output(text: str) -> list[str]:
    """v1dd/03. Prose: running strengthens visually evoked responses in mouse V1
    (niell2010), so the median running modulation over sessions is positive."""
    problems: list[str] = []
    m = find(rf"median over sessions {NUMBER} \(hierarchical bootstrap 95 % CI {NUMBER} to "
             rf"{NUMBER}, (\d+) sessions\)", text, "the running modulation over sessions",
             problems)
    if m:
        median, low, high = (number(m.group(i)) for i in (1, 2, 3))
        if median <= 0:
            problems.append(f"running modulation {median:+.2f} is not positive, against "
                            f"the cited result that running strengthens responses")
        if not low <= median <= high:
            problems.append("the median lies outside its own bootstrap interval")
    return problems


def function_structure_output(text: str) -> list[str]:
    """v1dd/04. Prose: in the real data connected pairs respond more alike than proximal
    unconnected pairs (ding2025)."""
    problems: list[str] = []
    m = find(rf"connected pairs here are (more|less) similar by {NUMBER}° \(95 % CI {NUMBER} "
             rf"to {NUMBER}°, over (\d+) presynaptic cells\);\s*the interval "
             r"(excludes|includes) zero", text, "the proximity-controlled comparison",
             problems)
    if m:
        effect, low, high = number(m.group(2)), number(m.group(3)), number(m.group(4))
        # the prose cites the real result and reads this selection's numbers with their
        # interval: only an interval on the other side of zero contradicts it
        if m.group(1) != "more" and high < 0:
            problems.append("connected pairs are less alike than proximal unconnected "
                            "pairs beyond the interval, against the cited result")
        if (m.group(6) == "excludes") != (low > 0 or high < 0):
            problems.append("the printed verdict on zero disagrees with the interval")
        if not low <= effect <= high:
            problems.append("the effect lies outside its own bootstrap interval")
    return problems


def like_to_like_output(text: str) -> list[str]:
    """function_structure/03. Prose: distance makes connected pairs look alike (ringach2016),
    so the naive ratio is the larger; like-to-like survives the proximity control (ding2025),
    so the controlled ratio is above 1."""
    problems: list[str] = []
    m = find(rf"Naive ratio {NUMBER}; proximity-controlled synapse-density ratio {NUMBER} "
             rf"\(95 % CI {NUMBER}-{NUMBER}, (\d+) presynaptic cells\)\.\s*The naive estimate "
             r"is (larger|not larger) than the controlled one", text, "the two ratios",
             problems)
    if m:
        naive, controlled, low, high = (number(m.group(i)) for i in (1, 2, 3, 4))
        if controlled <= 1:
            problems.append(f"the controlled ratio {controlled:.2f} is not above 1, against "
                            f"the cited result")
        if m.group(6) != "larger" or naive <= controlled:
            problems.append("the naive ratio is not larger than the controlled one, against "
                            "the distance confound the prose explains")
        if not low <= controlled <= high:
            problems.append("the controlled ratio lies outside its own interval")
    return problems


def motifs_output(text: str) -> list[str]:
    """network/02. Prose: reciprocal pairs are over-represented against a random network
    (song2005) and against proximity-preserving nulls in MICrONS (celii2025)."""
    problems: list[str] = []
    m = find(r"(\d+) reciprocal pairs observed; expected (\d+) \(Erdos-Renyi\), (\d+) "
             r"\(distance\)", text, "the reciprocal pair counts", problems)
    verdict = find(r"the rest (survives|does not survive) the distance null "
                   rf"\(95 % CI {NUMBER}-{NUMBER}\)", text, "the distance-null verdict",
                   problems)
    if m:
        observed, er, distance = (int(m.group(i)) for i in (1, 2, 3))
        if not observed > er:
            problems.append(f"{observed} reciprocal pairs against {er} expected by "
                            f"Erdos-Renyi: no excess, against the cited result")
        if not observed > distance:
            problems.append("no excess over the distance null, against the cited result")
    if verdict:
        low = number(verdict.group(2))
        if verdict.group(1) != "survives":
            problems.append("the excess does not survive the distance null, against the "
                            "cited MICrONS result")
        if (verdict.group(1) == "survives") != (low > 1):
            problems.append("the printed verdict disagrees with the interval")
    return problems


#: programmatic_access/04_synapses: the published targeting the prose cites
#: (schneidermizell2025 Fig. 2, datasets-facts §3.8): basket and Martinotti (SST) cells
#: target excitatory cells, bipolar (VIP) cells other interneurons.
EXPECTED_TARGET_KIND = {"BC": "excitatory", "MC": "excitatory", "BPC": "inhibitory"}
#: the types the page must compare (the others may have too few proofread axons, which the
#: page then prints instead of a preferred target)
MUST_COMPARE = ("BC", "MC")


def synapses_output(text: str) -> list[str]:
    """programmatic_access/04_synapses. Prose: basket cells target mostly excitatory cells,
    Martinotti cells their distal dendrites, bipolar (VIP) cells other interneurons
    (schneidermizell2025), so each type's preferred target kind is the published one."""
    problems: list[str] = []
    found = {m.group(1): m for m in re.finditer(
        rf"(\w+): preferred target (\S+) \((inhibitory|excitatory)\), share {NUMBER} "
        rf"\(95 % CI {NUMBER}-{NUMBER}\)", text)}
    too_few = set(re.findall(r"(\w+): \d+ cells with a proofread axon, fewer than \d+: "
                             r"not compared", text))
    for pre_type, kind in EXPECTED_TARGET_KIND.items():
        m = found.get(pre_type)
        if m is None:
            if pre_type in MUST_COMPARE or pre_type not in too_few:
                problems.append(f"the output does not print the preferred target of "
                                f"{pre_type}")
            continue
        if m.group(3) != kind:
            problems.append(f"{pre_type}'s preferred target {m.group(2)} is {m.group(3)}, "
                            f"against the cited targeting ({kind})")
        share, low, high = (number(m.group(i)) for i in (4, 5, 6))
        if not low <= share <= high:
            problems.append(f"{pre_type}'s share lies outside its own bootstrap interval")
    return problems


#: page -> (check of its executed output, an output that contradicts the page's prose)
OUTPUT_CHECKS: dict[str, tuple[Callable[[str], list[str]], str]] = {
    "programmatic_access/04_synapses": (synapses_output, (
        "BC: preferred target 23P (excitatory), share 0.41 (95 % CI 0.35-0.47)\n"
        "MC: preferred target 23P (excitatory), share 0.52 (95 % CI 0.44-0.60)\n"
        "BPC: preferred target 23P (excitatory), share 0.38 (95 % CI 0.30-0.45)")),
    "skeletons/02_synapses_on_skeletons": (skeleton_synapses_output, (
        "2 of 20 cells have at least 3 basket and 3 Martinotti inputs\n"
        "Per cell, basket inputs land farther from the soma than Martinotti inputs:\n"
        "median difference -12 µm (95 % bootstrap CI over cells -30 to +4 µm), "
        "Wilcoxon p = 0.21, n = 14 cells.\nThe pooled test on 80 + 60 synapses (wrong unit) "
        "would claim p = 0.5.")),
    "v1dd/03_state_and_context": (state_output, (
        "median over sessions -0.08 (hierarchical bootstrap 95 % CI -0.20 to +0.05, "
        "3 sessions); the sessions disagree in sign")),
    "v1dd/04_function_to_structure": (function_structure_output, (
        "Against proximal unconnected pairs, connected pairs here are less similar by 3.2° "
        "(95 % CI -8.0 to +1.1°, over 12 presynaptic cells);\nthe interval excludes zero.")),
    "function_structure/03_like_to_like": (like_to_like_output, (
        "Naive ratio 0.90; proximity-controlled synapse-density ratio 1.10 (95 % CI "
        "0.80-1.50, 40 presynaptic cells).\nThe naive estimate is not larger than the "
        "controlled one.")),
    "network/02_motifs": (motifs_output, (
        "9 reciprocal pairs observed; expected 10 (Erdos-Renyi), 12 (distance), 9 "
        "(degree-preserving)\nDistance accounts for 120% of the excess over Erdos-Renyi; "
        "the rest survives the distance null (95 % CI 0.40-1.30).")),
}


def executed(page: str) -> Path | None:
    return NB_OUT_DIR / "chapters" / f"{page}.ipynb" if NB_OUT_DIR else None


@pytest.mark.parametrize("page", sorted(OUTPUT_CHECKS))
def test_executed_output_agrees_with_the_prose(page: str) -> None:
    path = executed(page)
    if path is None or not path.is_file():
        if REQUIRE:
            pytest.fail(f"no executed notebook {path}: run the notebooks first")
        pytest.skip(f"no executed notebook {path} (make check-claims runs after them)")
    check, _ = OUTPUT_CHECKS[page]
    problems = check(output_text(json.loads(path.read_text(encoding="utf-8"))))
    assert not problems, f"{page}: " + "; ".join(problems)


@pytest.mark.parametrize("page", sorted(OUTPUT_CHECKS))
def test_output_checks_can_fail(page: str) -> None:
    check, contradicting = OUTPUT_CHECKS[page]
    assert check(contradicting), f"the check of {page} accepts an output against its prose"
    assert check(""), f"the check of {page} accepts an output that prints nothing"


def test_every_checked_page_is_in_the_book() -> None:
    for page in OUTPUT_CHECKS:
        assert (REPO_ROOT / "chapters" / f"{page}.md").is_file(), page
