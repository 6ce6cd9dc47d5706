"""``SegmentStore._walk``, the one walk of the edit graph behind past/future ids and lineage."""

from __future__ import annotations

from pathlib import Path

from offline_cave.server.data.chunkedgraph import SegmentStore


def store(tmp_path: Path) -> SegmentStore:
    """A store without files, with the edit graph 1 -> 2 -> {3, 4}, 4 -> 5."""
    seg = SegmentStore(tmp_path, db=None, info={})  # type: ignore[arg-type]
    seg._load()
    seg.children.update({1: [2], 2: [3, 4], 4: [5]})
    seg.parents.update({2: [1], 3: [2], 4: [2], 5: [4]})
    return seg


def test_walk_follows_edges_once(tmp_path: Path) -> None:
    seg = store(tmp_path)
    seen: set[int] = set()
    edges, stopped = seg._walk([1], seg.children, seen=seen)
    assert edges == {(1, 2), (2, 3), (2, 4), (4, 5)} and stopped == set()
    assert seen == {1, 2, 3, 4, 5}
    back, _ = seg._walk([5], seg.parents)
    assert back == {(5, 4), (4, 2), (2, 1)}


def test_walk_stops_and_filters(tmp_path: Path) -> None:
    seg = store(tmp_path)
    _, stopped = seg._walk([1], seg.children, stop=lambda n: n in (2, 5))
    assert stopped == {2}
    edges, _ = seg._walk([1], seg.children, follow=lambda n: n != 4)
    assert edges == {(1, 2), (2, 3)}


def test_a_shared_seen_set_is_not_expanded_again(tmp_path: Path) -> None:
    seg = store(tmp_path)
    edges, _ = seg._walk([1], seg.children, seen={1, 4})
    assert (2, 4) in edges and (4, 5) not in edges
