"""The example cells of the public MICrONS tutorials, planted into the synthetic sample.

The public tutorials hard-code example cells by their real root ids (the Allen Institute's
``microns_tutorial``, the SWDB databook, the 2025 workshop; listed with their roles in
``shared/reference/public-example-cells.md`` section 1). So that their code runs unchanged
against the sample, the generator picks, for each of them, a *synthetic* cell that fits the
role and gives that cell's root the real id, everywhere a root id appears: every table's
``*_root_id`` / ``valid_id`` columns at the versions where the id is valid, the chunkedgraph's
roots, pieces, lineage and operations, and so the skeleton and mesh the server gives for it.
Where the tutorials show the cell's nucleus id, the cell gets it too. The cells stay synthetic:
their skeletons, synapses, positions and edit histories are drawn like every other cell's; only
the identifiers and the facts listed in :data:`EXAMPLES` are taken from the public record.

Eighteen roles are planted (every root id the tutorials' code cells name, public-example-cells.md
§1).

Versions: the sample materializes 1300 and 1822 (``DatastackParams.materialized_versions``).
A root the tutorials show as current at their pins (1078-1718) is current at both; the two
roots whose tutorials show them replaced map the older version onto 1300 and the newer onto
1822 (the latest).

Real ids do not follow the synthetic "larger counter = later" order (the expired
864691135919440816 is replaced by 864691134991067002, a smaller counter); nothing in the
server relies on that order. A real id that happens to equal a synthetic one swaps with it, so
no id repeats.

Stages (called from ``pipeline.build``):

1. :func:`plant_cells` after the cells are placed: the cells whose role needs only their type
   (and their nucleus id, given before skeletons are grown, which are seeded by it);
2. :func:`plant_edited_cells` once synapses and axon fragments are known: the synapse-query
   example (most inputs) and the change-log cell (most fragments);
3. :func:`plan_example_edits` adds the edits the roles need (their times are public facts);
4. :func:`rename_roots` after the edits are replayed: synthetic root -> real id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from offline_cave.contract.params import EXC_TYPES
from offline_cave.generator.segmentation import Edit, History, unix

FIRST, LATEST = 1300, 1822  # the sample's materialized versions (see the module docstring)
SOURCE = "shared/reference/public-example-cells.md"

# change-log length: the real (filtered, the default) change log of 864691135617152361 has
# 1,249 rows (WS:ProgrammaticAccess #63); the sample keeps about 1 synapse in 12
# (synapse_keep_fraction 0.085) and scales this cell's history the same way: 1,249 x 0.085 =
# 106 rows (the unfiltered log adds the merges that were split off again)
REAL_CHANGE_LOG_ROWS = 1249
CHANGE_LOG_ROWS = 106
CHANGE_LOG_FIRST = "2021-06-01T00:00:00"  # the real first op is 2020-07-17, before the
# sample's initial segmentation (2020-10 .. 2021-05) exists, so the sample's starts later
CHANGE_LOG_LAST = "2024-04-24T22:41:33.121000"  # final merge creating the root (op 948266)
EXPIRED_CREATED = "2023-02-01T08:47:29.891000"  # root timestamp of 864691135919440816
# the expired root's successor was minted after the 2026-03 runs (which showed another one)
# and before the latest version; the exact day is *invented*
EXPIRED_REPLACED = "2026-04-15T09:00:00"
V661_REPLACED = "2024-04-10T04:07:54.947000"  # root timestamp of 864691135356151759


@dataclass(frozen=True)
class Example:
    """One example cell: its root id at each materialized version, and what it must be."""

    role: str
    # (version, or an ISO time between versions; root id of the cell then)
    roots: tuple[tuple[int | str, int], ...]
    facts: str  # what the tutorials show of it, which the sample honours
    source: str  # line of public-example-cells.md section 1 (and the tutorial cells)
    cell_types: tuple[str, ...] = EXC_TYPES  # true types that fit the role
    nucleus_id: int | None = None
    proofread: bool = False  # needs a proofread axon
    coregistered: bool = False  # needs to be co-registered with two-photon imaging
    first_proofread: bool = False  # first row of the proofreading table (earliest proofread)
    stage: int = 1  # 1: plant_cells (type only), 2: plant_edited_cells (synapses, fragments)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(sorted({r for _, r in self.roots}))


def _current(root_id: int) -> tuple[tuple[int, int], ...]:
    return ((FIRST, root_id), (LATEST, root_id))


EXAMPLES: tuple[Example, ...] = (
    Example("celltype_lookup_23p_1", _current(864691135771677771),
            "current; 23P / excitatory_neuron in aibs_metamodel_celltypes_v661; nucleus 19116",
            f"{SOURCE} §1 row 864691135771677771 (MT:qs/00#25, MT:qs/02#27, SWDB:em-querying-"
            "tables.md#24)", ("23P",), nucleus_id=19116),
    Example("celltype_lookup_23p_2", _current(864691135560505569),
            "current; 23P / excitatory_neuron; nucleus 21783",
            f"{SOURCE} §1 row 864691135560505569 (same cells)", ("23P",), nucleus_id=21783),
    Example("celltype_lookup_23p_3", _current(864691136723556861),
            "current; 23P / excitatory_neuron; nucleus 4074",
            f"{SOURCE} §1 row 864691136723556861 (same cells)", ("23P",), nucleus_id=4074),
    Example("example_pyramidal", _current(864691135572530981),
            "pyramidal; unchanged since before the first version; proofread axon; skeleton "
            "and meshes",
            f"{SOURCE} §1 row 864691135572530981 (MT:qs/06#15-24, MT:qs/07#6, SWDB:em-"
            "skeletons.md#2, WS:MeshAccess#9)", ("23P", "4P", "5P-IT"), proofread=True),
    Example("synapse_query", ((FIRST, 864691135808473885), (LATEST, 864691136968109774)),
            "proofread cell with the most inputs of the sample (real: 4,628 inputs, 1,499 "
            "outputs); current at the latest version; at 1300 its root was 864691135808473885 "
            "(the v1300 example, same input synapses), replaced by axon proofreading",
            f"{SOURCE} §1 row 864691136968109774 and §1b (MT:qs/04#20-24, SWDB:em-querying-"
            "tables.md#28)", proofread=True, stage=2),
    Example("expired_root", ((FIRST, 864691135919440816), (LATEST, 864691134991067002)),
            "valid at 1300, expired at the latest version; root timestamp 2023-02-01 "
            "08:47:29.891 UTC (so current at v661); successor 864691134991067002; nucleus 260620",
            f"{SOURCE} §1 row 864691135919440816 (MT:materialization-version#21-32)",
            nucleus_id=260620),
    Example("change_log", _current(864691135617152361),
            f"proofread axon and dendrite; created by the last logged merge (2024-04-24 "
            f"22:41:33 UTC); change log of {CHANGE_LOG_ROWS} rows (real: "
            f"{REAL_CHANGE_LOG_ROWS}, scaled by the synapse keep fraction)",
            f"{SOURCE} §1 row 864691135617152361 (WS:ProgrammaticAccess#63)",
            proofread=True, stage=2),
    Example("basket_cell", _current(864691136210378684),
            "basket cell (BC); current",
            f"{SOURCE} §1 row 864691136210378684 (MT:ex/basket_cell_myelin#6-11)", ("BC",)),
    Example("pcg_skel_target", _current(864691135639556411),
            "current (is_latest_roots True); nucleus 267207",
            f"{SOURCE} §1 row 864691135639556411 (MT:ex/skeleton_load_and_generate#39,#46)",
            nucleus_id=267207),
    Example("v661_lookup", (("2023-04-06T20:17:09.199182", 864691135851524807),
                            *_current(864691135356151759)),
            "pyramidal; root of nucleus 490689 at v661 864691135851524807, replaced by an axon "
            "extension at 2024-04-10 04:07:54.947 UTC by 864691135356151759, current since "
            "(suggest_latest_roots of the v661 root gives it)",
            f"{SOURCE} §1 row 864691135356151759 (MT:ex/skeleton_load_and_generate#22-26,"
            "#54,#55)", ("23P", "4P", "5P-IT"), nucleus_id=490689),
    Example("v661_skeleton_file", _current(864691135122603047),
            "pyramidal with nucleus 292685 (its v661 skeleton file is named "
            "864691135122603047_292685); shown valid at v661, *assumed* unchanged since",
            f"{SOURCE} §1 row 864691135122603047 and §2 (MT:ex/skeleton_load_and_generate#14)",
            ("23P", "4P", "5P-IT"), nucleus_id=292685),
    Example("latest_check", _current(864691135808631069),
            "current (is_latest_roots True)",
            f"{SOURCE} §1 row 864691135808631069 (MT:ex/skeleton_load_and_generate#56)"),
    Example("neuroglancer_link", _current(864691135441799752),
            "neuron with a proofread axon (its inputs and outputs go into a Neuroglancer link); "
            "*assumed* current at both versions",
            f"{SOURCE} §1 row 864691135441799752 (MT:qs/09-nglui-neuroglancer#20, SWDB:em-"
            "neuroglancer.md#3)", proofread=True),
    Example("skeleton_path_length", _current(864691134918592778),
            "pyramidal cell with axon and dendrite in its server skeleton (path length and "
            "synapse density); shown valid at 943, *assumed* unchanged since",
            f"{SOURCE} §1 row 864691134918592778 (WS:SkeletonAccess#7)", ("23P", "4P", "5P-IT")),
    Example("functional_inputs", _current(864691135655627458),
            "co-registered excitatory cell (valid at 1300); its tuning is drawn like every "
            "co-registered cell's (the tutorial shows pref_ori 2.573279 rad, not planted)",
            f"{SOURCE} §1 row 864691135655627458 (MT:ex/functional_inputs_orientation#8,#12)",
            coregistered=True),
    Example("meshmeta_mesh", _current(864691135545730856),
            "neuron whose dynamic mesh is downloaded with MeshMeta; *assumed* current",
            f"{SOURCE} §1 row 864691135545730856 (SWDB:em-meshes.md#1,#3)"),
    Example("meshwork_file", _current(864691134940133219),
            "neuron of a local meshwork file and a soma cut-out; *assumed* current",
            f"{SOURCE} §1 row 864691134940133219 (MT:qs/00_skeletons#23, MT:qs/06 md#26,#35)"),
    Example("first_proofread", _current(864691135686494647),
            "first row of proofreading_status_and_strategy(status_axon=True): the earliest "
            "proofread axon of the sample; current",
            f"{SOURCE} §1 row 864691135686494647 (MT:qs/07-cave-download-skeleton#12-14)",
            proofread=True, first_proofread=True),
)

BY_ROLE = {e.role: e for e in EXAMPLES}


def applies(name: str, materialized: tuple[int, ...]) -> bool:
    """The example cells are planted in minnie65_public with versions 1300 and 1822."""
    return name == "minnie65_public" and FIRST in materialized and LATEST in materialized


def _central_order(cells: pd.DataFrame, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``rows`` with those away from the slab's faces first (their skeletons are whole)."""
    xz = cells[["x_um", "z_um"]].to_numpy()[rows]
    mid = (xz.min(0) + xz.max(0)) / 2 if rows.size else np.zeros(2)
    far = np.abs(xz - mid).max(1)
    return rows[np.lexsort((rng.random(rows.size), far))]


