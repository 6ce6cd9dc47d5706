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


def microns_problems(text: str) -> list[str]:
    """02_microns: volume counts kept apart from table row counts; minnie35; deprecated table.

    The whole volume (minnie65 + minnie35) has >200,000 cells and ~524 million synapses; the
    public tables hold 144,120 nuclei and 337,312,429 synapses (datasets-facts §2.1, §2.2,
    §3.1). Nothing in the facts says minnie35 is "not in" the datastack.
    """
    prose, _ = split_page(text)
    problems = label_caveat_problems(prose)
    text_flat = flat(prose)
    for count in ("144,120", "337,312,429"):
        if count not in text_flat:
            problems.append(f"the table row count {count} is missing")
    for sentence in re.split(r"(?<=[.:])\s", text_flat):
        volume_count = re.search(r"200,000|524 million", sentence)
        if volume_count and re.search(r"nucleus_detection_v0|synapses_pni_2|row", sentence):
            problems.append(f"a whole-volume count next to a table: {sentence[:80]!r}")
        if volume_count and "volume" not in sentence:
            problems.append(f"a whole-volume count not said to be of the volume: "
                            f"{sentence[:80]!r}")
    if re.search(r"minnie35\*?,? is not in", text_flat):
        problems.append("claims minnie35 is not in the datastack (not in the facts)")
    if "functional_properties_v3_bcm" in text_flat:
        if not re.search(r"functional_properties_v3_bcm`? is deprecated", text_flat):
            problems.append("functional_properties_v3_bcm is not said to be deprecated")
    if "digital_twin_properties_bcm_coreg_v4" not in text_flat:
        problems.append("the replacement digital_twin_properties_bcm_coreg_v4 is not named")
    if re.search(r"cell type to every nucleus|predicted for every", text_flat):
        problems.append("claims every nucleus has a cell type (94,014 of 144,120 rows)")
    return problems


#: Strategy values of proofreading_status_and_strategy (datasets-facts §2.4).
STRATEGIES = ("axon_fully_extended", "axon_partially_extended", "axon_interareal",
              "axon_column_truncated", "dendrite_clean", "dendrite_extended")


def cells_problems(text: str) -> list[str]:
    """03_cells: label caveats, the full strategy list, no typed verdicts on outputs."""
    prose, _ = split_page(text)
    problems = label_caveat_problems(prose)
    text_flat = flat(prose)
    problems += [f"strategy {name} missing from the strategy list" for name in STRATEGIES
                 if f"`{name}`" not in text_flat]
    # verdicts on what a crosstab or share will show, typed before the output exists
    for verdict in (r"the two mostly agree", r"gets wrong", r"Proofreading is not spread evenly",
                    r"inhibitory cells the two vocabularies line up"):
        if re.search(verdict, text_flat):
            problems.append(f"a typed verdict on an output: {verdict!r}")
    return problems


def versions_problems(text: str) -> list[str]:
    """05_versions: the edit comparison is computed; timestamps are not limited to the present.

    caveclient 8.2.1 ``query_table(timestamp=...)`` calls ``live_query``, which starts from the
    newest version at or before the timestamp (any served version, v117 of 2021 included,
    datasets-facts §1.2) and fails only before the oldest one.
    """
    prose, code = split_page(text)
    problems = []
    text_flat = flat(prose)
    if re.search(r"(are|were|get) edited more (than|often)", text_flat):
        problems.append("prose types that proofread cells are edited more than others")
    if not re.search(r'"more often than" if \w+ > \w+', code):
        problems.append("the comparison of edit shares is not written from computed numbers")
    if re.search(r"after the latest snapshot", text_flat):
        problems.append("timestamp= limited to moments after the latest snapshot")
    if "get_versions_metadata" not in code:
        problems.append("the range of possible timestamps is not read from the service")
    if not re.search(r"query_table\([^)]*timestamp=(?!now\b)\w+", code):
        problems.append("no timestamp query at a moment other than now")
    return problems


