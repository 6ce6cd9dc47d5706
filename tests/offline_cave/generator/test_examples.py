"""The tutorials' example cells in the generated sample (``offline_cave.generator.examples``).

The renaming is checked on a hand-made history; the planted cells on the default sample
(``OFFLINE_CAVE_DATA``, default ``sample-data``), read from its files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from offline_cave.contract import layout
from offline_cave.contract.ids import ROOT_BASE
from offline_cave.contract.params import MINNIE
from offline_cave.generator import examples
from offline_cave.generator.pipeline import ensure_sample
from offline_cave.generator.segmentation import History, unix
from tests.fixtures.paths import REPO_ROOT

DATA = Path(os.environ.get("OFFLINE_CAVE_DATA", REPO_ROOT / "sample-data"))
T1300, T1822 = (unix(MINNIE.timestamp_of(v)) for v in (1300, 1822))
REFERENCE = REPO_ROOT.parent.parent / "shared" / "reference" / "public-example-cells.md"


def toy_history(root_ids: list[int]) -> tuple[History, pd.DataFrame]:
    """Three pieces, each its own root (``root_ids``), the second replaced by a fourth root
    between the versions; cell 1 is the expired-root example."""
    a, b, c, b2 = root_ids
    roots = pd.DataFrame({"root_id": [a, b, c, b2], "created": [0.0, 0.0, 0.0, T1300 + 10],
                          "expired": [np.inf, T1300 + 10, np.inf, np.inf],
                          "operation_id": [0, 0, 0, 7], "nucleus_id": [11, 12, 13, 12]})
    history = History(
        roots=roots.sort_values("root_id").reset_index(drop=True),
        root_pieces=pd.DataFrame({"root_id": [a, b, c, b2], "piece_id": [0, 1, 2, 1]}),
        lineage=pd.DataFrame({"parent_root_id": [b], "child_root_id": [b2],
                              "operation_id": [7], "timestamp": [T1300 + 10]}),
        snapshots={T1300: np.array([a, b, c]), T1822: np.array([a, b2, c])})
    cells = pd.DataFrame({"example": ["", "expired_root", ""]})
    return history, cells


def test_rename_roots_everywhere() -> None:
    history, cells = toy_history([ROOT_BASE + 10, ROOT_BASE + 20, ROOT_BASE + 30, ROOT_BASE + 40])
    examples.rename_roots(history, cells, np.arange(3), {1300: T1300, 1822: T1822})
    old, new = examples.BY_ROLE["expired_root"].roots[0][1], examples.BY_ROLE["expired_root"
                                                                                ].roots[1][1]
    assert history.snapshots[T1300][1] == old and history.snapshots[T1822][1] == new
    assert list(history.lineage.parent_root_id) == [old]
    assert list(history.lineage.child_root_id) == [new]
    assert set(history.root_pieces.root_id) == {ROOT_BASE + 10, ROOT_BASE + 30, old, new}
    assert history.roots.root_id.is_monotonic_increasing
    # the real successor has the smaller counter: order is not time order
    assert history.roots.set_index("root_id").loc[new, "created"] > history.roots.set_index(
        "root_id").loc[old, "created"] and new < old


def test_a_synthetic_root_with_a_real_id_swaps_with_it() -> None:
    real = examples.BY_ROLE["expired_root"].roots[0][1]
    history, cells = toy_history([real, ROOT_BASE + 20, ROOT_BASE + 30, ROOT_BASE + 40])
    examples.rename_roots(history, cells, np.arange(3), {1300: T1300, 1822: T1822})
    assert history.snapshots[T1300][1] == real
    assert history.snapshots[T1300][0] == ROOT_BASE + 20  # the other cell took the old id
    assert not history.roots.root_id.duplicated().any()
    assert sorted(history.root_pieces.root_id) == sorted(history.roots.root_id)


def test_a_root_that_would_need_two_ids_is_refused() -> None:
    history, cells = toy_history([ROOT_BASE + 10, ROOT_BASE + 20, ROOT_BASE + 30, ROOT_BASE + 40])
    history.snapshots[T1822] = history.snapshots[T1300].copy()  # the cell was never edited
    with pytest.raises(ValueError, match="cannot take"):
        examples.rename_roots(history, cells, np.arange(3), {1300: T1300, 1822: T1822})


def test_every_example_cites_its_source() -> None:
    assert len({e.role for e in examples.EXAMPLES}) == len(examples.EXAMPLES)
    text = REFERENCE.read_text() if REFERENCE.is_file() else None
    for ex in examples.EXAMPLES:
        assert ex.source.startswith(examples.SOURCE)
        for _, root in ex.roots:
            assert root >> 56 == 12
            if text is not None:
                assert str(root) in text, (ex.role, root)
    assert examples.CHANGE_LOG_ROWS == round(examples.REAL_CHANGE_LOG_ROWS
                                              * MINNIE.synapse_keep_fraction)


# ------------------------------------------------------------------------ the default sample
@pytest.fixture(scope="module")
def ds() -> Path:
    return ensure_sample(DATA, "minnie65_public", deep=False, log=lambda *_: None)


@pytest.fixture(scope="module")
def planted(ds: Path) -> pd.DataFrame:
    cells = pd.read_parquet(ds / layout.CELLS_PARQUET)
    return cells[cells.example != ""].set_index("example")


def test_every_role_is_planted_once_in_a_cell_that_fits(planted: pd.DataFrame) -> None:
    assert sorted(planted.index) == sorted(examples.BY_ROLE)
    for role, cell in planted.iterrows():
        ex = examples.BY_ROLE[role]
        assert cell.cell_type in ex.cell_types, role
        assert not cell.root_zero, role
        if ex.nucleus_id is not None:
            assert cell.nucleus_id == ex.nucleus_id, role
        if ex.proofread:
            assert cell.proofread_axon and cell.proofread_time < T1822, role


def test_ids_are_unique(ds: Path) -> None:
    roots = pd.read_parquet(ds / layout.ROOTS_PARQUET)
    assert not roots.root_id.duplicated().any()
    cells = pd.read_parquet(ds / layout.CELLS_PARQUET)
    assert not cells.nucleus_id.duplicated().any()


@pytest.mark.parametrize("version", [1300, 1822])
def test_each_real_id_is_the_cells_root_at_its_versions(ds: Path, planted: pd.DataFrame,
                                                        version: int) -> None:
    """Nucleus table, roots file (valid at the version's time, same nucleus) and synapse and
    proofreading tables agree on the planted ids."""
    t = unix(MINNIE.timestamp_of(version))
    nucleus = pd.read_parquet(ds / f"v{version}" / "nucleus_detection_v0.parquet"
                              ).set_index("id")
    roots = pd.read_parquet(ds / layout.ROOTS_PARQUET).set_index("root_id")
    syn = pd.read_parquet(ds / f"v{version}" / "synapses_pni_2.parquet",
                          columns=["post_pt_root_id"])
    post = set(syn.post_pt_root_id.unique())
    for role, cell in planted.iterrows():
        root = dict(examples.BY_ROLE[role].roots)[version]
        assert nucleus.loc[cell.nucleus_id, "pt_root_id"] == root, role
        assert roots.loc[root, "created"] <= t < roots.loc[root, "expired"], role
        assert roots.loc[root, "nucleus_id"] == cell.nucleus_id, role
        assert root in post, role  # its inputs carry the id too


def test_the_expired_roots_history(ds: Path) -> None:
    roots = pd.read_parquet(ds / layout.ROOTS_PARQUET).set_index("root_id")
    lineage = pd.read_parquet(ds / layout.LINEAGE_PARQUET)
    (_, old), (_, new) = examples.BY_ROLE["expired_root"].roots
    assert roots.loc[old, "created"] == pytest.approx(unix(examples.EXPIRED_CREATED), abs=1e-3)
    assert roots.loc[old, "expired"] == roots.loc[new, "created"] == unix(
        examples.EXPIRED_REPLACED)
    assert new in set(lineage.child_root_id[lineage.parent_root_id == old])
