"""place_synapses' memory-saving blocks give the numbers of one pass (generator/synapses.py).

The builder holds the site geometry in blocks it drops once placed and groups external
synapses ``FRAGMENT_ROWS`` rows at a time. None of these may change a number: the default
sample must stay byte-identical. Each test runs the builder (or the step) with tiny blocks and with blocks
larger than the input and compares the results exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from offline_cave.contract.params import MINNIE
from offline_cave.generator import synapses as S
from tests.fixtures.toy_skeletons import toy_population

# the toy population is sparse: fewer sites reach a local axon than the default asks for
pytestmark = pytest.mark.filterwarnings("ignore:only .* of synapse sites:UserWarning")


@pytest.fixture(scope="module")
def toy():
    return toy_population(300, np.random.default_rng(5))


def _place(cells, skeletons) -> pd.DataFrame:
    return S.place_synapses(cells, skeletons, MINNIE, np.random.default_rng(7))


def test_dropped_site_blocks_do_not_change_the_frame(toy, monkeypatch):
    """Blocks of 1,000 sites (each dropped once placed) against one block for all sites.

    CHUNK_SITES also paces the random draws, so it is compared against itself: the frame of
    a run that drops its blocks equals that of a run that keeps them."""
    cells, skeletons = toy
    monkeypatch.setattr(S, "CHUNK_SITES", 1000)
    dropped = _place(cells, skeletons)
    monkeypatch.setattr(S._Sites, "drop_geometry", lambda self, block: None)
    kept = _place(cells, skeletons)
    pd.testing.assert_frame_equal(dropped, kept, check_exact=True)


def test_blocks_take_rows_across_block_boundaries():
    rows = np.arange(23 * 3, dtype=np.float32).reshape(23, 3)
    parts = [rows[:4], rows[4:5], rows[5:5], rows[5:17], rows[17:]]
    blocks = S._Blocks(list(parts), 5, (0, 3), np.float32)
    assert [len(b) for b in blocks.blocks] == [5, 5, 5, 5, 3]
    idx = np.array([0, 4, 5, 9, 10, 14, 19, 20, 22])
    np.testing.assert_array_equal(blocks.take(idx), rows[idx])
    assert blocks.take(np.zeros(0, np.int64)).shape == (0, 3)
    blocks.drop(1)
    np.testing.assert_array_equal(blocks.take(np.array([2, 12])), rows[[2, 12]])
    with pytest.raises(RuntimeError, match="already dropped"):
        blocks.take(np.array([7]))


def test_external_fragments_in_row_blocks_equal_one_block(monkeypatch):
    pos = np.random.default_rng(3).uniform(0, 200, size=(5000, 3)).astype(np.float32)
    one = S._external_fragments(pos, np.random.default_rng(9))
    monkeypatch.setattr(S, "FRAGMENT_ROWS", 333)
    np.testing.assert_array_equal(S._external_fragments(pos, np.random.default_rng(9)), one)
    assert 2.0 < len(one) / one.max() < 5.0  # fragments of a few synapses, not one per cube