def skeleton_synapses_problems(text: str) -> list[str]:
    """skeletons/02: basket vs Martinotti distances with the cell as the unit.

    Synapses of one cell are not independent (they share its shape, position and the few
    interneurons near it); a test on pooled synapses is pseudo-replication.
    """
    prose, code = split_page(text)
    problems = []
    text_flat = flat(prose)
    if not re.search(r"pseudo-replication", text_flat, re.IGNORECASE):
        problems.append("the prose does not say why pooling synapses is wrong")
    if not re.search(r'groupby\(\[\s*"post_pt_root_id"', code):
        problems.append("no per-cell summary of the input distances")
    if not re.search(r"wilcoxon\(cell_\w+\)", code):
        problems.append("no test over cells (Wilcoxon on per-cell differences)")
    if "rng.integers" not in code or "bootstrap over cells" not in text_flat:
        problems.append("no cell-level bootstrap interval of the effect")
    if re.search(r"\btest = mannwhitneyu\(", code):
        problems.append("the Mann-Whitney on pooled synapses is the page's test")
    if not re.search(r'"closer to" if effect_um > 0', code):
        problems.append("the direction is not written from the per-cell effect")
    if re.search(r"(basket|BC)[^.]*inputs land (closer|nearer|farther)", text_flat):
        problems.append("the prose types the direction the output shows")
    return problems


def depth_problems(text: str) -> list[str]:
    """v1dd/03: depth compared within columns, not across volumes of different columns;
    running modulation tested within sessions, not on ROIs pooled over mice."""
    prose, code = split_page(text)
    problems = []
    text_flat = flat(prose)
    if re.search(r"mannwhitneyu\(\s*upper", code) or re.search(r"deepest\s*=", code):
        problems.append("depth tested as the deepest volume against volumes of other columns")
    if not re.search(r"confound", text_flat):
        problems.append("the prose does not say that column and depth are confounded")
    if not re.search(r'groupby\("column"\)[^\n]*\.transform\(\s*"mean"', code):
        problems.append("depth effect not fitted within columns (column as a factor)")
    if not re.search(r"rng\.permutation\(depth_um\[rows\]\)", code):
        problems.append("no permutation of plane depths within columns")
    if re.search(r"wilcoxon\(modulation_df\[", code):
        problems.append("running modulation tested on the ROIs of all sessions pooled")
    if not re.search(r'for \(column, volume\), group in modulation_df\.groupby\(\["column", '
                     r'"volume"\]\):\n\s+within = wilcoxon\(group', code):
        problems.append("running modulation not tested within each session")
    if "picked = rng.integers(len(groups)" not in code:
        problems.append("no bootstrap over sessions for the running modulation")
    return problems


def function_structure_problems(text: str) -> list[str]:
    """v1dd/04: like-to-like against proximal unconnected pairs, cell-level CI, cited."""
    prose, code = split_page(text)
    problems = []
    text_flat = flat(prose)
    if "proximal_pairs(" not in code:
        problems.append("candidate pairs are not found from axon-dendrite proximity")
    if not re.search(r'~\w+\["connected"\]\s*&\s*\w+\["proximal"\]', code):
        problems.append("connected pairs are not compared with proximal unconnected pairs")
    if not re.search(r"\(naive\)", code) or not re.search(r'~pairs_df\["connected"\]\}', code):
        problems.append("the naive comparison is not shown beside the controlled one")
    if not re.search(r'groupby\("pre"\)', code) or "rng.integers" not in code:
        problems.append("no bootstrap over presynaptic cells")
    if not re.search(r'"more" if controlled\["effect \(deg\)"\] > 0', code):
        problems.append("the direction of the controlled effect is not written from the output")
    if not re.search(r"proximity[^.]*\{footcite:p\}`ding2025`", text_flat):
        problems.append("what the real data show under the proximity control is not cited")
    if re.search(r"similarly tuned inputs arrive", text_flat):
        problems.append("claims the skeleton page shows where similarly tuned inputs arrive")
    return problems


