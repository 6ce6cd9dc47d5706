"""The server's layers: the data engine (``server/data``) knows no HTTP, and every domain error
it raises has an HTTP status in the one table that maps them (``http.DATA_ERROR_STATUS``).

Imports are read with :mod:`ast` (deferred imports inside functions count too).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from offline_cave.server import http
from offline_cave.server.data import errors
from tests.fixtures.paths import REPO_ROOT

DATA_DIR = REPO_ROOT / "src" / "offline_cave" / "server" / "data"
HTTP_MODULES = ("starlette", "uvicorn", "offline_cave.server.http", "offline_cave.server.app",
                "offline_cave.server.routes", "http")


def http_imports(path: Path, package: str = "offline_cave.server.data") -> list[str]:
    """The HTTP-layer modules that ``path`` (a module of ``package``) imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from .. import http` inside server/data
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [name for name in names
                  if any(name == m or name.startswith(m + ".") for m in HTTP_MODULES)]
    return found


def test_data_layer_imports_no_http() -> None:
    files = sorted(DATA_DIR.rglob("*.py"))
    assert len(files) >= 8, files
    bad = {p.name: http_imports(p) for p in files if http_imports(p)}
    assert not bad, bad


def test_the_import_check_can_fail(tmp_path: Path) -> None:
    """The scan finds what is planted, at module level and deferred."""
    planted = {
        "a.py": "from starlette.responses import Response\n",
        "b.py": "def f():\n    import uvicorn\n",
        "c.py": "from offline_cave.server.http import not_found\n",
        "d.py": "from offline_cave.server import http\n",
        "e.py": "from .. import http\n",
    }
    for name, text in planted.items():
        path = tmp_path / name
        path.write_text(text)
        assert http_imports(path), name
    clean = tmp_path / "clean.py"
    clean.write_text("from offline_cave.server.data.errors import MissingRoot\nimport httpx\n")
    assert http_imports(clean) == []


def domain_errors() -> list[type[errors.DataError]]:
    return [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, errors.DataError)]


def test_every_domain_error_has_a_status() -> None:
    classes = domain_errors()
    assert len(classes) >= 8
    missing = [cls.__name__ for cls in classes if cls not in http.DATA_ERROR_STATUS]
    assert not missing, f"not in http.DATA_ERROR_STATUS: {missing}"
    for cls in classes:
        exc = cls("some message")
        # 503: a server limit hit; 413/429: a state over the state service's bounds
        assert http.status_of(exc) in (400, 404, 413, 429, 503), cls
        assert exc.message == "some message"
    assert http.status_of(errors.MissingRoot("x")) == 404
    assert http.status_of(errors.InvalidQuery("x")) == 400
    assert http.status_of(errors.TooMany("x")) == 400
    assert http.status_of(errors.QueryTimeout("x")) == 503
    assert http.status_of(errors.StateTooLarge("x")) == 413
    assert http.status_of(errors.StateStoreFull("x")) == 429


def test_a_subclass_inherits_its_parents_status() -> None:
    class Narrower(errors.MissingTable):
        pass

    assert http.status_of(Narrower("x")) == 404


def test_the_query_builder_error_is_the_domain_error() -> None:
    from offline_cave.server.data.query import QueryError

    assert QueryError is errors.InvalidQuery
