"""Write the ``.ipynb`` twin of every page, for the Colab button.

The pages are MyST Markdown (``chapters/**/*.md``), which Google Colab cannot open. The book
theme's Colab button links to ``<page>.ipynb`` on GitHub when that file sits next to the page, so
each page gets an output-free notebook converted with jupytext. The ``.md`` stays the source:
the twins are generated, excluded from the book build (``_config.yml``) and checked by
``tests/connectomics_book/test_pages.py``; regenerate them after editing a page.

Colab renders plain Markdown only, so the few MyST constructs the pages use are rewritten in
the twins: ``:::{admonition} Title`` blocks become quotes with a bold title, ``{footcite:p}`key```
becomes "(Author et al., year)", and ``{footbibliography}`` the list of the works cited since the
previous one (from ``resources/references.bib``). Links to other pages, relative in the book,
become links that work from Colab: to the other page's twin opened in Colab, or to the page on
GitHub when it has no code.

The pages carry no setup code. Each twin starts with a setup cell (tagged ``remove-cell``)
written here: on Colab it installs what the page imports (:func:`install_line`), then it sets
the book's display options (``DISPLAY_SETUP``, which the book build runs from
``.ci/ipython/profile_default/startup/``).

The install line is derived, never kept by hand: the top-level modules the page's code imports
(and, for each ``connectomics_book`` module it imports, that module's own imports), mapped to
their distributions with ``importlib.metadata.packages_distributions()`` of the environment
this runs in (the book's venv), each pinned to ``requirements.lock``; plus
``constants.NWB_DISTRIBUTIONS`` (pinned from the lock) for pages that read NWB sessions; then the course package from
``constants.REPOSITORY_URL``. A module that maps to no locked distribution is an error.

Pages that talk to CAVE (import ``caveclient``) get two more cells after the setup: a note
that a token saved in a Colab runtime is lost with it, and a cell calling
``connectomics_book.colab.ensure_token`` (Colab secrets or ``getpass``; a no-op elsewhere).

usage: python tools/make_ipynb.py [--check]   (run from the repository root)
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

import jupytext
import nbformat

from connectomics_book.build.pages import is_myst_notebook, reads_nwb_sessions, toc_pages
from connectomics_book.constants import (
    COLAB_PIP,
    COURSE_REQUIREMENT,
    DATASTACK,
    DISPLAY_SETUP,
    GLOBAL_SERVERS,
    NWB_DISTRIBUTIONS,
    V1DD_DATASTACK,
)

ROOT = Path(__file__).resolve().parent.parent
BIB = ROOT / "resources" / "references.bib"
HEADER = ("Generated from {name} by tools/make_ipynb.py for Google Colab; edit the .md page, "
          "not this file.")


_ADMONITION = re.compile(r"^:::\{admonition\}[ \t]*(.*)\n((?:.*\n)*?):::[ \t]*$", re.MULTILINE)
_CITE = re.compile(r"\{footcite:([pt])\}`([^`]+)`")
_PAGE_LINK = re.compile(r"\]\((?![a-z]+:)([^)#\s]+\.md)(#[^)\s]*)?\)")
_BIBLIOGRAPHY = re.compile(r"^```\{footbibliography\}[ \t]*\n```[ \t]*$", re.MULTILINE)


SETUP_TAGS = ["remove-cell"]
LOCK = ROOT / "requirements.lock"
SRC = ROOT / "src"
#: Top-level packages of the course distribution (installed from REPOSITORY_URL).
COURSE_PACKAGES = {"connectomics_book", "offline_cave"}
#: Modules that exist only on Colab (imported by connectomics_book.colab there).
COLAB_ONLY = {"google"}
#: Modules of the running kernel itself (Colab's own IPython; ipykernel elsewhere): never
#: reinstalled under a live kernel, so not in the install line.
KERNEL_PROVIDED = {"IPython", "ipykernel", "matplotlib_inline", "traitlets", "jupyter_client"}
#: calls that need a module the page does not import: caveclient's skeleton client reads
#: skeletons with cloud-volume, an optional dependency it imports only when asked
CALLS_NEEDING = {".skeleton.get_skeleton": "cloudvolume",
                 ".skeleton.get_bulk_skeletons": "cloudvolume"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def lock_pins(lock: Path = LOCK) -> dict[str, str]:
    """``{normalised distribution name: "name==version"}`` of requirements.lock."""
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            pins[_normalise(name)] = f"{name.strip()}=={version.strip().split()[0]}"
    return pins


@cache
def _distributions_of_modules() -> dict[str, tuple[str, ...]]:
    from importlib.metadata import packages_distributions

    return {module: tuple(dists) for module, dists in packages_distributions().items()}


def code_imports(source: str) -> set[str]:
    """Dotted names of the modules a cell (or file) imports, anywhere in its code."""
    from IPython.core.inputtransformer2 import TransformerManager

    tree = ast.parse(TransformerManager().transform_cell(source))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _course_module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(sources: list[str]) -> set[str]:
    """Top-level modules that ``sources`` import, following the course package's modules
    (``connectomics_book.sessions`` brings what sessions.py imports)."""
    seen, todo, top = set(), set(), set()
    for source in sources:
        todo |= code_imports(source)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        top.add(name.split(".")[0])
        if name.split(".")[0] in COURSE_PACKAGES:
            path = _course_module_file(name)
            if path is not None:
                todo |= code_imports(path.read_text(encoding="utf-8"))
    return top


def requirements_for(modules: set[str], *, nwb: bool = False) -> list[str]:
    """Pinned requirements (``name==version`` from the lock) of the distributions providing
    ``modules``; the standard library, the course package, Colab-only modules and the
    kernel's own modules (``KERNEL_PROVIDED``) need none."""
    pins, extra = lock_pins(), {}
    if nwb:
        extra = {name.replace("-", "_"): pins[_normalise(name)] for name in NWB_DISTRIBUTIONS}
    found = set(extra.values())
    for module in sorted(modules):
        if (module in sys.stdlib_module_names or module in COURSE_PACKAGES
                or module in COLAB_ONLY or module in KERNEL_PROVIDED or module in extra):
            continue
        dists = [d for d in _distributions_of_modules().get(module, ()) if _normalise(d) in pins]
        if not dists:
            raise LookupError(f"module {module!r} is provided by no distribution of "
                              f"requirements.lock (is it installed in this environment?)")
        found |= {pins[_normalise(d)] for d in dists}
    return sorted(found, key=str.lower)


