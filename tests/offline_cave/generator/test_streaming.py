"""The per-block paths that keep the generator's peak memory down give the in-memory values."""

import numpy as np
import pandas as pd

from offline_cave.contract.geometry import cortical_to_voxels
from offline_cave.contract.params import MINNIE
from offline_cave.generator import pipeline


def _synapse_frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    cols = {f"{p}_{a}_um": rng.uniform(lo, hi, n).astype(np.float32)
            for p in ("pre", "post", "ctr")
            for a, (lo, hi) in zip("xyz", [(0, 400), (0, 900), (0, 60)], strict=True)}
    return pd.DataFrame({**cols, "size": rng.integers(4, 4000, n)})


def test_synapse_voxels_by_block_equal_the_whole_array(monkeypatch):
    syn = _synapse_frame(1000)
    res = MINNIE.synapse_voxel_resolution
    monkeypatch.setattr(pipeline, "_POINT_BLOCK_ROWS", 7)  # many blocks, a ragged last one
    got = pipeline._synapse_points(MINNIE, syn)
    for prefix, arr in (("pre", got.pre_vx), ("post", got.post_vx), ("ctr", got.ctr_vx)):
        um = syn[[f"{prefix}_{a}_um" for a in "xyz"]].to_numpy()
        want = np.rint(cortical_to_voxels(um, MINNIE, res)).astype(np.int32)
        assert arr.dtype == np.int32
        assert np.array_equal(arr, want)
    assert np.array_equal(got.size, syn["size"].to_numpy())
