"""Segmentation history: pieces, roots, proofreading edits and their lineage.

A *piece* is an atomic bit of segmentation (a cell's soma + dendrites + proximal axon, one
distal axon fragment, one axon from outside the slab, ...). A *root* is a set of pieces valid
over a time interval. Proofreading edits merge roots (extending an axon, or a false merge) or
split them (separating two somata, removing a false merge); each edit mints new root ids
with larger counters, as the real PyChunkedGraph does, and records lineage edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from offline_cave.contract.ids import mint_counters, root_ids_from_counters

# root counters of the public data run ~3.59e9 .. 8.74e9 (datasets-facts §1.4)
BASE_COUNTER_RANGE = (3.59e9, 6.9e9)
EDIT_COUNTER_RANGE = (6.9e9, 8.74e9)
SEGMENTATION_START = "2020-10-01T00:00:00"
SEGMENTATION_END = "2021-05-01T00:00:00"


def unix(iso: str) -> float:
    """Naive-UTC ISO timestamp -> unix seconds."""
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


@dataclass
class Edit:
    time: float
    kind: str  # "merge" or "split"
    pieces: list[np.ndarray]  # merge: one piece each root to merge; split: the piece groups
    label: str = ""


@dataclass
class History:
    """Result of simulating the edits: everything ``layout.py`` stores under ``segments/``."""

    roots: pd.DataFrame  # root_id, created, expired, operation_id, nucleus_id
    root_pieces: pd.DataFrame  # root_id, piece_id
    lineage: pd.DataFrame  # parent_root_id, child_root_id, operation_id, timestamp
    snapshots: dict[float, np.ndarray] = field(default_factory=dict)  # time -> piece -> root


def simulate(
    n_pieces: int,
    initial_groups: list[np.ndarray],
    edits: list[Edit],
    piece_nucleus: np.ndarray,
    snapshot_times: list[float],
    rng: np.random.Generator,
    unlisted_nuclei: np.ndarray | None = None,
) -> History:
    """Run the edit history and take piece -> root snapshots at ``snapshot_times``.

    ``initial_groups`` lists the pieces of each root of the initial segmentation (pieces not
    listed get a root of their own). ``piece_nucleus`` gives the nucleus id of pieces that
    carry a soma (0 otherwise). A root's ``nucleus_id`` (the cell whose skeleton and mesh the
    server gives for it) is the smallest nucleus it carries, preferring nuclei that the nucleus
    table lists with this root: ``unlisted_nuclei`` are those whose point has no root
    (``pt_root_id`` 0), used only for a root that carries no other nucleus.
    """
    unlisted = np.zeros(0, np.int64) if unlisted_nuclei is None else np.asarray(unlisted_nuclei)
    piece_root_slot = np.full(n_pieces, -1, dtype=np.int64)  # slot = index into root arrays
    members: list[np.ndarray] = []
    for group in initial_groups:
        piece_root_slot[group] = len(members)
        members.append(np.asarray(group, dtype=np.int64))
    singles = np.flatnonzero(piece_root_slot < 0)
    piece_root_slot[singles] = np.arange(len(members), len(members) + singles.size)
    single_slots = piece_root_slot[singles].copy()
    n_initial = len(members) + singles.size
    initial_members = members  # the singles are represented implicitly

    start, end = unix(SEGMENTATION_START), unix(SEGMENTATION_END)
    initial_created = np.sort(rng.uniform(start, end, size=n_initial))
    initial_ids = root_ids_from_counters(mint_counters(rng, n_initial, *BASE_COUNTER_RANGE))
    # initial roots get counters in creation order, but the slot order is arbitrary
    perm = rng.permutation(n_initial)
    slot_id = initial_ids[perm]
    slot_created = initial_created[perm]

    edits = sorted(edits, key=lambda e: e.time)
    n_new = sum(1 if e.kind == "merge" else len(e.pieces) for e in edits)
    new_ids = iter(root_ids_from_counters(mint_counters(rng, n_new, *EDIT_COUNTER_RANGE)))
    # per-slot state in arrays sized for every root the edits will mint
    n_total = n_initial + n_new
    ids = np.zeros(n_total, dtype=np.int64)
    ids[:n_initial] = slot_id
    created = np.zeros(n_total)
    created[:n_initial] = slot_created
    expired = np.full(n_total, np.inf)
    operation = np.zeros(n_total, dtype=np.int64)
    n_slots = n_initial
    extra_members: dict[int, np.ndarray] = {}
    lineage_rows: list[tuple[int, int, int, float]] = []
    n_groups = len(initial_members)

    def slot_members(slot: int) -> np.ndarray:
        """Pieces of the root in ``slot`` (initial groups, singletons, or edit results)."""
        if slot in extra_members:
            return extra_members[slot]
        if slot < n_groups:
            return initial_members[slot]
        return singles[slot - n_groups: slot - n_groups + 1].astype(np.int64)

    snapshots: dict[float, np.ndarray] = {}
    pending = sorted(snapshot_times)
    op_id = 10_000_000 + int(rng.integers(0, 1_000_000))

    def take_snapshots(until: float) -> None:
        while pending and pending[0] <= until:
            t = pending.pop(0)
            snapshots[t] = ids[piece_root_slot]

    for edit in edits:
        take_snapshots(edit.time)
        if edit.time <= max(created[int(piece_root_slot[np.asarray(p)[0]])] for p in edit.pieces):
            continue  # cannot edit a root before it exists (never happens with sane params)
        op_id += int(rng.integers(1, 400))
        if edit.kind == "merge":
            old_slots = sorted({int(piece_root_slot[np.asarray(p)[0]]) for p in edit.pieces})
            if len(old_slots) < 2:
                continue
            union = np.concatenate([slot_members(s) for s in old_slots])
            new_slot = n_slots
            n_slots += 1
            ids[new_slot] = next(new_ids)
            created[new_slot] = edit.time
            operation[new_slot] = op_id
            extra_members[new_slot] = union
            piece_root_slot[union] = new_slot
            for s in old_slots:
                expired[s] = edit.time
                lineage_rows.append((ids[s], ids[new_slot], op_id, edit.time))
        elif edit.kind == "split":
            first = np.asarray(edit.pieces[0])
            old_slot = int(piece_root_slot[first[0]])
            old = slot_members(old_slot)
            groups = [np.asarray(g, dtype=np.int64) for g in edit.pieces]
            covered = np.concatenate(groups)
            rest = np.setdiff1d(old, covered)
            if rest.size:
                groups[0] = np.concatenate([groups[0], rest])
            if any(int(piece_root_slot[g[0]]) != old_slot for g in groups):
                raise ValueError("a split must divide one root")
            expired[old_slot] = edit.time
            for g in groups:
                new_slot = n_slots
                n_slots += 1
                ids[new_slot] = next(new_ids)
                created[new_slot] = edit.time
                operation[new_slot] = op_id
                extra_members[new_slot] = g
                piece_root_slot[g] = new_slot
                lineage_rows.append((ids[old_slot], ids[new_slot], op_id, edit.time))
        else:
            raise ValueError(f"unknown edit kind {edit.kind!r}")
    take_snapshots(np.inf)

    ids_arr, created, expired, operation = (ids[:n_slots], created[:n_slots], expired[:n_slots],
                                            operation[:n_slots])
    # membership of every root that ever existed: singletons vectorised, the rest looped
    rp_root: list[np.ndarray] = [ids_arr[single_slots]]
    rp_piece: list[np.ndarray] = [singles.astype(np.int64)]
    nucleus = np.zeros(n_slots, dtype=np.int64)
    nucleus[single_slots] = piece_nucleus[singles]
    grouped = [s for s in range(len(initial_members))] + sorted(extra_members)
    for slot in grouped:
        m = slot_members(slot)
        rp_root.append(np.full(m.size, ids_arr[slot], dtype=np.int64))
        rp_piece.append(m)
        nuc = piece_nucleus[m]
        nuc = nuc[nuc > 0]
        listed = nuc[~np.isin(nuc, unlisted)]
        nucleus[slot] = listed.min() if listed.size else (nuc.min() if nuc.size else 0)
    roots = pd.DataFrame({
        "root_id": ids_arr,
        "created": np.asarray(created, dtype=np.float64),
        "expired": np.asarray(expired, dtype=np.float64),
        "operation_id": np.asarray(operation, dtype=np.int64),
        "nucleus_id": nucleus,
    }).sort_values("root_id", kind="stable").reset_index(drop=True)
    root_pieces = pd.DataFrame({"root_id": np.concatenate(rp_root),
                                "piece_id": np.concatenate(rp_piece)})
    root_pieces = root_pieces.sort_values(["root_id", "piece_id"], kind="stable")
    lineage = pd.DataFrame(lineage_rows, columns=["parent_root_id", "child_root_id",
                                                  "operation_id", "timestamp"])
    lineage = lineage.astype({"parent_root_id": "int64", "child_root_id": "int64",
                              "operation_id": "int64", "timestamp": "float64"})
    return History(roots=roots, root_pieces=root_pieces.reset_index(drop=True),
                   lineage=lineage, snapshots=snapshots)
