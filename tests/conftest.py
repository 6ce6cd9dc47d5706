"""Unit-test configuration shared by every folder under ``tests/``.

The folders mirror ``src/``: ``tests/offline_cave/{contract,generator,server}`` and
``tests/connectomics_book``; shared fixtures live in ``tests/fixtures``. The module-scoped
``served`` (a server over the hand-made fixture sample) and ``client`` (a caveclient for it)
fixtures are registered here for every test module.
"""

import pytest

# asserts inside the fixture helpers are rewritten too (they are imported, not collected)
pytest.register_assert_rewrite("tests.fixtures")

from tests.fixtures.server_harness import client, served  # noqa: E402, F401 (fixtures)
