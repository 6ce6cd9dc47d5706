"""Skeletons read from the Parquet file: node numbering, parents, formats."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from offline_cave.contract import layout
from offline_cave.server.data.artefacts import CellStore
from offline_cave.server.data.db import Database


class _Stack:
    """The two attributes of a Datastack a CellStore reads skeletons through."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.db = Database()
        self.name = "test_stack"


def test_parents_are_reindexed_to_row_positions(tmp_path: Path) -> None:
    path = tmp_path / layout.SKELETONS_PARQUET
    path.parent.mkdir(parents=True)
    # nucleus 7: nodes numbered 10, 20, 30, 40 (not 0..n-1), one parent that is no node
    pq.write_table(pa.table({
        "nucleus_id": pa.array([7, 7, 7, 7, 8], pa.int64()),
        "node": pa.array([30, 10, 40, 20, 0], pa.int32()),
        "parent": pa.array([20, -1, 99, 10, -1], pa.int32()),
        "x": pa.array([3.0, 1.0, 4.0, 2.0, 0.0], pa.float32()),
        "y": pa.array([0.0] * 5, pa.float32()),
        "z": pa.array([0.0] * 5, pa.float32()),
        "radius": pa.array([1.5, 5.0, 1.0, 2.0, 1.0], pa.float32()),
        "compartment": pa.array([3, 1, 3, 3, 1], pa.int8()),
    }), path)
    store = CellStore(_Stack(tmp_path))
    sk = store.skeleton(7)
    # rows come back ordered by node: 10, 20, 30, 40
    np.testing.assert_array_equal(sk.vertices[:, 0], [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(sk.parent, [-1, 0, 1, -1])
    np.testing.assert_array_equal(sk.radius, [5.0, 2.0, 1.5, 1.0])
    np.testing.assert_array_equal(sk.compartment, [1, 3, 3, 3])
    assert sk.root == 0
    body = json.loads(gzip.decompress(store.flatdict_gz(123, sk, 4)))
    assert body["edges"] == [[1, 0], [2, 1]]
    assert body["meta"]["skeleton_version"] == 4
    # the serialised bytes of a root are kept per skeleton version
    assert store.flatdict_gz(123, sk, 4) is store.flatdict_gz(123, sk, 4)
    assert json.loads(gzip.decompress(store.flatdict_gz(123, sk, 3)))["meta"][
        "skeleton_version"] == 3


def test_the_skeleton_json_decodes_to_the_flatdict(tmp_path: Path) -> None:
    from offline_cave.server.data.artefacts import Skeleton

    rng = np.random.default_rng(0)
    n = 300
    sk = Skeleton(nucleus_id=5, vertices=rng.normal(size=(n, 3)).astype(np.float32)
                  .astype(np.float64) * 1e5, parent=np.arange(-1, n - 1),
                  radius=rng.random(n) * 500, compartment=rng.integers(1, 4, n))
    store = CellStore(_Stack(tmp_path))
    flat = store.flatdict(9, sk, 4)
    decoded = json.loads(gzip.decompress(store.flatdict_gz(9, sk, 4)))
    assert decoded == json.loads(json.dumps(flat))  # every float and id as the stdlib writes it


def test_a_served_skeleton_is_built_once_per_root_and_version(tmp_path: Path) -> None:
    """The skeleton route looks the serialised bytes up before building the skeleton (a
    level-2 skeleton reads the level-2 attributes): a class asking for one cell builds it
    once per skeleton version."""
    from offline_cave.server.data.artefacts import Skeleton

    sk = Skeleton(nucleus_id=5, vertices=np.zeros((3, 3)), parent=np.array([-1, 0, 1]),
                  radius=np.ones(3), compartment=np.ones(3, np.int64))
    store = CellStore(_Stack(tmp_path))
    store.nucleus_for_root = lambda root: 5
    builds = []

    def build():
        builds.append(1)
        return sk, None

    first = store.cached_flatdict_gz(9, 4, build)
    assert store.cached_flatdict_gz(9, 4, build) is first and len(builds) == 1
    assert json.loads(gzip.decompress(store.cached_flatdict_gz(9, 3, build)))["meta"][
        "skeleton_version"] == 3
    assert len(builds) == 2
