"""The package boundaries of ``src/``, read from the import statements of every module.

* the server (``offline_cave.server``) never imports the generator: it serves what is on disk;
* the generator and the contract never import the server or the client (they know no HTTP);
* no import cycle anywhere in ``src/`` (module-level or deferred imports alike).

Imports are read with :mod:`ast`, so a deferred import inside a function counts as much as
one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO_ROOT

SRC = REPO_ROOT / "src"
PACKAGES = ("offline_cave", "connectomics_book")

# (importing package, imported package): forbidden edges between the parts of offline_cave
FORBIDDEN = [
    ("offline_cave.server", "offline_cave.generator"),
    ("offline_cave.server", "offline_cave.client"),
    ("offline_cave.server", "offline_cave.prepare"),
    ("offline_cave.generator", "offline_cave.server"),
    ("offline_cave.generator", "offline_cave.client"),
    ("offline_cave.contract", "offline_cave.generator"),
    ("offline_cave.contract", "offline_cave.server"),
    ("offline_cave.contract", "offline_cave.client"),
    ("connectomics_book", "offline_cave"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((SRC / package).rglob("*.py"))}


def imported_names(path: Path, name: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` (module ``name``) imports, resolved to modules."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` mod
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        for target in targets:
            # `import a.b.c` imports a, a.b and a.b.c; keep the longest known module
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imported_names(path, name, known) for name, path in mods.items()}


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a list of modules, first == last), or None.

    A package's ``__init__`` importing its own submodules is not a cycle by itself: the
    edge parent -> child is normal; child -> parent's ``__init__`` back is what closes one.
    """
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_the_packages() -> None:
    graph = import_graph()
    assert "offline_cave.server.app" in graph
    assert "offline_cave.generator.pipeline" in graph
    # a known edge, deferred inside a function: the reader must see it
    assert "offline_cave.generator.pipeline" in graph["offline_cave.prepare"]


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN)
def test_no_forbidden_import(importer: str, imported: str) -> None:
    bad = sorted(f"{a} imports {b}" for a, deps in import_graph().items() if within(a, importer)
                 for b in deps if within(b, imported))
    assert not bad, "\n".join(bad)


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """The cycle finder and the forbidden-edge reader find what is planted."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    planted = tmp_path / "mod.py"
    planted.write_text("def f():\n    from offline_cave.generator import pipeline\n")
    known = set(modules())
    assert imported_names(planted, "offline_cave.server.mod", known) == {
        "offline_cave.generator.pipeline"}
