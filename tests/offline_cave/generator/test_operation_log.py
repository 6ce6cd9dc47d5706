"""The operation log of the edit history (``segments/operations.parquet``, ``users.parquet``):
what the chunkedgraph's change logs and operation details are read from (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from offline_cave.contract import layout
from offline_cave.generator import segmentation as segments
from offline_cave.generator.pipeline import ensure_sample


def _history() -> segments.History:
    t0 = segments.unix("2025-01-13T10:10:01.286229")
    edits = [segments.Edit(t0 + 10, "split", [np.array([0]), np.array([3])]),
             segments.Edit(t0 + 20, "merge", [np.array([0]), np.array([1]), np.array([2])]),
             segments.Edit(t0 + 30, "merge", [np.array([0]), np.array([1])])]  # already one
    return segments.simulate(5, [np.array([0, 3])], edits, np.array([11, 0, 0, 22, 0]),
                             [t0], np.random.default_rng(0))


def test_each_edit_records_the_pieces_it_joined_or_cut() -> None:
    ops = _history().operations
    split, merge = sorted(ops.operation_id.unique())
    assert ops[ops.operation_id == split][["is_merge", "source_piece", "sink_piece"]] \
        .values.tolist() == [[False, 0, 3]]
    assert ops[ops.operation_id == merge][["is_merge", "source_piece", "sink_piece"]] \
        .values.tolist() == [[True, 0, 1], [True, 0, 2]]  # one edge per root joined
    assert ops.operation_id.nunique() == _history().lineage.operation_id.nunique()  # no no-op


def test_the_log_names_supervoxels_points_and_users() -> None:
    hist = _history()
    pieces = np.array([0, 1, 3])  # piece 2 has no supervoxel
    points = (pieces, np.array([100, 101, 103]), np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]]))
    users = segments.synthetic_users(np.random.default_rng(1))
    log = segments.operation_log(hist.operations, points, users, np.random.default_rng(2))
    assert list(log.columns) == list(layout.OPERATION_COLUMNS)
    assert log.source_supervoxel_id.tolist() == [100, 100, 100]
    assert log.sink_supervoxel_id.tolist() == [103, 101, 0]
    assert log[["sink_x", "sink_y", "sink_z"]].values.tolist() == [[7, 8, 9], [4, 5, 6],
                                                                   [1, 2, 3]]
    assert set(log.user_id) <= set(users.user_id)
    assert log.groupby("operation_id").user_id.nunique().max() == 1  # one user per edit
    assert list(users.columns) == list(layout.USER_COLUMNS)
    assert users.user_id.is_unique and all("synthetic" in n for n in users.user_name)


def test_a_few_users_make_most_edits() -> None:
    ops = pd.DataFrame({"operation_id": np.arange(2000), "timestamp": np.zeros(2000),
                        "is_merge": True, "source_piece": 0, "sink_piece": 1})
    users = segments.synthetic_users(np.random.default_rng(1))
    log = segments.operation_log(ops, (np.array([0, 1]), np.array([5, 6]), np.zeros((2, 3))),
                                 users, np.random.default_rng(3))
    counts = log.user_id.value_counts()
    assert counts.iloc[:5].sum() > 0.5 * len(log)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_sample(tmp_path_factory.mktemp("oplog"), "minnie65_public", scale=0.05,
                         log=lambda *_: None)


def test_the_generated_log_agrees_with_lineage_and_pieces(small: Path) -> None:
    def read(rel: str) -> pd.DataFrame:
        return pq.read_table(small / rel).to_pandas()

    ops, lin = read(layout.OPERATIONS_PARQUET), read(layout.LINEAGE_PARQUET)
    users = read(layout.USERS_PARQUET)
    assert list(ops.columns) == list(layout.OPERATION_COLUMNS)
    assert set(ops.operation_id) == set(lin.operation_id)
    when = lin.groupby("operation_id").timestamp.first()
    assert np.allclose(ops.timestamp, when.loc[ops.operation_id].to_numpy())
    assert set(ops.user_id) <= set(users.user_id)
    # the placed supervoxels were in the edit's parent roots and end up in its children
    pieces = read(layout.PIECES_PARQUET).set_index("supervoxel_id").piece_id
    rp = read(layout.ROOT_PIECES_PARQUET)
    holders = rp.groupby("piece_id").root_id.apply(set)
    parents = lin.groupby("operation_id").parent_root_id.apply(set)
    children = lin.groupby("operation_id").child_root_id.apply(set)
    # every edited piece has a supervoxel to click on, even an axon fragment whose synapses
    # were all dropped by the keep fraction (it gets one at its first skeleton node)
    placed = ops[(ops.source_supervoxel_id != 0) & (ops.sink_supervoxel_id != 0)]
    assert len(placed) == len(ops)
    assert pieces.index.is_unique
    # each supervoxel id names the chunk its point is in (within a voxel of rounding)
    info = json.loads((small / layout.DATASTACK_JSON).read_text())
    offset, size = np.array(info["chunk_offset_vx"]), np.array(info["chunk_size"])
    for end in ("source", "sink"):
        sv = ops[f"{end}_supervoxel_id"].to_numpy()
        chunk = np.stack([(sv >> 46) & 1023, (sv >> 36) & 1023, (sv >> 26) & 1023], axis=1)
        pt = ops[[f"{end}_x", f"{end}_y", f"{end}_z"]].to_numpy()
        lo = offset + chunk * size
        assert np.all((pt >= lo - 1) & (pt <= lo + size)), end
    for row in placed.itertuples():
        for sv in (row.source_supervoxel_id, row.sink_supervoxel_id):
            roots = holders[pieces[sv]]
            assert roots & parents[row.operation_id] and roots & children[row.operation_id]
        same = holders[pieces[row.source_supervoxel_id]] & holders[pieces[row.sink_supervoxel_id]]
        # a merge joins two roots into its child; a split leaves them in different children
        assert bool(same & children[row.operation_id]) == row.is_merge
