"""Tests of ``offline_cave.contract.hashing``: values pinned from the generator's former inline
hashes (``pipeline.unit_hash``, ``synapses._mix64`` / ``_pair_normal`` and the proofreading
table's multiplicative hashes), so a change that would alter the sample fails here first."""

import numpy as np

from offline_cave.contract.hashing import (
    mix64,
    multiplicative_bucket,
    pair_hash,
    pair_normal,
    splitmix64,
    to_open_unit,
    to_unit,
    unit_hash,
)

IDS = np.array([0, 1, 2, 12345, 2**40 + 7], dtype=np.int64)


def test_unit_hash_pinned():
    assert unit_hash(IDS, 0).tolist() == [0.8833108082136426, 0.5665615751722809,
                                          0.5911897341980794, 0.1330796686614273,
                                          0.7236406603342725]
    assert unit_hash(IDS, 5).tolist() == [0.32732576421812576, 0.762894391911761,
                                          0.346622270411699, 0.33703454463939386,
                                          0.021924251189718413]


def test_splitmix64_pinned():
    assert [int(v) for v in splitmix64(np.array([0, 1, 12345], dtype=np.uint64))] == [
        16294208416658607535, 10451216379200822465, 2454886589211414944]
    # the first output of the reference splitmix64 generator seeded with 0
    assert int(splitmix64(np.uint64(0))) == 0xE220A8397B1DCDAF


def test_pair_normal_pinned():
    assert pair_normal(np.array([1, 2, 3]), np.array([4, 5, 6]), 7).tolist() == [
        1.2099393639436746, 1.1583411324082202, 0.7753658009832687]


def test_multiplicative_bucket_pinned():
    ids = np.array([1, 17, 12345, 730000], dtype=np.int64)
    assert multiplicative_bucket(ids, 2246822519, 1000, shift=5).tolist() == [203, 463, 907, 687]
    assert multiplicative_bucket(ids, 2654435761, 1000).tolist() == [761, 937, 545, 0]


def test_relations_between_helpers():
    x = np.arange(1000, dtype=np.uint64)
    with np.errstate(over="ignore"):
        assert np.array_equal(splitmix64(x), mix64(x + np.uint64(0x9E3779B97F4A7C15)))
        # unit_hash(ids, salt) is splitmix64 of the id shifted by salt increments
        shifted = x + np.uint64(0x9E3779B97F4A7C15) * np.uint64(3)
    assert np.array_equal(unit_hash(x, 3), to_unit(splitmix64(shifted)))


def test_properties():
    ids = np.arange(200_000, dtype=np.int64)
    u = unit_hash(ids, 1)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01
    assert abs(np.corrcoef(u, unit_hash(ids, 2))[0, 1]) < 0.01  # salts are independent
    assert np.array_equal(u, unit_hash(ids, 1))  # deterministic
    top = np.array([np.iinfo(np.uint64).max], dtype=np.uint64)
    assert to_unit(top)[0] < 1.0
    assert to_open_unit(np.zeros(1, dtype=np.uint64))[0] > 0.0  # bin centres: never 0
    z = pair_normal(ids[:50_000], ids[:50_000] + 1, 9)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02
    assert not np.array_equal(pair_hash(ids[:10], ids[1:11], 0), pair_hash(ids[1:11], ids[:10], 0))