def motifs_problems(text: str) -> list[str]:
    """network/02: every excess is reported against the three nulls, with a cell bootstrap."""
    prose, code = split_page(text)
    problems = []
    text_flat = flat(prose)
    for null in ("erdos_renyi(", "degree_preserving_shuffle(", "fit_distance_model("):
        if null not in code:
            problems.append(f"null model {null[:-1]} not computed on the page")
    if "bootstrap_cells(" not in code:
        problems.append("no bootstrap over cells for the reciprocity ratios")
    if not re.search(r"'survives' if survives else 'does not survive'", code):
        problems.append("whether the excess survives the distance null is not written from "
                        "the output")
    if not re.search(r"four times[^.]*\{footcite:p\}`song2005`", text_flat):
        problems.append("the fourfold excess of paired recordings is not cited")
    if not re.search(r"degree-preserving[^.]*\{footcite:p\}`celii2025`", text_flat):
        problems.append("what MICrONS shows against degree-preserving nulls is not cited")
    if re.search(r"reciprocal (pairs|connections) are (over-represented|more common)"
                 r" (in|among) (the|these) (cells|data)", text_flat):
        problems.append("prose asserts the page's own result instead of computing it")
    if "fit_dyad_model(" not in code or "groups=" not in code:
        problems.append("no null that keeps the pair statistics by distance and layer")
    if not re.search(r"resampled_ratio\(observed_closed", code):
        problems.append("no bootstrap over cells for the closed-triad ratios")
    if not re.search(r"common neighbours[^.]*\{footcite:p\}`perin2011`", text_flat):
        problems.append("the common-neighbour rule of the real data is not cited")
    if re.search(r"closed triads are (over-represented|more common) (in|among) (the|these)",
                 text_flat):
        problems.append("prose asserts the sample's triad excess instead of computing it")
    return problems


def edge_effects_problems(text: str) -> list[str]:
    """network/03: the margin and the edge deficit come from the data, with intervals."""
    prose, code = split_page(text)
    problems = []
    if not re.search(r"margin_um = by_edge\.index\[", code):
        problems.append("the margin is not read off the measured curve")
    if re.search(r"margin_um = \d", code):
        problems.append("the margin is a hard-coded number")
    if "rng.integers(0, len(values)" not in code:
        problems.append("no bootstrap interval over cells for the binned medians")
    if not re.search(r"\{edge_ratio:\.0%\}", code):
        problems.append("the size of the edge deficit is not printed from the output")
    if re.search(r"(lose|have) (about|roughly)? ?\d+ ?%", flat(prose)):
        problems.append("prose types a percentage the page computes")
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

OLD_MICRONS = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

- **Size.** The imaged block measures roughly 1.4 × 0.87 × 0.84 mm. The public datastack
  `minnie65_public` covers the larger of its two parts, called *minnie65*; the other part,
  *minnie35*, is not in it.

Every voxel of the block was segmented, and networks detected the synapses and the cell
nuclei. Across the whole block that is more than 200,000 cells and about 524 million
synapses {footcite:p}`microns2025`. Each nucleus is a row in the table `nucleus_detection_v0`,
each synapse a row in `synapses_pni_2`.

A model trained on the ultrastructure of soma and nucleus assigned a cell type to every
nucleus: inhibitory types (`BC` basket, `MC` Martinotti, `BPC` bipolar, `NGC` neurogliaform).
"""

OLD_CELLS = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

Joined on the nucleus id (`target_id`), the two mostly agree; the off-diagonal cells are
nuclei that one of the models gets wrong. Four inhibitory types (`BC` basket, `MC`
Martinotti, `BPC` bipolar, `NGC` neurogliaform). Across the inhibitory cells the two
vocabularies line up:

The strategy says how far the proofreading went: a `dendrite_extended` or
`axon_fully_extended` compartment was also followed to its ends, while
`axon_partially_extended` means the main branches were followed; `axon_interareal` marks
axons traced into another visual area.

Proofreading is not spread evenly over cell types, which matters for any comparison
between types:
"""

OLD_VERSIONS = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

Proofread cells are edited more than others. `is_latest_roots` checks, for each root id,
whether it is still current.

```{code-cell} ipython3
is_current = client.chunkedgraph.is_latest_roots(pinned_proofread["pt_root_id"].tolist())
```

Materialized versions are snapshots; a query with `timestamp=` instead of a version asks
about any moment after the latest snapshot, including now.

```{code-cell} ipython3
now = dt.datetime.now(dt.UTC)
live_df = client.materialize.query_table(
    "nucleus_detection_v0", filter_equal_dict={"id": nucleus_id}, timestamp=now)
```
"""

OLD_SKELETON_SYNAPSES = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

The medians, and a Mann-Whitney U test of whether basket and Martinotti distances come from
the same distribution:

```{code-cell} ipython3
basket_um, martinotti_um = distance_by_group["BC"], distance_by_group["MC"]
test = mannwhitneyu(basket_um, martinotti_um)
closer = "closer to" if np.median(basket_um) < np.median(martinotti_um) else "farther from"
```
"""

OLD_DEPTH = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

