"""The conda environment and the Colab install line carry exactly the lock's pins."""

from __future__ import annotations

import importlib.util
import re

from connectomics_book import constants
from tests.fixtures.paths import REPO_ROOT

ROOT = REPO_ROOT
LOCK_TEXT = (ROOT / "requirements.lock").read_text(encoding="utf-8")


def _load_make_environment():
    spec = importlib.util.spec_from_file_location(
        "make_environment", ROOT / "tools" / "make_environment.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_environment = _load_make_environment()
LOCK = make_environment.lock_pins(LOCK_TEXT)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        name, sep, version = requirement.partition("==")
        assert sep, f"{requirement!r} is not pinned with =="
        pins[_normalise(name.split("[")[0])] = version  # dask[dataframe] pins dask
    return pins


def test_lock_is_parsed():
    assert len(LOCK) > 200
    assert LOCK["caveclient"] == "8.2.1"


def test_environment_yml_is_derived_from_the_lock():
    actual = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert actual == make_environment.render_environment(LOCK_TEXT), (
        "environment.yml is out of date: run `python tools/make_environment.py`"
    )


def test_environment_yml_lists_every_lock_pin_once():
    lines = (ROOT / "environment.yml").read_text(encoding="utf-8").splitlines()
    listed = [line.split("- ", 1)[1] for line in lines if "==" in line]
    assert listed == [f"{name}=={version}" for name, version in LOCK.items()]
    assert "  - python=3.11" in lines


def test_requirements_in_pins_match_the_lock():
    top_level = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements.in").read_text(encoding="utf-8").splitlines()
    ]
    pins = _pins([line for line in top_level if line])
    lock = {_normalise(name): version for name, version in LOCK.items()}
    assert {name: lock.get(name) for name in pins} == pins


def _twin_install_lines() -> dict[str, str]:
    import nbformat

    lines = {}
    for twin in sorted((ROOT / "chapters").rglob("*.ipynb")):
        if "_build" in twin.parts:
            continue
        setup = nbformat.read(twin, as_version=4).cells[0].source
        (line,) = [line.strip() for line in setup.splitlines() if "%pip install" in line]
        lines[twin.relative_to(ROOT).as_posix()] = line
    return lines


def test_colab_install_lines_use_the_lock_pins():
    """Every twin's install line pins only versions of requirements.lock (or, for what the
    NWB sessions, constants.NWB_DISTRIBUTIONS, also pinned there) and installs the course package from the one
    configured repository."""
    lock = {_normalise(name): version for name, version in LOCK.items()}
    assert {_normalise(name) for name in constants.NWB_DISTRIBUTIONS} <= set(lock)
    lines = _twin_install_lines()
    assert len(lines) >= 15
    for twin, line in lines.items():
        assert line.startswith(constants.COLAB_PIP + " "), twin
        assert line.endswith(" " + constants.COURSE_REQUIREMENT), twin
        assert f"git+{constants.REPOSITORY_URL}" in line
        pinned = _pins([w for w in line.split() if "==" in w])
        assert {n: lock.get(n) for n in pinned} == pinned, twin
        assert "ipython" not in pinned, twin  # never reinstalled under Colab's kernel


def test_book_and_colab_install_name_the_same_repository():
    """Publishing changes one URL in two places; Colab installs the course package from it."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["repository"]["url"] == constants.REPOSITORY_URL
