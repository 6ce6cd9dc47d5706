"""Tests of the directory swap in ``offline_cave.contract.files`` (``building_dir``, ``swap_in``)."""

from pathlib import Path

import pytest

from offline_cave.contract.files import building_dir, swap_in


def test_swap_in_replaces_an_existing_directory(tmp_path: Path):
    dest = tmp_path / "sample"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with building_dir(dest) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".sample.tmp-")
        (tmp / "new.txt").write_text("new")
        swap_in(tmp, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample"]  # no tmp or old left


def test_swap_in_creates_a_missing_directory(tmp_path: Path):
    dest = tmp_path / "a" / "sessions"
    with building_dir(dest) as tmp:
        (tmp / "f").write_text("x")
        swap_in(tmp, dest)
    assert (dest / "f").read_text() == "x"


def test_a_failed_build_leaves_the_old_directory(tmp_path: Path):
    dest = tmp_path / "sample"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), building_dir(dest) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("crash")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample"]
    assert (dest / "old.txt").read_text() == "old"
