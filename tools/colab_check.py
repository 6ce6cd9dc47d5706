"""Run every Colab twin in a fresh venv that holds exactly what its install line installs.

For each distinct install line of the twins (``chapters/**/*.ipynb``, first cell, written by
``tools/make_ipynb.py``) this script

1. creates a fresh venv with ``uv venv`` (default: the Python running this script; Colab
   runs 3.12, pass ``--python`` to try another interpreter);
2. installs exactly the words of that line after ``%pip install -q`` with ``uv pip install``,
   with two stated exceptions: the course package comes from this checkout (a copy of its
   sources instead of ``"microns-v1dd-course @ git+<REPOSITORY_URL>"``, so what is tested is
   the code here, not what was last pushed), and ``nbmake`` and ``pytest`` (pinned from
   requirements.lock) are added to execute the notebooks; they bring ``ipykernel``, which
   Colab's runtime has;
3. executes the twins with that line under ``python -m offline_cave exec`` (a temporary
   server with the sample and an isolated HOME configured for it), with an empty IPython
   profile (no book startup file: the twin's own first cell sets the display options) and no
   ``PYTHONPATH``; the server itself runs in the Python running this script (the book's venv:
   the course package declares no dependencies, and the server's duckdb/starlette/uvicorn
   are not something a student installs);
4. reports pass/fail per twin, and the time taken.

The ``%pip`` line cannot run outside Colab as written (it would install the course package
from the repository, and it sits under ``if "google.colab" in sys.modules``), so it is parsed
here instead of executed; in the fresh venv the setup cell skips it and only sets the display
options, and the token cell (``connectomics_book.colab.ensure_token``) does nothing.

usage: python tools/colab_check.py [--data DIR] [--work DIR] [--only SUBSTRING] [--keep]
                                  [--python PYTHON]
(run from the repository root; `make test-colab`)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from connectomics_book.constants import COLAB_PIP, COURSE_REQUIREMENT  # noqa: E402

#: What the fresh venv gets besides the install line, to execute the notebooks.
RUNNER = ("nbmake", "pytest")


def install_words(nb) -> str:
    """The words of the twin's ``%pip install -q`` line after the command."""
    lines = [line.strip() for line in nb.cells[0].source.splitlines()
             if line.strip().startswith(COLAB_PIP + " ")]
    if len(lines) != 1:
        raise ValueError(f"the first cell has {len(lines)} '{COLAB_PIP}' lines, expected 1")
    return lines[0][len(COLAB_PIP):].strip()


def requirements(nb, checkout: Path = ROOT) -> list[str]:
    """The twin's install line as requirements, the course package taken from ``checkout``."""
    words = shlex.split(install_words(nb))
    course = shlex.split(COURSE_REQUIREMENT)[0]
    if course not in words:
        raise ValueError(f"the install line does not install {course!r}")
    return [str(checkout) if word == course else word for word in words]


def runner_pins(lock: Path = ROOT / "requirements.lock") -> list[str]:
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(0)
    return [pins[name] for name in RUNNER]


