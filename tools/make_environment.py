"""Derive environment.yml (conda) from requirements.lock, so both install the same pins.

The conda environment holds only Python 3.11 and pip; every package comes from the lock
through pip, exactly as in the venv. tests/connectomics_book/test_env.py checks the file is up to date.

usage: python tools/make_environment.py [--check]   (run from the repository root)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
ENVIRONMENT = ROOT / "environment.yml"
PYTHON = "3.11"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def lock_pins(lock_text: str) -> dict[str, str]:
    """``{name: version}`` of every ``name==version`` line of a compiled lock."""
    pins = {}
    for line in lock_text.splitlines():
        match = _PIN.match(line)
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


def render_environment(lock_text: str) -> str:
    """The text of environment.yml for a lock."""
    lines = [
        "# Generated from requirements.lock by tools/make_environment.py -- do not edit.",
        "# conda env create -f environment.yml && conda activate microns-v1dd-book",
        "name: microns-v1dd-book",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={PYTHON}",
        "  - pip",
        "  - pip:",
    ]
    lines += [f"      - {name}=={version}" for name, version in lock_pins(lock_text).items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    wanted = render_environment(LOCK.read_text(encoding="utf-8"))
    if "--check" in argv:
        if ENVIRONMENT.read_text(encoding="utf-8") != wanted:
            print("environment.yml is out of date: run python tools/make_environment.py")
            return 1
        return 0
    ENVIRONMENT.write_text(wanted, encoding="utf-8")
    print(f"wrote {ENVIRONMENT.name} ({wanted.count('==')} pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