def page_sources(md_path: Path) -> list[str]:
    """The code of a page's cells."""
    nb = jupytext.read(md_path, fmt="md:myst")
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def talks_to_cave(md_path: Path) -> bool:
    """True for a page whose code imports caveclient."""
    return "caveclient" in imported_modules(page_sources(md_path))


def token_datastacks(md_path: Path) -> list[str]:
    """The datastacks whose token a page needs: those whose constant it imports."""
    imported = set().union(*map(code_imports, page_sources(md_path)))
    names = {"DATASTACK": DATASTACK, "V1DD_DATASTACK": V1DD_DATASTACK}
    wanted = [stack for name, stack in names.items()
              if {f"connectomics_book.constants.{name}", f"connectomics_book.{name}"} & imported]
    return wanted or [DATASTACK]


def install_line(md_path: Path) -> str:
    """The Colab install line of a page's twin (see the module docstring)."""
    sources = page_sources(md_path) + [DISPLAY_SETUP]
    if talks_to_cave(md_path):
        sources.append(token_source(md_path))
    modules = imported_modules(sources)
    modules |= {module for call, module in CALLS_NEEDING.items()
                if any(call in source for source in sources)}
    requirements = requirements_for(modules, nwb=reads_nwb_sessions(md_path))
    return " ".join([COLAB_PIP, *requirements, COURSE_REQUIREMENT])


def setup_source(md_path: Path) -> str:
    """The first cell of every twin: the Colab install, then the book's display options."""
    return "\n".join([
        "# Setup (written by tools/make_ipynb.py): on Google Colab, install what this page",
        "# imports, pinned to the course's lock; then the display options of the book.",
        "import sys",
        "",
        'if "google.colab" in sys.modules:',
        f"    {install_line(md_path)}",
        "",
        DISPLAY_SETUP,
    ])


def token_markdown(md_path: Path) -> str:
    """The note before the token cell of a page that talks to CAVE."""
    from connectomics_book.colab import TOKEN_SECRETS

    stacks = token_datastacks(md_path)
    secrets = " and ".join(f"`{TOKEN_SECRETS[s]}` (the token of {GLOBAL_SERVERS[s]}, for "
                           f"`{s}`)" for s in stacks)
    several = len(stacks) > 1
    setup_page = ROOT / "chapters" / "programmatic_access" / "01_setup.md"
    return "\n".join([
        "> **Your CAVE token on Colab**",
        ">",
        "> This page sends requests to the public CAVE services, which need your token "
        f"([get one]({page_url(setup_page)})).",
        "> A Colab runtime is a fresh machine: a token saved in it with `auth.save_token` is "
        "lost when the runtime is recycled, so save it again in every new runtime.",
        f"> Easiest: store {'them' if several else 'it'} once as "
        f"{'Colab secrets' if several else 'a Colab secret'} (key icon in the left bar) named "
        f"{secrets}, "
        f"and give this notebook access. The next cell then saves "
        f"{'them' if several else 'it'} in the runtime; without a secret it asks for the "
        "token without showing it.",
        "> The token is never printed or written into the notebook. Outside Colab the cell "
        "does nothing.",
    ])


def token_source(md_path: Path) -> str:
    """The cell of a page that talks to CAVE that saves the token in a Colab runtime."""
    args = ", ".join(f'"{s}"' for s in token_datastacks(md_path))
    return "\n".join([
        "# On Google Colab only: save your CAVE token in this runtime (does nothing elsewhere).",
        "from connectomics_book.colab import ensure_token",
        "",
        f"ensure_token({args})",
    ])


@cache
def _bibliography() -> dict:
    from pybtex.database import parse_file

    return dict(parse_file(str(BIB)).entries)