def plant_cells(cells: pd.DataFrame, rng: np.random.Generator) -> None:
    """Stage 1: mark (``cells["example"]``, the role, "" elsewhere) a fitting cell for every
    stage-1 example, and give it its real nucleus id (a synthetic cell that had that id gets
    the example's old one, so no nucleus id repeats)."""
    cells["example"] = ""
    cells["stream_id"] = cells["nucleus_id"]  # random streams stay those of the ids as drawn
    taken = np.zeros(len(cells), dtype=bool)
    types = cells["cell_type"].to_numpy()
    proofread = cells["proofread_axon"].to_numpy()
    coregistered = cells["coregistered"].to_numpy()
    # a cell of the role's types (proofread or not, as the role needs), drawn among the most
    # central tenth of them: whole skeletons, and away from the proofreading of other roles
    for ex in (e for e in EXAMPLES if e.stage == 1):
        fits = np.isin(types, ex.cell_types) & ~taken & (proofread == ex.proofread)
        if ex.coregistered:
            fits &= coregistered
        rows = _central_order(cells, np.flatnonzero(fits), rng)
        if rows.size == 0:
            raise ValueError(f"no cell fits the example {ex.role}")
        row = int(rows[rng.integers(0, max(1, min(rows.size, rows.size // 10 + 1)))])
        taken[row] = True
        cells.loc[row, "example"] = ex.role
        if ex.nucleus_id is not None:
            _give_nucleus_id(cells, row, ex.nucleus_id)


def _give_nucleus_id(cells: pd.DataFrame, row: int, nucleus_id: int) -> None:
    ids = cells["nucleus_id"].to_numpy()
    other = np.flatnonzero(ids == nucleus_id)
    old = int(ids[row])
    for o in other:
        cells.loc[o, "nucleus_id"] = old
    cells.loc[row, "nucleus_id"] = nucleus_id


def plant_edited_cells(cells: pd.DataFrame, n_inputs: np.ndarray,
                       n_fragments: np.ndarray) -> None:
    """Stage 2: the synapse-query example is the proofread excitatory neuron with the most
    inputs (``n_inputs`` per row of ``cells``) that has an axon fragment to merge; the
    change-log cell the proofread excitatory neuron with the most fragments."""
    free = cells["example"].to_numpy() == ""
    proofread = cells["proofread_axon"].to_numpy() & free & (n_fragments > 0)
    types = cells["cell_type"].to_numpy()
    for role, score in (("synapse_query", n_inputs), ("change_log", n_fragments)):
        fits = proofread & np.isin(types, BY_ROLE[role].cell_types)
        row = int(np.argmax(np.where(fits, score, -1)))
        if not fits[row]:
            raise ValueError(f"no proofread cell with an axon fragment fits the example {role}")
        cells.loc[row, "example"] = role
        proofread[row] = False


def rows_of(cells: pd.DataFrame) -> dict[str, int]:
    """Role -> row of ``cells`` for the planted examples."""
    roles = cells["example"].to_numpy() if "example" in cells else np.zeros(0, object)
    return {str(r): int(i) for i, r in enumerate(roles) if r}


def plan_example_edits(cells: pd.DataFrame, cell_fragments: dict[int, np.ndarray],
                       free_external: np.ndarray, window: tuple[float, float],
                       rng: np.random.Generator) -> list[Edit]:
    """The edits the roles need; ``free_external`` are outside-axon pieces no other edit
    touches (each used once). Sets ``proofread_time`` of the change-log cell."""
    rows = rows_of(cells)
    edits: list[Edit] = []
    ext = iter(free_external.tolist())
    if "expired_root" in rows:
        row = rows["expired_root"]
        # an axon extension creates the root (its public timestamp), a later one replaces it
        edits.append(Edit(unix(EXPIRED_CREATED), "merge", [np.array([row]), np.array([next(ext)])],
                          "axon_extension"))
        edits.append(Edit(unix(EXPIRED_REPLACED), "merge",
                          [np.array([row]), np.array([next(ext)])], "axon_extension"))
    if "v661_lookup" in rows:
        row = rows["v661_lookup"]
        edits.append(Edit(unix(V661_REPLACED), "merge", [np.array([row]), np.array([next(ext)])],
                          "axon_extension"))
    if "change_log" in rows:
        row = rows["change_log"]
        frags = cell_fragments[int(cells["nucleus_id"].iat[row])]
        edits += _change_log_edits(row, frags, ext, rng)
        cells.loc[row, "proofread_time"] = unix(CHANGE_LOG_LAST)
    return edits


def _change_log_edits(row: int, frags: np.ndarray, ext, rng: np.random.Generator) -> list[Edit]:
    """Edits of one cell whose (filtered) change log has CHANGE_LOG_ROWS rows, the last a
    merge at CHANGE_LOG_LAST: its axon fragments merged one by one, and outside axons merged
    by mistake and split off again (none is kept: its synapses would give the cell outputs
    drawn without the sample's like-to-like rule). The filtered log the tutorial reads
    (``get_tabular_change_log``'s default) keeps the split of such a pair but not its merge
    (that merge is no longer in the neuron), so the unfiltered log is longer."""
    n_frag = min(frags.size - 1, CHANGE_LOG_ROWS // 3)
    n_pairs = CHANGE_LOG_ROWS - 1 - n_frag  # one row each in the filtered log (the split)
    n_single = 0  # (outside axons kept would give the cell outputs without like-to-like)
    units: list[list[tuple[str, int]]] = [[("merge", int(f))] for f in frags[:n_frag]]
    for _ in range(n_pairs):
        piece = next(ext)
        units.append([("merge", piece), ("split", piece)])
    units += [[("merge", next(ext))] for _ in range(n_single)]
    order = rng.permutation(len(units))
    seq = [op for k in order for op in units[k]]
    times = np.sort(rng.uniform(unix(CHANGE_LOG_FIRST), unix(CHANGE_LOG_LAST) - 3600, len(seq)))
    edits = [Edit(float(t), kind, [np.array([row]), np.array([piece])],
                  "axon_extension" if kind == "merge" else "split_false_merge")
             for t, (kind, piece) in zip(times, seq, strict=True)]
    edits.append(Edit(unix(CHANGE_LOG_LAST), "merge", [np.array([row]), np.array([int(frags[-1])])],
                      "axon_extension"))
    return edits


def _root_at(history: History, piece: int, t: float) -> int:
    """The root holding ``piece`` at time ``t``."""
    rp = history.root_pieces
    holders = rp.root_id.to_numpy()[rp.piece_id.to_numpy() == piece]
    roots = history.roots.set_index("root_id").loc[holders]
    valid = roots.index[(roots.created <= t) & (t < roots.expired)]
    if len(valid) != 1:
        raise ValueError(f"piece {piece} has {len(valid)} roots at {t}")
    return int(valid[0])


def rename_roots(history: History, cells: pd.DataFrame, core_piece: np.ndarray,
                 snapshot_times: dict[int, float]) -> dict[int, int]:
    """Give each planted cell's root its real id at each version (``snapshot_times``: version
    -> snapshot time) or time; returns the synthetic -> real map applied (swaps included)."""
    mapping: dict[int, int] = {}
    for role, row in rows_of(cells).items():
        for version, real in BY_ROLE[role].roots:
            if isinstance(version, str):
                synthetic = _root_at(history, int(core_piece[row]), unix(version))
            else:
                synthetic = int(history.snapshots[snapshot_times[version]][core_piece[row]])
            owner = {v: k for k, v in mapping.items()}.get(real, synthetic)
            if mapping.get(synthetic, real) != real or owner != synthetic:
                raise ValueError(f"example {role}: root {synthetic} at {version} cannot take "
                                 f"the id {real} (the role's versions disagree with its edits)")
            mapping[synthetic] = real
    existing = set(history.roots["root_id"].tolist())
    for synthetic, real in list(mapping.items()):
        if real in existing and real not in mapping:  # a synthetic root has the real id: swap
            mapping[real] = synthetic
    if not mapping:
        return mapping
    keys = np.array(sorted(mapping), dtype=np.int64)
    values = np.array([mapping[k] for k in keys], dtype=np.int64)

    def apply(ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.clip(np.searchsorted(keys, ids), 0, keys.size - 1)
        hit = keys[pos] == ids
        return np.where(hit, values[pos], ids)

    history.roots["root_id"] = apply(history.roots["root_id"].to_numpy())
    history.roots = history.roots.sort_values("root_id", kind="stable").reset_index(drop=True)
    rp = history.root_pieces
    rp["root_id"] = apply(rp["root_id"].to_numpy())
    history.root_pieces = rp.sort_values(["root_id", "piece_id"], kind="stable"
                                         ).reset_index(drop=True)
    for col in ("parent_root_id", "child_root_id"):
        history.lineage[col] = apply(history.lineage[col].to_numpy())
    for t in list(history.snapshots):
        history.snapshots[t] = apply(history.snapshots[t])
    if history.roots["root_id"].duplicated().any():
        raise ValueError("renaming the example roots made a root id repeat")
    return mapping