def course_copy(work: Path, root: Path = ROOT) -> Path:
    """A copy of the course distribution's sources (pyproject.toml, README.md, src/), so that
    building it leaves no build/ or egg-info in the checkout."""
    target = work / "course"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, target / name)
    shutil.copytree(root / "src", target / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return target


def twins(root: Path = ROOT) -> list[Path]:
    sys.path.insert(0, str(root / "tools"))
    from make_ipynb import notebook_pages

    return [page.with_suffix(".ipynb") for page in notebook_pages(root)]


def uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(found).exists():
        raise SystemExit("uv not found (install it into the venv: pip install uv)")
    return found


def run_group(reqs: list[str], group: list[Path], data: Path, work: Path,
              timeout: int, interpreter: str = sys.executable
              ) -> dict[str, tuple[str, float, str]]:
    """Fresh venv with ``reqs`` + the runner; execute ``group``; {twin: (result, s, detail)}."""
    key = hashlib.sha256(" ".join(reqs).encode()).hexdigest()[:10]
    venv, run = work / f"venv-{key}", work / f"run-{key}"
    shutil.rmtree(venv, ignore_errors=True)
    shutil.rmtree(run, ignore_errors=True)
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "MPLBACKEND", "VIRTUAL_ENV", "IPYTHONDIR"}}
    t0 = time.monotonic()
    subprocess.run([uv(), "venv", "-q", "--python", interpreter, str(venv)], check=True,
                   env=env)
    python = venv / "bin" / "python"
    install = [uv(), "pip", "install", "-q", "--python", str(python), *reqs, *runner_pins()]
    print("[colab-check] " + shlex.join(install[3:]), flush=True)
    done = subprocess.run(install, env=env)
    if done.returncode:
        return {t.relative_to(ROOT).as_posix(): ("install failed", 0.0, "") for t in group}
    print(f"[colab-check] venv ready in {time.monotonic() - t0:.0f} s", flush=True)

    # the twins, alone in a folder of their own (no conftest.py or pytest.ini of the book)
    copies = []
    for twin in group:
        copy = run / twin.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(twin, copy)
        copies.append(copy)
    (run / "pytest.ini").write_text("[pytest]\n")
    (run / "ipython").mkdir()
    junit = run / "junit.xml"
    child = ["env", "-u", "PYTHONPATH", "-u", "MPLBACKEND", f"IPYTHONDIR={run / 'ipython'}",
             f"MPLCONFIGDIR={run / 'matplotlib'}", f"OFFLINE_CAVE_DATA={data}",
             str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
             f"--nbmake-timeout={timeout}", f"--junitxml={junit}",
             *[str(c.relative_to(run)) for c in copies]]
    server_env = {**env, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-m", "offline_cave", "exec", "--data", str(data), "--",
                    *child], cwd=run, env=server_env)
    results = {t.relative_to(ROOT).as_posix(): ("not run", 0.0, "") for t in group}
    if junit.is_file():
        for case in ET.parse(junit).iter("testcase"):
            name = case.get("name", "")
            for twin in results:
                if name == twin or name.endswith(twin) or twin.endswith(name):
                    failed = case.find("failure") if case.find("failure") is not None \
                        else case.find("error")
                    message = "" if failed is None else failed.get("message") or ""
                    detail = re.sub(r"(\x1b|#x1B)\[[0-9;]*m", "", message)[:300]
                    results[twin] = ("failed" if failed is not None else "passed",
                                     float(case.get("time", 0)), detail)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "sample-data",
                        help="the sample the offline server serves (default sample-data/)")
    parser.add_argument("--work", type=Path, default=None,
                        help="where the venvs go (default: a temporary folder, removed)")
    parser.add_argument("--only", default="", help="only twins whose path contains this")
    parser.add_argument("--keep", action="store_true", help="keep the venvs and copies")
    parser.add_argument("--timeout", type=int, default=600, help="per-cell timeout, s")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter of the fresh venvs (default: this one)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: no sample (make sample, or pass --data)")
    data = args.data.resolve()
    work = args.work or Path(tempfile.mkdtemp(prefix="colab-check-"))
    work.mkdir(parents=True, exist_ok=True)

    course = course_copy(work)
    groups: dict[tuple[str, ...], list[Path]] = {}
    for twin in twins():
        if args.only in twin.relative_to(ROOT).as_posix():
            nb = nbformat.read(twin, as_version=4)
            groups.setdefault(tuple(requirements(nb, course)), []).append(twin)
    t0 = time.monotonic()
    results: dict[str, tuple[str, float, str]] = {}
    try:
        for index, (reqs, group) in enumerate(groups.items(), 1):
            print(f"[colab-check] install line {index}/{len(groups)}: {len(group)} twin(s)",
                  flush=True)
            results.update(run_group(list(reqs), group, data, work, args.timeout,
                                     args.python))
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - t0
    print("\n[colab-check] results (fresh venv per install line):")
    for twin in sorted(results):
        result, seconds, detail = results[twin]
        print(f"  {result:>14}  {seconds:6.1f} s  {twin}" + (f"\n      {detail}" if detail
                                                           else ""))
    passed = sum(r[0] == "passed" for r in results.values())
    print(f"[colab-check] {passed}/{len(results)} twins passed, {len(groups)} fresh venvs, "
          f"{total:.0f} s wall time")
    return 0 if results and passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