def _surname(person) -> str:
    return " ".join(person.last_names).replace("{", "").replace("}", "")


def _authors_short(entry) -> str:
    people = [p for p in entry.persons.get("author", []) if _surname(p) != "others"]
    if not people:
        return "Anonymous"
    if len(people) == 2 and len(entry.persons["author"]) == 2:
        return f"{_surname(people[0])} and {_surname(people[1])}"
    return _surname(people[0]) + (" et al." if len(entry.persons["author"]) > 1 else "")


def _reference(key: str) -> str:
    entry = _bibliography()[key]
    fields = {k: v.replace("{", "").replace("}", "") for k, v in entry.fields.items()}
    text = f"{_authors_short(entry)} ({fields.get('year', 'n.d.')}). {fields.get('title', key)}."
    if fields.get("journal"):
        text += f" *{fields['journal']}*"
        if fields.get("volume"):
            text += f" {fields['volume']}"
        if fields.get("pages"):
            text += f", {fields['pages'].replace('--', '-')}"
        text += "."
    if fields.get("doi"):
        text += f" https://doi.org/{fields['doi']}"
    return text


def page_url(target: Path, root: Path = ROOT) -> str:
    """Where a book page opens from Colab: its twin in Colab, or the Markdown on GitHub."""
    from connectomics_book.constants import REPOSITORY_URL

    rel = target.resolve().relative_to(root).as_posix()
    if is_myst_notebook(target):
        github = REPOSITORY_URL.removeprefix("https://github.com/")
        return (f"https://colab.research.google.com/github/{github}/blob/main/"
                f"{rel.removesuffix('.md')}.ipynb")
    return f"{REPOSITORY_URL}/blob/main/{rel}"


def colab_markdown(text: str, cited: list[str], page: Path | None = None) -> str:
    """Plain-Markdown version of a MyST markdown cell; appends new citation keys to ``cited``.

    ``page`` (the cell's source file) resolves relative links to other pages."""

    def admonition(match: re.Match) -> str:
        body = [line for line in match.group(2).splitlines() if not line.startswith(":class:")]
        while body and not body[0].strip():
            body.pop(0)
        quoted = [f"> **{match.group(1).strip()}**", ">"] + [f"> {line}".rstrip() for line in body]
        return "\n".join(quoted)

    def cite(match: re.Match) -> str:
        keys = [k.strip() for k in match.group(2).split(",")]
        cited.extend(k for k in keys if k not in cited)
        entries = [_bibliography()[k] for k in keys]
        if match.group(1) == "t":
            return "; ".join(f"{_authors_short(e)} ({e.fields.get('year', 'n.d.')})"
                             for e in entries)
        return "(" + "; ".join(f"{_authors_short(e)}, {e.fields.get('year', 'n.d.')}"
                               for e in entries) + ")"

    def bibliography(_: re.Match) -> str:
        listed = "\n".join(f"- {_reference(k)}" for k in cited)
        cited.clear()
        return listed

    def link(match: re.Match) -> str:
        target = (page.parent / match.group(1)) if page is not None else None
        if target is None or not target.is_file():
            return match.group(0)
        return f"]({page_url(target)}{match.group(2) or ''})"

    text = _ADMONITION.sub(admonition, text)
    text = _PAGE_LINK.sub(link, text)
    text = _CITE.sub(cite, text)
    return _BIBLIOGRAPHY.sub(bibliography, text)


def render_ipynb(md_path: Path) -> str:
    """The text of the output-free notebook twin of a MyST page."""
    nb = jupytext.read(md_path, fmt="md:myst")
    nb.metadata.pop("jupytext", None)  # the twin is not a paired file
    nb.metadata["colab"] = {"provenance": []}
    nb.metadata["connectomics_book"] = {"note": HEADER.format(name=md_path.name)}
    setup = nbformat.v4.new_code_cell(setup_source(md_path), metadata={"tags": list(SETUP_TAGS)})
    added = [setup]
    if talks_to_cave(md_path):
        added += [nbformat.v4.new_markdown_cell(token_markdown(md_path)),
                  nbformat.v4.new_code_cell(token_source(md_path),
                                            metadata={"tags": list(SETUP_TAGS)})]
    nb.cells[0:0] = added
    cited: list[str] = []
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell-{index}"  # stable ids: the twins only change when a page does
        if cell.cell_type == "markdown":
            cell.source = colab_markdown(cell.source, cited, md_path)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def notebook_pages(root: Path = ROOT) -> list[Path]:
    """The pages of the table of contents that are notebooks (have a kernelspec)."""
    return [root / p for p in toc_pages(root / "_toc.yml") if is_myst_notebook(root / p)]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for md in notebook_pages():
        target = md.with_suffix(".ipynb")
        text = render_ipynb(md)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            stale.append(target.relative_to(ROOT))
            if not check:
                target.write_text(text, encoding="utf-8")
    if check and stale:
        print("out of date (run `python tools/make_ipynb.py`): "
              + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    print(f"{'checked' if check else 'wrote'} the .ipynb twins; "
          f"{len(stale)} {'stale' if check else 'changed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
