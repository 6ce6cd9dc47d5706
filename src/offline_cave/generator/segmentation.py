"""Segmentation history: pieces, roots, proofreading edits and their lineage.

A *piece* is an atomic bit of segmentation (a cell's soma + dendrites + proximal axon, one
distal axon fragment, one axon from outside the slab, ...). A *root* is a set of pieces valid
over a time interval. Proofreading edits merge roots (extending an axon, or a false merge) or
split them (separating two somata, removing a false merge); each edit mints new root ids
with larger counters, as the real PyChunkedGraph does, and records lineage edges and the
operation log (which pieces each edit joined or cut, by whom; :func:`operation_log` turns the
pieces into supervoxels, points and synthetic users once those are known).
"""

from __future__ import annotations

from collections.abc import Iterator
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
    # one row per edge each edit added or removed, between two pieces:
    # operation_id, timestamp, is_merge, source_piece, sink_piece
    operations: pd.DataFrame = field(default_factory=pd.DataFrame)
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
    piece_root_slot, initial_members, singles = _initial_slots(n_pieces, initial_groups)
    n_initial = len(initial_members) + singles.size
    slot_id, slot_created = _initial_roots(n_initial, rng)
    edits = sorted(edits, key=lambda e: e.time)
    n_new = sum(1 if e.kind == "merge" else len(e.pieces) for e in edits)
    new_ids = iter(root_ids_from_counters(mint_counters(rng, n_new, *EDIT_COUNTER_RANGE)))
    slots = _RootSlots.start(piece_root_slot, initial_members, singles, slot_id, slot_created,
                             n_new, new_ids)
    pending = sorted(snapshot_times)
    op_id = 10_000_000 + int(rng.integers(0, 1_000_000))
    for edit in edits:
        slots.take_snapshots(pending, edit.time)
        if edit.time <= max(slots.created[int(piece_root_slot[np.asarray(p)[0]])]
                            for p in edit.pieces):
            continue  # cannot edit a root before it exists (never happens with sane params)
        op_id += int(rng.integers(1, 400))
        if edit.kind == "merge":
            slots.merge(edit, op_id)
        elif edit.kind == "split":
            slots.split(edit, op_id)
        else:
            raise ValueError(f"unknown edit kind {edit.kind!r}")
    slots.take_snapshots(pending, np.inf)
    return _history_frames(slots, piece_nucleus, unlisted)


