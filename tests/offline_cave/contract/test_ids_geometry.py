"""Id formats and coordinate frames of the sample (datasets-facts §1.3-1.4)."""

import numpy as np
import pytest
import standard_transform

from offline_cave.contract import geometry, ids
from offline_cave.contract.params import MINNIE


def test_root_ids_have_layer_12_and_18_digits():
    rng = np.random.default_rng(0)
    roots = ids.root_ids_from_counters(ids.mint_counters(rng, 1000, 3.59e9, 8.74e9))
    assert np.all(roots >> 56 == 12)
    assert all(len(str(r)) == 18 and str(r).startswith("8646911") for r in roots)
    assert np.unique(roots).size == roots.size
    assert np.all(np.diff(roots) > 0), "counters are minted in time order"


def test_mint_counters_refuses_impossible_requests():
    with pytest.raises(ValueError, match="cannot mint"):
        ids.mint_counters(np.random.default_rng(0), 100, 0, 50)


def test_supervoxel_ids_decode_to_their_chunk():
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(62_714, 413_850, 5000), rng.uniform(75_198, 279_828, 5000),
                           rng.uniform(14_850, 27_791, 5000)])
    sv = ids.supervoxel_ids(pts, MINNIE.voxel_resolution, MINNIE.base_resolution,
                            MINNIE.chunk_size, MINNIE.chunk_offset_vx, rng)
    assert np.all(sv >> 56 == 1)
    assert np.unique(sv).size == sv.size
    cx = (sv >> 46) & 1023
    cy = (sv >> 36) & 1023
    cz = (sv >> 26) & 1023
    # datasets-facts decoding of real minnie65 supervoxels
    assert np.array_equal(cx, np.floor((pts[:, 0] / 2 - 26385) / 256).astype(int))
    assert np.array_equal(cy, np.floor((pts[:, 1] / 2 - 30308) / 256).astype(int))
    assert np.array_equal(cz, np.floor((pts[:, 2] - 14850) / 512).astype(int))
    assert (sv & ((1 << 26) - 1)).max() < 7.1e5


def _supervoxel_ids_in_memory(parts, voxel_resolution, base_resolution, chunk_size,
                              chunk_offset_vx, rng):
    """The previous implementation (every intermediate at full size), kept as the reference."""
    key = np.zeros(sum(len(p) for p in parts), dtype=np.int64)
    for axis in range(3):
        scale = voxel_resolution[axis] / base_resolution[axis]
        coord = np.concatenate([
            np.floor((np.asarray(p)[:, axis] * scale - chunk_offset_vx[axis]) / chunk_size[axis])
            .astype(np.int64) for p in parts])
        np.clip(coord, 0, 1023, out=coord)
        key |= coord << (20 - 10 * axis)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_key)) + 1]
    counts = np.diff(np.r_[starts, key.size])
    chunk_base = rng.integers(1, 400_000, size=starts.size)
    k = np.empty(key.size, dtype=np.int64)
    k[order] = np.repeat(chunk_base - starts, counts) + np.arange(key.size)
    cx, cy, cz = (key >> 20) & 1023, (key >> 10) & 1023, key & 1023
    return (np.int64(ids.SV_LAYER) | (cx << 46) | (cy << 36) | (cz << 26) | k).astype(np.int64)


def test_supervoxel_ids_part_by_part_equal_the_in_memory_ids():
    """The sample's supervoxel ids must not change with the memory-saving rewrite: int32
    synapse voxels scaled lazily (``ScaledPoints``) give the ids of the float64 copies."""
    rng = np.random.default_rng(3)
    nuc = np.column_stack([rng.uniform(62_714, 413_850, 300), rng.uniform(75_198, 279_828, 300),
                           rng.uniform(14_850, 27_791, 300)]).round()
    syn_vx = np.column_stack([rng.integers(31_000, 207_000, 4000),
                              rng.integers(37_000, 140_000, 4000),
                              rng.integers(14_850, 27_791, 4000)]).astype(np.int32)
    to_table = np.array([2.0, 2.0, 1.0])  # 8 x 8 x 40 nm synapse voxels -> 4 x 4 x 40 nm
    res = (MINNIE.voxel_resolution, MINNIE.base_resolution, MINNIE.chunk_size,
           MINNIE.chunk_offset_vx)
    want = _supervoxel_ids_in_memory([nuc, syn_vx * to_table, (syn_vx + 3) * to_table], *res,
                                     np.random.default_rng(4))
    got = ids.supervoxel_ids([nuc, ids.ScaledPoints(syn_vx, to_table),
                              ids.ScaledPoints(syn_vx + 3, to_table)], *res,
                             np.random.default_rng(4))
    assert got.dtype == np.int64
    assert np.array_equal(got, want)
    assert np.array_equal(ids.ScaledPoints(syn_vx, to_table).rows(np.arange(10, 20)),
                          (syn_vx * to_table)[10:20])


def test_sparse_sorted_ids_are_unique_and_in_range():
    out = ids.sparse_sorted_ids(np.random.default_rng(2), 10_000, 1000, 730_000)
    assert out.min() >= 1000 and out.max() < 730_000
    assert np.all(np.diff(out) > 0)


def test_cortical_frame_round_trips_through_standard_transform():
    pts = np.array([[800.0, 0.0, 860.0], [700.0, 350.0, 800.0], [950.0, 880.0, 980.0]])
    vx = geometry.cortical_to_voxels(pts, MINNIE)
    # students use standard_transform on served voxel positions: they must get the depths back
    back = standard_transform.minnie_transform("vx").apply(vx)
    np.testing.assert_allclose(back, pts, atol=1e-6)
    nm = geometry.cortical_to_nm(pts, MINNIE)
    np.testing.assert_allclose(nm, vx * np.array([4, 4, 40]), rtol=1e-9)


def test_pia_lies_near_the_real_y_with_a_tilt():
    # datasets-facts §1.3: raw pia near y = 0.4 mm (here ~ 83,5xx voxels) sloping ~5 degrees
    pia = geometry.cortical_to_voxels(np.array([[650.0, 0, 860], [950.0, 0, 860]]), MINNIE)
    assert 75_000 < pia[0, 1] < 90_000
    slope = np.degrees(np.arctan2((pia[1, 1] - pia[0, 1]) * 4, (pia[1, 0] - pia[0, 0]) * 4))
    assert 4.0 < abs(slope) < 6.0


def test_layer_of_depth():
    assert list(geometry.layer_of_depth([0, 103.9, 104, 350, 500, 700, 900])) == [
        "L1", "L1", "L2/3", "L4", "L5", "L6", "WM"]


def test_slab_rejects_bad_scale_and_grows_with_scale():
    with pytest.raises(ValueError):
        geometry.slab_for(MINNIE, 0)
    small, big = geometry.slab_for(MINNIE, 1), geometry.slab_for(MINNIE, 10)
    assert big.volume_mm3 == pytest.approx(10 * small.volume_mm3, rel=1e-6)
