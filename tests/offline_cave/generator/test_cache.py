"""The sample cache's code digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline_cave.generator import cache


def test_the_digest_is_of_the_code_this_process_loaded(monkeypatch: pytest.MonkeyPatch):
    """A build that runs for minutes while its source is edited stamps its sample with the
    digest of the code it ran, not of the files on disk when it finishes (which would mark a
    sample of the old code as current)."""
    loaded = cache.generator_digest()
    original = Path.read_bytes

    def edited(path: Path) -> bytes:
        data = original(path)
        return data + b"\n# edited" if path.suffix == ".py" else data

    monkeypatch.setattr(Path, "read_bytes", edited)
    assert cache.source_digest() != loaded  # the files on disk now say otherwise
    assert cache.generator_digest() == loaded