Volumes are numbered from the pia down. The deepest volume against the two upper ones, with a
Mann-Whitney U test of the SSI values:

```{code-cell} ipython3
deepest = surround_df["volume"] == surround_df["volume"].max()
upper_ssi, deep_ssi = surround_df.loc[~deepest, "ssi"], surround_df.loc[deepest, "ssi"]
test = mannwhitneyu(upper_ssi, deep_ssi)
```
"""

OLD_FUNCTION_STRUCTURE = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

For comparison, every ordered pair of distinct tuned cells that is not connected:

```{code-cell} ipython3
not_connected = ~is_connected & ~np.eye(len(tuned_df), dtype=bool)
unconnected_difference = all_differences[not_connected]
```

Go back to [Map synapses onto skeletons](../skeletons/02_synapses_on_skeletons.md) to see
where on the dendrite similarly tuned inputs arrive.
"""

OLD_MOTIFS = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

Reciprocal pairs are more common among these cells than in a random network, as in paired
recordings.

```{code-cell} ipython3
observed = reciprocity(adjacency)
print(f"ratio {observed['ratio']:.2f}")
```
"""

OLD_EDGE_EFFECTS = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

Cells within 100 µm of the edge lose about 40 % of their inputs.

```{code-cell} ipython3
margin_um = 100
inside = sample_df["edge_um"] >= margin_um
by_edge = sample_df.groupby("edge_bin")["n_inputs"].median()
```
"""

def coregistration_problems(text: str) -> list[str]:
    """function_structure/01: the angle conventions as documented (datasets-facts §2.6),
    the conversion done by the package function, the quality columns in µm."""
    prose, code = split_page(text)
    text_flat = flat(prose)
    problems = []
    for name, pattern in {
        "v3 in radians": r"v3[^.]*radians",
        "v3 zero = horizontal bar moving up": r"horizontal bar moving \*?up",
        "v3 clockwise": r"(?<!counter-)\*?clockwise",
        "twin zero = vertical bar moving right": r"vertical bar moving \*?right",
        "twin counter-clockwise": r"counter-clockwise",
        "residual and score in µm": r"distances in µm",
    }.items():
        if not re.search(pattern, text_flat):
            problems.append(f"missing: {name}")
    if "v3_to_twin_degrees(" not in code:
        problems.append("v3 angles are not converted with v3_to_twin_degrees")
    if "np.degrees(" in code and "v3_to_twin_degrees" not in code:
        problems.append("v3 radians only turned into degrees")
    # the automatic digital-twin tables (datasets-facts §2.6): both queried, the gain in
    # cells computed per score threshold, and said to be unverified
    for table in ("digital_twin_properties_bcm_coreg_auto_phase3_fwd_v2",
                  "digital_twin_properties_bcm_coreg_apl_vess_fwd"):
        if table not in code:
            problems.append(f"{table} is not queried")
    if not re.search(r'\["score"\]\s*>\s*threshold', code) or "added" not in code:
        problems.append("the cells the automatic matches add are not counted per threshold")
    if "not manually verified" not in text_flat:
        problems.append("the automatic tables are not said to be unverified")
    return problems


def tuning_problems(text: str) -> list[str]:
    """function_structure/02: retinotopy split by the real area table, the mirror-image maps
    of neighbouring areas cited, border cells left out, the borders' retinotopic origin said
    (so the readout map cannot confirm them independently)."""
    prose, code = split_page(text)
    text_flat = flat(prose)
    problems = []
    if 'query_table("nucleus_functional_area_assignment")' not in code:
        problems.append("nucleus_functional_area_assignment is not queried")
    if 'groupby("area")' not in code:
        problems.append("the readout map is not split by area")
    if not re.search(r'\["border_um"\]\s*>', code):
        problems.append("cells near an area border are not left out")
    if "garrett2014" not in prose and "zhuang2017" not in prose:
        problems.append("the field-sign reversal at area borders is uncited")
    if not re.search(r"come from retinotopic mapping", text_flat):
        problems.append("the borders' retinotopic origin (circularity) is not said")
    if re.search(r"carry no area label", text_flat):
        problems.append("claims the tables carry no area label")
    return problems