def _initial_slots(
    n_pieces: int, initial_groups: list[np.ndarray],
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Piece -> slot of the initial segmentation: one slot per group, then one per single."""
    piece_root_slot = np.full(n_pieces, -1, dtype=np.int64)  # slot = index into root arrays
    members: list[np.ndarray] = []
    for group in initial_groups:
        piece_root_slot[group] = len(members)
        members.append(np.asarray(group, dtype=np.int64))
    singles = np.flatnonzero(piece_root_slot < 0)
    piece_root_slot[singles] = np.arange(len(members), len(members) + singles.size)
    return piece_root_slot, members, singles  # the singles are represented implicitly


def _initial_roots(n_initial: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Root ids and creation times of the initial roots, in slot order."""
    start, end = unix(SEGMENTATION_START), unix(SEGMENTATION_END)
    initial_created = np.sort(rng.uniform(start, end, size=n_initial))
    initial_ids = root_ids_from_counters(mint_counters(rng, n_initial, *BASE_COUNTER_RANGE))
    # initial roots get counters in creation order, but the slot order is arbitrary
    perm = rng.permutation(n_initial)
    return initial_ids[perm], initial_created[perm]


@dataclass
class _RootSlots:
    """Per-slot root state during the simulation, in arrays sized for every root minted."""

    piece_root_slot: np.ndarray  # piece -> current slot
    initial_members: list[np.ndarray]  # pieces of the initial grouped slots
    singles: np.ndarray  # pieces that start as a root of their own
    single_slots: np.ndarray  # their slots
    ids: np.ndarray
    created: np.ndarray
    expired: np.ndarray
    operation: np.ndarray
    n_slots: int
    new_ids: Iterator[np.int64]
    extra_members: dict[int, np.ndarray] = field(default_factory=dict)
    lineage_rows: list[tuple[int, int, int, float]] = field(default_factory=list)
    operation_rows: list[tuple[int, float, bool, int, int]] = field(default_factory=list)
    snapshots: dict[float, np.ndarray] = field(default_factory=dict)

    @classmethod
    def start(cls, piece_root_slot: np.ndarray, initial_members: list[np.ndarray],
              singles: np.ndarray, slot_id: np.ndarray, slot_created: np.ndarray, n_new: int,
              new_ids: Iterator[np.int64]) -> _RootSlots:
        """State of the initial segmentation, with room for ``n_new`` edit results."""
        n_initial = len(initial_members) + singles.size
        n_total = n_initial + n_new
        ids = np.zeros(n_total, dtype=np.int64)
        ids[:n_initial] = slot_id
        created = np.zeros(n_total)
        created[:n_initial] = slot_created
        return cls(piece_root_slot=piece_root_slot, initial_members=initial_members,
                   singles=singles, single_slots=piece_root_slot[singles].copy(), ids=ids,
                   created=created, expired=np.full(n_total, np.inf),
                   operation=np.zeros(n_total, dtype=np.int64), n_slots=n_initial,
                   new_ids=new_ids)

    def members(self, slot: int) -> np.ndarray:
        """Pieces of the root in ``slot`` (initial groups, singletons, or edit results)."""
        if slot in self.extra_members:
            return self.extra_members[slot]
        n_groups = len(self.initial_members)
        if slot < n_groups:
            return self.initial_members[slot]
        return self.singles[slot - n_groups: slot - n_groups + 1].astype(np.int64)

    def take_snapshots(self, pending: list[float], until: float) -> None:
        """Record piece -> root id for every pending snapshot time up to ``until``."""
        while pending and pending[0] <= until:
            t = pending.pop(0)
            self.snapshots[t] = self.ids[self.piece_root_slot]

    def mint(self, members: np.ndarray, time: float, op_id: int) -> int:
        """Open a new slot for a root with ``members`` created at ``time``; return the slot."""
        new_slot = self.n_slots
        self.n_slots += 1
        self.ids[new_slot] = next(self.new_ids)
        self.created[new_slot] = time
        self.operation[new_slot] = op_id
        self.extra_members[new_slot] = members
        self.piece_root_slot[members] = new_slot
        return new_slot

    def merge(self, edit: Edit, op_id: int) -> None:
        """Merge the roots holding ``edit.pieces`` into one new root (no-op if already one)."""
        old_slots = sorted({int(self.piece_root_slot[np.asarray(p)[0]]) for p in edit.pieces})
        if len(old_slots) < 2:
            return
        # the user joins the first piece to each piece of another root (one edge each)
        source = int(np.asarray(edit.pieces[0])[0])
        joined = {int(self.piece_root_slot[source])}
        for p in edit.pieces[1:]:
            sink = int(np.asarray(p)[0])
            if int(self.piece_root_slot[sink]) not in joined:
                joined.add(int(self.piece_root_slot[sink]))
                self.operation_rows.append((op_id, edit.time, True, source, sink))
        union = np.concatenate([self.members(s) for s in old_slots])
        new_slot = self.mint(union, edit.time, op_id)
        for s in old_slots:
            self.expired[s] = edit.time
            self.lineage_rows.append((self.ids[s], self.ids[new_slot], op_id, edit.time))

    def split(self, edit: Edit, op_id: int) -> None:
        """Split one root into the groups of ``edit.pieces`` (the rest joins the first)."""
        first = np.asarray(edit.pieces[0])
        old_slot = int(self.piece_root_slot[first[0]])
        old = self.members(old_slot)
        groups = [np.asarray(g, dtype=np.int64) for g in edit.pieces]
        covered = np.concatenate(groups)
        rest = np.setdiff1d(old, covered)
        if rest.size:
            groups[0] = np.concatenate([groups[0], rest])
        if any(int(self.piece_root_slot[g[0]]) != old_slot for g in groups):
            raise ValueError("a split must divide one root")
        self.expired[old_slot] = edit.time
        for g in groups[1:]:  # the user cuts the first group from each other one
            self.operation_rows.append((op_id, edit.time, False, int(groups[0][0]), int(g[0])))
        for g in groups:
            new_slot = self.mint(g, edit.time, op_id)
            self.lineage_rows.append((self.ids[old_slot], self.ids[new_slot], op_id, edit.time))


def _root_nucleus(members: np.ndarray, piece_nucleus: np.ndarray,
                  unlisted: np.ndarray) -> int:
    """Smallest listed nucleus among ``members``, else smallest unlisted, else 0."""
    nuc = piece_nucleus[members]
    nuc = nuc[nuc > 0]
    listed = nuc[~np.isin(nuc, unlisted)]
    return listed.min() if listed.size else (nuc.min() if nuc.size else 0)


def _history_frames(slots: _RootSlots, piece_nucleus: np.ndarray,
                    unlisted: np.ndarray) -> History:
    """Tables of every root that ever existed, its pieces and the lineage."""
    n_slots = slots.n_slots
    ids_arr, created, expired, operation = (slots.ids[:n_slots], slots.created[:n_slots],
                                            slots.expired[:n_slots], slots.operation[:n_slots])
    # membership of every root that ever existed: singletons vectorised, the rest looped
    rp_root: list[np.ndarray] = [ids_arr[slots.single_slots]]
    rp_piece: list[np.ndarray] = [slots.singles.astype(np.int64)]
    nucleus = np.zeros(n_slots, dtype=np.int64)
    nucleus[slots.single_slots] = piece_nucleus[slots.singles]
    grouped = [s for s in range(len(slots.initial_members))] + sorted(slots.extra_members)
    for slot in grouped:
        m = slots.members(slot)
        rp_root.append(np.full(m.size, ids_arr[slot], dtype=np.int64))
        rp_piece.append(m)
        nucleus[slot] = _root_nucleus(m, piece_nucleus, unlisted)
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
    lineage = pd.DataFrame(slots.lineage_rows, columns=["parent_root_id", "child_root_id",
                                                        "operation_id", "timestamp"])
    lineage = lineage.astype({"parent_root_id": "int64", "child_root_id": "int64",
                              "operation_id": "int64", "timestamp": "float64"})
    operations = pd.DataFrame(slots.operation_rows, columns=[
        "operation_id", "timestamp", "is_merge", "source_piece", "sink_piece"])
    operations = operations.astype({"operation_id": "int64", "timestamp": "float64",
                                    "is_merge": "bool", "source_piece": "int64",
                                    "sink_piece": "int64"})
    return History(roots=roots, root_pieces=root_pieces.reset_index(drop=True),
                   lineage=lineage, operations=operations, snapshots=slots.snapshots)


# ---------------------------------------------------------------------------- operation log
# the public chunkedgraphs name a few hundred proofreaders, a handful of whom make most edits;
# these are invented (names and labs say so) and only give the log its shape
N_USERS = 40
USER_ID_RANGE = (1, 3000)
SYNTHETIC_LABS = ("Synthetic Lab A", "Synthetic Lab B", "Synthetic Lab C",
                  "Synthetic Proofreading Team")


def synthetic_users(rng: np.random.Generator, n_users: int = N_USERS) -> pd.DataFrame:
    """The proofreaders of the log: sparse ids, invented names and labs (USER_COLUMNS)."""
    ids = np.sort(rng.choice(np.arange(*USER_ID_RANGE), size=n_users, replace=False))
    return pd.DataFrame({
        "user_id": ids.astype(np.int64),
        "user_name": [f"synthetic proofreader {k + 1:02d}" for k in range(n_users)],
        "user_affiliation": [SYNTHETIC_LABS[int(i)]
                             for i in rng.integers(0, len(SYNTHETIC_LABS), n_users)],
    })


def operation_log(operations: pd.DataFrame, piece_points: tuple[np.ndarray, np.ndarray,
                                                                np.ndarray],
                  users: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The operation log (OPERATION_COLUMNS) from the piece-level edges of :class:`History`.

    ``piece_points`` = (piece ids sorted, a supervoxel of each, its point in segmentation base
    voxels (n, 3)): each side of an edge is that supervoxel and point (0 and the point of the
    other side where a piece holds no supervoxel). Each edit is made by one user, drawn with
    Zipf-like weights so that a few users make most edits.
    """
    pieces, piece_sv, piece_xyz = piece_points
    ops = operations.sort_values(["operation_id", "sink_piece"], kind="stable")
    ops = ops.reset_index(drop=True)

    def side(col: str) -> tuple[np.ndarray, np.ndarray]:
        p = ops[col].to_numpy()
        pos = np.clip(np.searchsorted(pieces, p), 0, max(len(pieces) - 1, 0))
        found = (pieces[pos] == p) if len(pieces) else np.zeros(len(p), bool)
        sv = np.where(found, piece_sv[pos] if len(pieces) else 0, 0).astype(np.int64)
        xyz = piece_xyz[pos] if len(pieces) else np.zeros((len(p), 3), np.int64)
        return sv, np.where(found[:, None], xyz, -1)

    src_sv, src_xyz = side("source_piece")
    snk_sv, snk_xyz = side("sink_piece")
    src_xyz = np.where(src_xyz < 0, snk_xyz, src_xyz)  # a side without a point: the other's
    snk_xyz = np.where(snk_xyz < 0, src_xyz, snk_xyz)
    src_xyz, snk_xyz = np.maximum(src_xyz, 0), np.maximum(snk_xyz, 0)
    op_ids, op_index = np.unique(ops["operation_id"].to_numpy(), return_inverse=True)
    weights = 1.0 / np.arange(1, len(users) + 1) ** 1.1
    op_user = rng.choice(users["user_id"].to_numpy(), size=len(op_ids),
                         p=weights / weights.sum())
    return pd.DataFrame({
        "operation_id": ops["operation_id"].to_numpy(np.int64),
        "timestamp": ops["timestamp"].to_numpy(np.float64),
        "user_id": op_user[op_index].astype(np.int64),
        "is_merge": ops["is_merge"].to_numpy(bool),
        "source_supervoxel_id": src_sv, "sink_supervoxel_id": snk_sv,
        "source_x": src_xyz[:, 0], "source_y": src_xyz[:, 1], "source_z": src_xyz[:, 2],
        "sink_x": snk_xyz[:, 0], "sink_y": snk_xyz[:, 1], "sink_z": snk_xyz[:, 2],
    })
