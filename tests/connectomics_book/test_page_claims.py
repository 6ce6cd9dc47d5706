"""What the pages' prose claims about their own outputs is computed, and true of the real data.

The pages run against whatever datastack the client reaches, so a sentence that types a
number or a direction the page's own cells compute can silently disagree with the output.
Each check below reads one page's source (prose = markdown cells, code = code cells) and
returns the problems it finds; ``test_page_claims`` runs it on the page, and
``test_claim_checks_can_fail`` proves every check catches the wording it was written against
(excerpts of the pages before issue #13). Facts cited as ``datasets-facts §x.y``
(docs/datasets-facts.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import jupytext
import pytest

from tests.fixtures.paths import REPO_ROOT

CHAPTERS = REPO_ROOT / "chapters"


def split_page(text: str) -> tuple[str, str]:
    """(prose, code) of a MyST notebook: markdown cells joined, code cells joined."""
    notebook = jupytext.reads(text, fmt="md:myst")
    prose = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    return prose, code


def flat(text: str) -> str:
    """Whitespace collapsed, so that a phrase may wrap across lines."""
    return re.sub(r"\s+", " ", text)


#: The caveats of aibs_metamodel_celltypes_v661's labels (datasets-facts §2.3; the table's
#: page in the MICrONS tutorial): each pattern must occur in the prose of a page using them.
LABEL_CAVEATS = {
    "BPC = all putative VIP cells": r"`BPC`[^.]*VIP",
    "MC = all putative SST cells": r"`MC`[^.]*(SST|somatostatin)",
    "NGC = all layer-1 interneurons": r"`NGC`[^.]*layer[- ]1",
    "layer-5 inhibitory cells called excitatory": r"layer[- ]5 inhibitory[^.]*excitatory",
}


def label_caveat_problems(prose: str) -> list[str]:
    text = flat(prose)
    return [f"missing cell-type caveat: {name}" for name, pattern in LABEL_CAVEATS.items()
            if not re.search(pattern, text, re.IGNORECASE)]


def synapses_problems(text: str) -> list[str]:
    """04_synapses: autapses found by pre == post, counted in code; per-cell normalisation."""
    prose, code = split_page(text)
    problems = label_caveat_problems(prose)
    if re.search(r"valid\s*=\s*False", prose):
        problems.append("prose says autapses are marked valid = False (datasets-facts §2.1: "
                        "the public rows' valid is bookkeeping)")
    if re.search(r"crosstab\(.*\[\s*[\"']valid[\"']\s*\]", code):
        problems.append("a crosstab on the valid column")
    if not re.search(r"\[\s*\"pre_pt_root_id\"\s*\]\s*==\s*\w+\[\s*\"post_pt_root_id\"\s*\]",
                     code):
        problems.append("autapses are not found as rows with pre_pt_root_id == post_pt_root_id")
    if not re.search(r"is_autapse\.sum\(\)", code) or not re.search(r"is_autapse\.mean\(\)",
                                                                      code):
        problems.append("the autapse count and share are not computed on the page")
    if re.search(r"np\.outer\(", code):
        problems.append("connectivity normalised by the number of cell pairs (n^2)")
    if not re.search(r"\.div\([^)]*sum\(axis=1\)[^)]*axis=0\)|normalize=\"index\"", code):
        problems.append("no per-presynaptic-cell normalisation (rows divided by their sums)")
    if "bootstrap" not in prose.lower() or "rng.integers" not in code:
        problems.append("no cell-level bootstrap interval for the per-type means")
    if not re.search(r"yerr=", code):
        problems.append("no figure with the bootstrap intervals (error bars)")
    if re.search(r"preferred targets", prose) and "schneidermizell2025" not in prose:
        problems.append("a direction of targeting is claimed without the published source")
    return problems


#: (old wording, check) pairs: each excerpt is from the page before issue #13 and must fail.
OLD_SYNAPSES = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

Rows are the axons of one presynaptic type: the inhibitory rows show each interneuron type's
preferred targets. The table marks them `valid = False`, and `synapse_query` drops them.

```{code-cell} ipython3
synapses_per_pair = counts / np.outer(n_cells, n_cells)
is_autapse = between_df["pre_pt_root_id"] == between_df["post_pt_root_id"]
pd.crosstab(is_autapse.rename("autapse"), between_df["valid"])
```
"""

PAGE_CHECKS: dict[str, tuple[Callable[[str], list[str]], str]] = {
    "programmatic_access/04_synapses.md": (synapses_problems, OLD_SYNAPSES),
}


@pytest.mark.parametrize("page", sorted(PAGE_CHECKS))
def test_page_claims(page):
    check, _ = PAGE_CHECKS[page]
    problems = check((CHAPTERS / page).read_text(encoding="utf-8"))
    assert not problems, f"{page}: " + "; ".join(problems)


@pytest.mark.parametrize("page", sorted(PAGE_CHECKS))
def test_claim_checks_can_fail(page):
    check, old_wording = PAGE_CHECKS[page]
    assert check(old_wording), f"the check of {page} does not catch the old wording"