def like_to_like_problems(text: str) -> list[str]:
    """function_structure/03: naive and proximity-controlled estimates both computed, the
    interval over presynaptic cells, the verdict computed rather than typed."""
    prose, code = split_page(text)
    problems = []
    if "proximal_pairs(" not in code:
        problems.append("no axon-dendrite proximity (proximal_pairs) on the page")
    if len(re.findall(r"rate_ratio\(", code)) < 3:
        problems.append("naive and controlled ratios are not both computed with rate_ratio")
    if re.search(r"cluster\s*=", code):
        problems.append("the bootstrap is not over presynaptic cells (cluster= overridden)")
    if "bootstrap" not in prose.lower() or "presynaptic cell" not in prose:
        problems.append("the cell-level bootstrap is not explained")
    if re.search(r"\b\d\.\d+\s*(x|times|-fold)", prose):
        problems.append("a ratio typed in the prose instead of printed by the code")
    if not re.search(r"larger\s*=\s*.*if naive", code):
        problems.append("the naive-vs-controlled verdict is not computed")
    if "ringach2016" not in prose or "ding2025" not in prose:
        problems.append("the distance dependence of tuning or the published result uncited")
    return problems


OLD_COREGISTRATION = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

Both tables give pref_ori in degrees; compare them directly.

```{code-cell} ipython3
naive_deg = np.degrees(ori_df["pref_ori_v3"])
```
"""

OLD_LIKE_TO_LIKE = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

Connected pairs are 1.5 times more likely among similar cells (a bootstrap over pairs).

```{code-cell} ipython3
naive = rate_ratio(pairs_df, similar, dissimilar, "connected", cluster="pair")
```
"""

def inputs_by_tuning_problems(text: str) -> list[str]:
    """function_structure/04: orientations on a cyclic colour map, one cell not taken as a
    test (the cell is the unit of replication, the naive comparison's proximity confound
    said), the share over cells with a bootstrap interval."""
    prose, code = split_page(text)
    text_flat = flat(prose)
    problems = []
    if not re.search(r'cmap="(twilight|twilight_shifted|hsv)"', code):
        problems.append("orientations not drawn on a cyclic colour map")
    if "unit of replication" not in text_flat:
        problems.append("the single cell is not set against the cell as unit of replication")
    if "proximity" not in text_flat or "ringach2016" not in prose:
        problems.append("the proximity confound of the naive comparison is not said")
    if not re.search(r"quantile\(draws", code):
        problems.append("the share over cells has no bootstrap interval")
    if re.search(r"this cell wires|(its|this cell's) inputs (are|were) more alike",
                 text_flat, re.IGNORECASE):
        problems.append("a typed verdict on one cell's inputs")
    return problems


OLD_INPUTS_BY_TUNING = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

The inputs are more alike than the candidates: this cell wires like-to-like.

```{code-cell} ipython3
points = ax.scatter(x, y, c=pre_ori, cmap="viridis")
```
"""

OLD_TUNING = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

A smooth map across the cortical surface is retinotopy; the tables used here carry no area
label, so this page does not split the map by area.

```{code-cell} ipython3
correlations = cell_df[positions + readouts].corr().loc[positions, readouts]
```
"""

PAGE_CHECKS: dict[str, tuple[Callable[[str], list[str]], str]] = {
    "function_structure/01_coregistration.md": (coregistration_problems, OLD_COREGISTRATION),
    "function_structure/02_tuning.md": (tuning_problems, OLD_TUNING),
    "function_structure/04_inputs_by_tuning.md": (inputs_by_tuning_problems,
                                                   OLD_INPUTS_BY_TUNING),
    "function_structure/03_like_to_like.md": (like_to_like_problems, OLD_LIKE_TO_LIKE),
    "background/02_microns.md": (microns_problems, OLD_MICRONS),
    "programmatic_access/03_cells.md": (cells_problems, OLD_CELLS),
    "programmatic_access/04_synapses.md": (synapses_problems, OLD_SYNAPSES),
    "programmatic_access/05_versions.md": (versions_problems, OLD_VERSIONS),
    "skeletons/02_synapses_on_skeletons.md": (skeleton_synapses_problems,
                                              OLD_SKELETON_SYNAPSES),
    "v1dd/03_state_and_context.md": (depth_problems, OLD_DEPTH),
    "v1dd/04_function_to_structure.md": (function_structure_problems, OLD_FUNCTION_STRUCTURE),
    "network/02_motifs.md": (motifs_problems, OLD_MOTIFS),
    "network/03_edge_effects.md": (edge_effects_problems, OLD_EDGE_EFFECTS),
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
