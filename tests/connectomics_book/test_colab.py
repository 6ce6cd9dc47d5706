"""The Colab twins: their install lines cover what they import; the token cell on Colab."""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
import sys
import types
from importlib.metadata import packages_distributions
from pathlib import Path

import nbformat
import pytest

from connectomics_book import colab
from connectomics_book.build.pages import reads_nwb_sessions
from connectomics_book.constants import (
    COURSE_REQUIREMENT,
    GLOBAL_SERVERS,
    NWB_DISTRIBUTIONS,
    V1DD_SERVER,
)
from tests.fixtures.paths import REPO_ROOT

ROOT = REPO_ROOT
CHAPTERS = ROOT / "chapters"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_ipynb = _load("make_ipynb", ROOT / "tools" / "make_ipynb.py")
colab_check = _load("colab_check", ROOT / "tools" / "colab_check.py")
TWINS = sorted(p for p in CHAPTERS.rglob("*.ipynb") if "_build" not in p.parts)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_by(nb) -> set[str]:
    """Normalised names of the distributions the first cell's %pip line installs."""
    words = shlex.split(colab_check.install_words(nb))
    return {_normalise(re.split(r"[=<>@ ]", w, maxsplit=1)[0]) for w in words}


#: Modules that need no line: the interpreter's, the kernel's own, Colab's own, the course's.
NEEDS_NO_LINE = {"IPython", "ipykernel", "matplotlib_inline", "traitlets", "google",
                 "connectomics_book", "offline_cave"}


def missing_distributions(nb, page: Path | None = None) -> dict[str, set[str]]:
    """``{module: distributions}`` for every module the twin's code imports (following the
    course package's modules) whose distributions are all missing from its install line.
    Distributions are found here with find_spec + packages_distributions, independently of
    tools/make_ipynb.py; a page that reads NWB sessions must also install NWB_DISTRIBUTIONS."""
    modules = make_ipynb.imported_modules(
        [c.source for c in nb.cells if c.cell_type == "code"])
    line = installed_by(nb)
    dists_of = packages_distributions()
    missing = {}
    for module in sorted(modules):
        if module in sys.stdlib_module_names or module in NEEDS_NO_LINE:
            continue
        dists = {_normalise(d) for d in dists_of.get(module, ())}
        if not dists and importlib.util.find_spec(module) is None:
            dists = {_normalise(module)}  # not installed here: its own name (hdmf_zarr)
        if not dists & line:
            missing[module] = dists
    if page is not None and reads_nwb_sessions(page):
        for requirement in NWB_DISTRIBUTIONS:
            name = _normalise(requirement)
            if name not in line:
                missing[name.replace("-", "_")] = {name}
    return missing


@pytest.mark.parametrize("twin", TWINS, ids=lambda p: str(p.relative_to(CHAPTERS)))
def test_twin_installs_every_distribution_it_imports(twin):
    nb = nbformat.read(twin, as_version=4)
    assert missing_distributions(nb, twin.with_suffix(".md")) == {}
    assert COURSE_REQUIREMENT in nb.cells[0].source


def test_the_import_check_fails_when_a_distribution_is_left_out():
    """Remove plotly from the meshes twin, networkx from the versions twin, hdmf-zarr from a
    V1DD twin: each is reported."""
    cases = {"meshes/01_meshes.ipynb": ("plotly", "plotly"),
             "programmatic_access/05_versions.ipynb": ("networkx", "networkx"),
             "v1dd/01_sessions.ipynb": ("hdmf-zarr", "hdmf_zarr")}
    for twin, (dist, module) in cases.items():
        nb = nbformat.read(CHAPTERS / twin, as_version=4)
        setup = nb.cells[0].source
        assert re.search(rf" {dist}==\S+", setup), twin
        nb.cells[0].source = re.sub(rf" {dist}==\S+", "", setup)
        assert module in missing_distributions(nb, (CHAPTERS / twin).with_suffix(".md")), twin


def test_pages_named_in_the_issue_install_what_they_import():
    lines = {t.relative_to(CHAPTERS).as_posix(): installed_by(nbformat.read(t, as_version=4))
             for t in TWINS}
    assert "plotly" in lines["meshes/01_meshes.ipynb"]
    assert "networkx" in lines["programmatic_access/05_versions.ipynb"]
    assert all("hdmf-zarr" in line for name, line in lines.items() if name.startswith("v1dd/"))
    assert all("microns-v1dd-course" in line for line in lines.values())


def test_an_unlocked_module_is_an_error():
    with pytest.raises(LookupError, match="no_such_module_xyz"):
        make_ipynb.requirements_for({"no_such_module_xyz"})
    assert make_ipynb.requirements_for({"json", "IPython", "connectomics_book"}) == []


# ---- connectomics_book.colab.ensure_token ----


class _FakeAuth:
    saved: list[tuple[str, str, bool]] = []

    def __init__(self, server):
        self.server = server

    def save_token(self, token, overwrite=False):
        _FakeAuth.saved.append((self.server, token, overwrite))


