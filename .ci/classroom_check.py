"""Play an offline class: one instructor serves, two students configure, run every page, undo.

What README "Teach the course offline" tells people to do, literally, on one machine:

1. the instructor runs ``python -m offline_cave serve --data sample-data`` (127.0.0.1 here;
   a class uses ``--host 0.0.0.0``);
2. two students with their own HOME: one who already uses the public services (tokens for both
   global servers and datastack-map entries), one with nothing; each runs
   ``python -m offline_cave configure --server URL``;
3. the students execute the pages of the book between them: every page runs on one student
   machine (alternately), and the pages that download files through the course's source
   registry (the V1DD sessions, the bulk exports, the static meshes: ``SHARED_PAGES``) on
   both, since each HOME has its own sources file and download cache (``--every-page-twice``
   runs every page on both, twice the time);
4. each runs ``python -m offline_cave unconfigure``: both HOMEs must be byte-identical to
   before, and the student without a token can then save one with caveclient.

Prints one line per step and exits non-zero on the first failure.

usage: python .ci/classroom_check.py [--data sample-data] [--jobs 2] [--pages PAGE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
#: Pages that download files through connectomics_book.sources (run by both students).
SHARED_PAGES = ("chapters/v1dd/01_sessions.md", "chapters/scale/01_whole_connectome.md",
                "chapters/look/02_static_meshes.md")
URL_LINE = re.compile(r"listening on (?P<url>http://\S+)$")
REAL = "real0token0value0do0not0touch000"


def snapshot(home: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every file and empty directory under ``home`` (the clients' caches excepted) with its
    mode and bytes: a directory kept only because a cache is in it is not configure's doing."""
    out = {}
    for path in sorted(home.rglob("*")):
        rel = path.relative_to(home)
        if rel.parts[0] in (".cache", ".ipython", ".jupyter", ".local", ".config",
                            ".cloudfiles") and rel.parts[:2] != (".config", "connectomics_book"):
            continue  # written by the kernels and the clients' caches, not by configure
        if rel.parts[:2] == (".cloudvolume", "cache"):
            continue  # cloud-volume's download cache
        if path.is_dir() and any(path.iterdir()):
            continue  # a directory counts through its files (or when it is empty)
        out[str(rel)] = (path.stat().st_mode & 0o777, path.read_bytes() if path.is_file() else None)
    return out


def student_with_tokens(home: Path) -> None:
    secrets = home / ".cloudvolume" / "secrets"
    secrets.mkdir(parents=True)
    for name in ("cave-secret.json", "global.daf-apis.com-cave-secret.json",
                 "global.em.brain.allentech.org-cave-secret.json"):
        (secrets / name).write_text(json.dumps({"token": REAL}))
        os.chmod(secrets / name, 0o600)
    (secrets / "cave_datastack_to_server_map.json").write_text(json.dumps(
        {"minnie65_public": "https://global.daf-apis.com",
         "v1dd_public": "https://global.em.brain.allentech.org"}))


def student_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OFFLINE_CAVE", "V1DD_", "CONNECTOMICS_BOOK", "CLOUD_VOLUME"))}
    env["HOME"] = str(home)
    env["MPLCONFIGDIR"] = str(home / ".cache" / "matplotlib")
    return env


def run(cmd: list[str], env: dict[str, str], what: str, **kw) -> subprocess.CompletedProcess:
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, **kw)
    print(f"[classroom] {what}: exit {proc.returncode} in {time.time() - t0:.0f} s", flush=True)
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"[classroom] FAILED: {what}")
    return proc


def split_pages(pages: list[str], names: list[str], twice: bool) -> dict[str, list[str]]:
    """The pages each student runs: all of them for every student when ``twice``, otherwise
    every page for one student (alternately) and the :data:`SHARED_PAGES` for all."""
    if twice:
        return {name: list(pages) for name in names}
    share: dict[str, list[str]] = {name: [] for name in names}
    for i, page in enumerate(pages):
        for k, name in enumerate(names):
            if k == i % len(names) or page in SHARED_PAGES:
                share[name].append(page)
    return share


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "sample-data")
    parser.add_argument("--jobs", default="2")
    parser.add_argument("--pages", nargs="*", default=None)
    parser.add_argument("--every-page-twice", action="store_true",
                        help="run every page for both students (default: split them)")
    args = parser.parse_args()
    pages = args.pages or subprocess.run(
        [PY, "-m", "connectomics_book.build.pages", "--notebooks"], cwd=ROOT, check=True,
        capture_output=True, text=True).stdout.split()

    work = Path(tempfile.mkdtemp(prefix="classroom-"))
    instructor = subprocess.Popen(
        [PY, "-m", "offline_cave", "serve", "--data", str(args.data), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=student_env(work / "instructor"))
    try:
        line = instructor.stdout.readline().strip()
        match = URL_LINE.search(line)
        if not match:
            raise SystemExit(f"[classroom] the server did not start: {line!r}")
        url = match["url"]
        print(f"[classroom] instructor serves {url}", flush=True)
        students = {"with-tokens": work / "student-a", "no-token": work / "student-b"}
        students["no-token"].mkdir(parents=True)
        student_with_tokens(students["with-tokens"])
        before = {name: snapshot(home) for name, home in students.items()}
        share = split_pages(pages, list(students), args.every_page_twice)
        for name, home in students.items():
            env = student_env(home)
            run([PY, "-m", "offline_cave", "configure", "--server", url], env,
                f"{name}: configure")
            run([PY, "-m", "pytest", "--nbmake", "-n", args.jobs, "--nbmake-timeout=600",
                 "-p", "no:cacheprovider", "-q", *share[name]], env,
                f"{name}: {len(share[name])} pages", cwd=ROOT)
            undo = run([PY, "-m", "offline_cave", "unconfigure"], env, f"{name}: unconfigure")
            if "kept as it is" in undo.stderr:
                raise SystemExit(f"[classroom] FAILED: {name}: unconfigure kept files: "
                                 f"{undo.stderr}")
            after = snapshot(home)
            if after != before[name]:
                changed = sorted(set(after.items()) ^ set(before[name].items()))
                raise SystemExit(f"[classroom] FAILED: {name}: HOME differs after unconfigure: "
                                 f"{sorted({p for p, _ in changed})}")
            print(f"[classroom] {name}: HOME byte-identical after unconfigure "
                  f"({len(after)} paths)", flush=True)
        run([PY, "-c", "from caveclient import CAVEclient; "
                       "CAVEclient().auth.save_token(token='f' * 32)"],
            student_env(students["no-token"]), "no-token: save_token after the class")
    finally:
        instructor.terminate()
        instructor.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)
    print("[classroom] OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
