"""Every ``--flag`` a message of ``offline_cave`` names is a flag of the command it names.

The strings of ``src/offline_cave`` (read with :mod:`ast`; docstrings and argparse's own help
texts left out) are searched for ``--flag``s. A flag belongs to the command named last before
it in the same message (``serve --max-rows``, ``python -m offline_cave generate ... --scale``);
in ``__main__.py`` a message that names no command belongs to the command function it is
printed by. Each flag must be accepted by that command's argparse parser: advice naming a flag
the user's command does not take (a full-disk refusal of ``serve`` telling to pass
``--skip-resource-check``) is a dead end.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

from offline_cave.__main__ import build_parser
from tests.fixtures.paths import REPO_ROOT

SRC = REPO_ROOT / "src" / "offline_cave"
COMMANDS = ("generate", "serve", "configure", "unconfigure", "exec")
COMMAND = re.compile(r"(?<![\w-])(" + "|".join(COMMANDS) + r")(?![\w-])")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# functions of __main__.py that print for one command
PRINTED_BY = {"cmd_generate": "generate", "cmd_serve": "serve", "_serve_on": "serve",
              "cmd_configure": "configure", "cmd_unconfigure": "unconfigure",
              "cmd_exec": "exec"}
PARSER_CALLS = {"add_argument", "add_parser", "ArgumentParser", "add_argument_group"}


def command_flags() -> dict[str, set[str]]:
    """The option strings every subcommand accepts."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: {s for action in p._actions for s in action.option_strings}
            for name, p in sub.choices.items()}


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def messages(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, text, enclosing function) of every string literal that is not a docstring or
    an argparse definition."""
    tree = ast.parse(path.read_text(), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and _text(body[0].value) is not None:
                skip.add(id(body[0].value))
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in PARSER_CALLS:
                skip.update(id(n) for n in ast.walk(node))
        if isinstance(node, ast.JoinedStr):  # its parts are not messages of their own
            skip.update(id(v) for v in node.values)
    out: list[tuple[int, str, str | None]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        text = _text(node)
        if text is not None and id(node) not in skip:
            out.append((node.lineno, text, function))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, None)
    return out


def flags_named() -> list[tuple[str, str, str | None, str]]:
    """(where, flag, command it belongs to or None, message) of every flag in a message."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent)
        for line, text, function in messages(path):
            for m in FLAG.finditer(text):
                before = COMMAND.findall(text[:m.start()])
                command = before[-1] if before else None
                if command is None and path.name == "__main__.py":
                    command = PRINTED_BY.get(function or "")
                found.append((f"{rel}:{line}", m.group(), command, text))
    return found


def test_the_audit_finds_the_messages() -> None:
    named = {(flag, command) for _, flag, command, _ in flags_named()}
    # the limits, the full-disk refusal and the port message are among them
    assert ("--max-rows", "serve") in named
    assert ("--skip-resource-check", "generate") in named
    assert ("--port", "serve") in named


@pytest.mark.parametrize("where,flag,command,text", flags_named(),
                         ids=[f"{w} {f}" for w, f, _, _ in flags_named()])
def test_every_flag_named_is_a_flag_of_its_command(where: str, flag: str, command: str | None,
                                                   text: str) -> None:
    assert command is not None, (f"{where}: the message names {flag} but not the command it "
                                 f"belongs to: {text!r}")
    accepted = command_flags()[command]
    assert flag in accepted, (f"{where}: the message names {flag}, which `{command}` does not "
                              f"accept ({', '.join(sorted(accepted))}): {text!r}")