class _FakeClient:
    def __init__(self, server_address=None):
        self.auth = _FakeAuth(server_address)


@pytest.fixture
def fake_caveclient(monkeypatch, tmp_path):
    """caveclient's CAVEclient and server map replaced; the token files live in tmp_path."""
    import caveclient
    import caveclient.auth
    import caveclient.datastack_lookup

    _FakeAuth.saved = []
    remembered = {}
    monkeypatch.setattr(caveclient, "CAVEclient", _FakeClient)
    monkeypatch.setattr(caveclient.datastack_lookup, "handle_server_address",
                        lambda ds, server, write=False, do_log=True: remembered.update({ds: server}))
    monkeypatch.setattr(caveclient.auth, "server_token_filename",
                        lambda server: str(tmp_path / f"{server.split('//')[1]}-cave-secret.json"))
    return remembered


def _fake_colab(monkeypatch, secrets: dict[str, str]):
    """A ``google.colab`` module in sys.modules whose userdata holds ``secrets``."""
    class SecretNotFoundError(Exception):
        pass

    def get(name):
        if name not in secrets:
            raise SecretNotFoundError(name)
        return secrets[name]

    google = types.ModuleType("google")
    google_colab = types.ModuleType("google.colab")
    google_colab.userdata = types.SimpleNamespace(get=get)
    google.colab = google_colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", google_colab)


def _no_prompt(prompt):
    raise AssertionError("asked for a token")


def test_ensure_token_does_nothing_outside_colab(monkeypatch, fake_caveclient, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert colab.on_colab() is False
    assert colab.ensure_token("minnie65_public", "v1dd_public", ask=_no_prompt) is None
    assert _FakeAuth.saved == [] and fake_caveclient == {} and capsys.readouterr().out == ""


def test_ensure_token_reads_the_colab_secret_and_never_prints_it(monkeypatch,
                                                                  fake_caveclient, capsys):
    _fake_colab(monkeypatch, {"CAVE_TOKEN": "secret-microns", "V1DD_CAVE_TOKEN": "secret-v1dd"})
    assert colab.ensure_token("minnie65_public", "v1dd_public", ask=_no_prompt) is None
    assert _FakeAuth.saved == [(V1DD_SERVER, "secret-v1dd", True),  # MICrONS last (default)
                               (GLOBAL_SERVERS["minnie65_public"], "secret-microns", True)]
    assert fake_caveclient == GLOBAL_SERVERS  # CAVEclient("v1dd_public") finds its server
    out = capsys.readouterr().out
    assert "secret-" not in out and "CAVE_TOKEN" in out and "saved" in out


def test_ensure_token_falls_back_to_getpass(monkeypatch, fake_caveclient, capsys):
    _fake_colab(monkeypatch, {})
    prompts = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or " tok-4f2a ")
    colab.ensure_token("v1dd_public", ask=__import__("getpass").getpass)
    assert _FakeAuth.saved == [(V1DD_SERVER, "tok-4f2a", True)]
    assert len(prompts) == 1 and f"{V1DD_SERVER}/auth/api/v1/create_token" in prompts[0]
    assert "tok-4f2a" not in capsys.readouterr().out


def test_ensure_token_default_is_microns_and_keeps_a_saved_token(monkeypatch, fake_caveclient,
                                                                 tmp_path, capsys):
    _fake_colab(monkeypatch, {})
    (tmp_path / "global.daf-apis.com-cave-secret.json").write_text("{}")
    colab.ensure_token(ask=_no_prompt)
    assert _FakeAuth.saved == [] and "already saved" in capsys.readouterr().out
    colab.ensure_token("v1dd_public", ask=lambda prompt: "")
    assert _FakeAuth.saved == [] and "no token given" in capsys.readouterr().out


def test_the_token_cell_calls_ensure_token_only():
    page = CHAPTERS / "v1dd" / "04_function_to_structure.md"
    tree = ast.parse(make_ipynb.token_source(page))
    calls = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert calls == ["ensure_token"]
    assert 'ensure_token("v1dd_public")' in make_ipynb.token_source(page)


# ---- tools/colab_check.py ----


def test_colab_check_installs_the_line_with_the_course_from_the_checkout(tmp_path):
    nb = nbformat.read(CHAPTERS / "meshes" / "01_meshes.ipynb", as_version=4)
    requirements = colab_check.requirements(nb, checkout=tmp_path)
    assert str(tmp_path) in requirements and "plotly==7.1.0" in requirements
    assert not any("git+" in r for r in requirements)
    assert len(requirements) == len(shlex.split(colab_check.install_words(nb)))


def test_colab_check_builds_the_course_from_a_copy(tmp_path):
    course = colab_check.course_copy(tmp_path)
    assert (course / "pyproject.toml").is_file() and (course / "README.md").is_file()
    assert (course / "src" / "connectomics_book" / "colab.py").is_file()
    assert (course / "src" / "offline_cave" / "__main__.py").is_file()  # `offline_cave exec`
    assert not list(course.rglob("__pycache__"))
