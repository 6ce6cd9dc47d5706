"""Every page under chapters/ holds only student code and follows chapters/_template.md."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import jupytext
import pytest

from connectomics_book.build.pages import is_myst_notebook, toc_pages
from connectomics_book.constants import (
    COLAB_PIP,
    DISPLAY_SETUP,
    FIGURE_FORMAT,
    GLOBAL_SERVERS,
    PANDAS_OPTIONS,
)
from tests.fixtures.paths import REPO_ROOT

ROOT = REPO_ROOT
CHAPTERS = ROOT / "chapters"
TEMPLATE = CHAPTERS / "_template.md"
PAGES = sorted(p for p in CHAPTERS.rglob("*.md") if p != TEMPLATE and "_build" not in p.parts)

#: Sections every page ends with, in this order; References only when the page cites.
CLOSING = ("Summary", "Next", "References")

#: Imperative verbs a title or section may start with. Add yours if it is missing.
VERBS = set(
    """
    Add Align Analyze Attach Build Check Choose Classify Combine Compare Compute Connect Convert
    Count Decode Describe Download Draw Estimate Explain Explore Extract Fetch Filter Find
    Follow Get Group Identify Inspect Install Join Judge Link List Load Locate Look Make Map
    Match Measure Meet Name Open Picture Pin Plot Predict Query Read Render Save Select Set
    Practise Show Skeletonize Sort Split Store Summarize Tell Test Tour Trace Track Understand Use
    Visualize Walk Work Write
    """.split()
)

#: How a page may name a server (``server_address=``): only the public global servers, by
#: their constants (connectomics_book.constants) or their addresses. Any other value would
#: point a page somewhere else.
PUBLIC_SERVER_NAMES = (r"MICRONS_SERVER\b", r"V1DD_SERVER\b", r"GLOBAL_SERVERS\[",
                       *(re.escape(f'"{url}"') for url in GLOBAL_SERVERS.values()))

#: What a page may not mention: where it runs is decided outside it.
FORBIDDEN = {
    "a loopback host": re.compile(r"localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\]"),
    "a port": re.compile(r"https?://[^/\s:]+:\d+|\bport\s*=|--port\b", re.IGNORECASE),
    "the offline stand-in": re.compile(r"offline_cave|\bOFFLINE\b|synthetic sample", re.I),
    "an environment switch": re.compile(
        r"os\.environ|os\.getenv|%env\b|%set_env\b|MPLBACKEND|CAVE_TOKEN|"
        r"\bserver_address\s*=(?!\s*(?:" + "|".join(PUBLIC_SERVER_NAMES) + r"))"
    ),
}


def strip_code(text: str) -> str:
    """The page without fenced code blocks (headings inside them do not count)."""
    kept, in_fence = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        if not in_fence:
            kept.append(line)
    return "\n".join(kept)


def headings(text: str, level: int) -> list[str]:
    marker = "#" * level + " "
    return [
        line[len(marker) :].strip()
        for line in strip_code(text).splitlines()
        if line.startswith(marker)
    ]


def box_labels(text: str) -> list[str]:
    """Bold labels (``**Time:**``) of the first admonition of a page."""
    match = re.search(r"^:::\{admonition\}.*?^:::$", text, re.DOTALL | re.MULTILINE)
    return re.findall(r"\*\*(.+?):\*\*", match.group(0)) if match else []


REQUIRED_LABELS = box_labels(TEMPLATE.read_text(encoding="utf-8"))


#: Code a page does not carry, and why: the Colab install is written into its twin by
#: tools/make_ipynb.py, the display options come from the IPython startup file (STARTUP) and
#: the build-time package builds the book around the pages.
NOT_IN_PAGES = {
    "the Colab install": (re.compile(r"google\.colab|%pip install|!pip install"),
                          "tools/make_ipynb.py writes it into the twin"),
    "display setup": (re.compile(r"set_option\(|figure_format|InlineBackend|IProgress not found"),
                      "the IPython startup file and the twin's setup cell set the options"),
    "build-time code": (re.compile(r"connectomics_book\.build\b|connectomics_book import build"),
                        "connectomics_book.build builds the book; pages never import it"),
}

#: Module aliases a page may use only after importing them in a visible cell, besides every
#: name the page itself binds with ``import`` (in any cell, hidden or not).
ALIASES = {"pd", "np", "plt", "sns", "nx", "mpl", "sp", "go", "px"}


def _python(source: str) -> str:
    """A code cell as plain Python (IPython magics become function calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}
    return names


def missing_imports(notebook) -> set[str]:
    """Module aliases (``pd``, ``np``, ...) that visible code cells use but no visible cell
    imports. A cell tagged ``remove-cell`` is not in the book, so its imports do not count."""
    aliases, visible_imports, used = set(ALIASES), set(), set()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(_python(cell.source))
        imported = _imported(tree)
        aliases |= {n for n in imported if not n[0].isupper()}
        if "remove-cell" in cell.metadata.get("tags", []):
            continue
        visible_imports |= imported
        used |= {n.id for n in ast.walk(tree)
                 if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return (used & aliases) - visible_imports


def check_page(path: Path) -> list[str]:
    """Everything about ``path`` that departs from the template."""
    text = path.read_text(encoding="utf-8")
    problems = []
    titles = headings(text, 1)
    if len(titles) != 1:
        problems.append(f"needs exactly one '# ' title, has {titles}")
    elif titles[0].split()[0] not in VERBS:
        problems.append(f"title {titles[0]!r} does not start with a verb (VERBS)")
    if box_labels(text) != REQUIRED_LABELS:
        problems.append(
            f"first admonition must carry the labels {REQUIRED_LABELS}, has {box_labels(text)}"
        )
    sections = headings(text, 2)
    cites = "{footcite" in text or "{cite" in text
    closing = list(CLOSING if cites else CLOSING[:2])
    if sections[-len(closing) :] != closing:
        problems.append(f"must end with the sections {closing}, ends with {sections[-3:]}")
    if cites and "{footbibliography}" not in text:
        problems.append("cites but has no {footbibliography} under References")
    for section in sections:
        if section not in CLOSING and section.split()[0] not in VERBS:
            problems.append(f"section {section!r} does not start with a verb (VERBS)")
    if is_myst_notebook(path):
        notebook = jupytext.read(path, fmt="md:myst")
        if notebook.metadata.get("kernelspec", {}).get("name") != "python3":
            problems.append("kernelspec must be python3")
        for name in sorted(missing_imports(notebook)):
            problems.append(f"visible code uses {name!r} but no visible cell imports it")
    for what, (pattern, why) in NOT_IN_PAGES.items():
        if pattern.search(text):
            problems.append(f"holds {what}: {why}")
    return problems


def test_there_are_pages():
    assert len(PAGES) >= 5


def test_every_chapter_page_is_in_the_toc():
    listed = {ROOT / page for page in toc_pages(ROOT / "_toc.yml")}
    assert [p.relative_to(ROOT) for p in PAGES if p not in listed] == []


def test_template_follows_itself():
    assert REQUIRED_LABELS == ["What you will learn", "What you need", "Time"]
    assert headings(TEMPLATE.read_text(encoding="utf-8"), 2)[-3:] == list(CLOSING)
    assert check_page(TEMPLATE) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(CHAPTERS)))
def test_page_follows_the_template(page):
    assert check_page(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(CHAPTERS)))
def test_page_holds_only_student_code(page):
    text = page.read_text(encoding="utf-8")
    found = {what: pattern.findall(text) for what, pattern in FORBIDDEN.items()}
    assert {what: hits for what, hits in found.items() if hits} == {}


def test_checks_can_fail(tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text(
        "# The synapses\n\nServer at http://localhost:8765, see os.environ.\n\n## Summary\n"
    )
    problems = check_page(bad)
    assert any("verb" in p for p in problems)
    assert any("admonition" in p for p in problems)
    assert any("end with the sections" in p for p in problems)
    hits = {what for what, pattern in FORBIDDEN.items() if pattern.search(bad.read_text())}
    assert hits == {"a loopback host", "a port", "an environment switch"}


def test_only_public_servers_may_be_named():
    switch = FORBIDDEN["an environment switch"]
    for ok in ("CAVEclient(server_address=V1DD_SERVER)", "server_address = MICRONS_SERVER",
               "CAVEclient(server_address=GLOBAL_SERVERS[name])",
               'CAVEclient(server_address="https://global.em.brain.allentech.org")'):
        assert not switch.search(ok), ok
    for bad in ('CAVEclient(server_address="https://my.server.org")', "server_address=url",
                "CAVEclient(server_address=os.environ['X'])"):
        assert switch.search(bad), bad


SETUP_PAGE = CHAPTERS / "programmatic_access" / "01_setup.md"


def test_setup_page_shows_both_global_servers():
    """The setup page teaches both global servers: each datastack with its server, where to
    create each token, and code that runs with a client of each server."""
    text = SETUP_PAGE.read_text(encoding="utf-8")
    code = "\n".join(cell.source for cell in jupytext.read(SETUP_PAGE, fmt="md:myst").cells
                     if cell.cell_type == "code")
    for datastack, server in GLOBAL_SERVERS.items():
        assert datastack in text and server in text, datastack
        assert f"{server}/auth/api/v1/create_token" in text, server
    assert "CAVEclient(server_address=V1DD_SERVER)" in code
    assert "MICRONS_SERVER" in code and "GLOBAL_SERVERS" in code
    assert code.count(".auth.get_new_token()") == 2
    assert code.count(".auth.save_token(") == 2 and "overwrite=True" in code
    assert ".server_address" in code
    for error in ("401 Client Error", "403 Client Error", "AuthException"):
        assert error in text, error


def test_setup_and_import_checks_can_fail(tmp_path):
    hidden = tmp_path / "hidden.md"
    hidden.write_text(
        "---\nkernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n# Count cells\n\n"
        "```{code-cell} ipython3\n:tags: [remove-cell]\n\nimport sys\n\n"
        'if "google.colab" in sys.modules:\n    %pip install -q pandas\n```\n\n'
        "```{code-cell} ipython3\n:tags: [remove-cell]\n\nimport pandas as pd\n\n"
        'pd.set_option("display.max_rows", 12)\n```\n\n'
        "```{code-cell} ipython3\nimport numpy as np\n\n%time x = np.ones(3)\n"
        "pd.Series(x).sum()\n```\n",
        encoding="utf-8",
    )
    problems = check_page(hidden)
    assert "visible code uses 'pd' but no visible cell imports it" in problems
    assert not any("'np'" in p for p in problems)
    assert any(p.startswith("holds the Colab install") for p in problems)
    assert any(p.startswith("holds display setup") for p in problems)
    hidden.write_text(hidden.read_text() + "\n```{code-cell} ipython3\n"
                      "from connectomics_book.build.pages import toc_pages\n```\n")
    assert any(p.startswith("holds build-time code") for p in check_page(hidden))


def _load_make_ipynb():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_ipynb", ROOT / "tools" / "make_ipynb.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_colab_twins_are_up_to_date():
    """Each notebook page has an output-free .ipynb twin (Colab cannot open MyST Markdown)."""
    make_ipynb = _load_make_ipynb()
    pages = make_ipynb.notebook_pages(ROOT)
    assert len(pages) >= 15
    stale = [p.relative_to(ROOT) for p in pages
             if not p.with_suffix(".ipynb").is_file()
             or p.with_suffix(".ipynb").read_text(encoding="utf-8") != make_ipynb.render_ipynb(p)]
    assert not stale, f"run `python tools/make_ipynb.py`: stale twins {stale}"
    twins = {p.with_suffix(".ipynb") for p in pages}
    orphans = [p.relative_to(ROOT) for p in CHAPTERS.rglob("*.ipynb")
               if p not in twins and "_build" not in p.parts]
    assert not orphans, f"notebooks without a page: {orphans}"


def test_colab_twin_has_the_code_and_no_outputs(tmp_path):
    make_ipynb = _load_make_ipynb()
    page = tmp_path / "page.md"
    page.write_text("---\nkernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n"
                    "# Title\n\n```{code-cell} ipython3\nprint('hi')\n```\n", encoding="utf-8")
    import nbformat

    nb = nbformat.reads(make_ipynb.render_ipynb(page), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.source for c in code] == [make_ipynb.setup_source(page), "print('hi')"]
    assert all(c.outputs == [] for c in code) and nb.metadata.kernelspec.name == "python3"
    assert "jupytext" not in nb.metadata


def test_colab_twins_read_as_plain_markdown():
    """Colab does not render MyST: admonitions, citations and bibliographies are rewritten."""
    make_ipynb = _load_make_ipynb()
    cited: list[str] = []
    text = make_ipynb.colab_markdown(
        ":::{admonition} At a glance\n:class: tip\n\nLearn {footcite:p}`microns2025`.\n:::\n\n"
        "## References\n\n```{footbibliography}\n```", cited)
    assert text.startswith("> **At a glance**\n>\n> Learn (MICrONS Consortium et al., 2025).")
    assert ":::" not in text and "{footcite" not in text and "footbibliography" not in text
    assert "- MICrONS Consortium et al. (2025). Functional connectomics" in text
    assert "https://doi.org/10.1038/s41586-025-08790-w" in text and cited == []
    import nbformat

    page = ROOT / "chapters" / "programmatic_access" / "01_setup.md"
    linked = make_ipynb.colab_markdown(
        "[a](02_tables.md) [b](../background/04_data_modalities.md#x) [c](https://x.org/y.md)",
        [], page)
    assert "[a](https://colab.research.google.com/github/" in linked
    assert "/blob/main/chapters/programmatic_access/02_tables.ipynb)" in linked
    assert "[b](https://github.com/" in linked  # a page without code: its Markdown on GitHub
    assert "/blob/main/chapters/background/04_data_modalities.md#x)" in linked
    assert "[c](https://x.org/y.md)" in linked
    leftovers = re.compile(r"\{[a-z:]+\}`|^:::|^```\{|\]\((?![a-z]+:)[^)]*\.md", re.MULTILINE)
    for page in make_ipynb.notebook_pages(ROOT):
        nb = nbformat.read(page.with_suffix(".ipynb"), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                assert not leftovers.search(cell.source), (page.name, cell.source[:200])


def test_pages_without_nwb_leave_out_exactly_the_physiology_pages(capsys):
    """make test-live without V1DD_NWB_DIR runs every page that does not read NWB sessions."""
    from connectomics_book.build.pages import main, reads_nwb_sessions

    assert main(["--notebooks", str(ROOT / "_toc.yml")]) == 0
    every = capsys.readouterr().out.split()
    assert main(["--notebooks", "--without-nwb", str(ROOT / "_toc.yml")]) == 0
    out, err = capsys.readouterr()
    left_out = sorted(set(every) - set(out.split()))
    assert left_out and all(page.startswith("chapters/v1dd/") for page in left_out)
    assert all(reads_nwb_sessions(ROOT / page) for page in left_out)
    assert err.count("left out") == len(left_out)
    assert not any(reads_nwb_sessions(ROOT / page) for page in out.split())


def test_colab_twins_start_with_the_setup_cell():
    """The first cell of every twin installs the page's pins on Colab and sets the display
    options from connectomics_book.constants; pages that talk to CAVE then get the token note
    and cell; no other cell installs or sets options."""
    import nbformat

    make_ipynb = _load_make_ipynb()
    for page in make_ipynb.notebook_pages(ROOT):
        setup = make_ipynb.setup_source(page)
        line = make_ipynb.install_line(page)
        assert line.startswith(COLAB_PIP) and line in setup and DISPLAY_SETUP in setup
        assert setup.index(line) < setup.index(DISPLAY_SETUP)  # pandas after its install
        cells = nbformat.read(page.with_suffix(".ipynb"), as_version=4).cells
        first = cells[0]
        assert first.cell_type == "code" and first.source == setup, page.name
        assert first.metadata.get("tags") == ["remove-cell"], page.name
        rest = cells[1:]
        if make_ipynb.talks_to_cave(page):
            note, token = cells[1], cells[2]
            assert note.cell_type == "markdown" and "lost when the runtime" in note.source
            assert token.cell_type == "code" and token.source == make_ipynb.token_source(page)
            assert "ensure_token(" in token.source
            rest = cells[3:]
        assert not any("ensure_token" in c.source for c in rest), page.name
        assert not any("google.colab" in c.source or "set_option(" in c.source
                       or "%pip" in c.source for c in rest), page.name


def test_cave_pages_get_the_token_cell_of_their_datastacks():
    make_ipynb = _load_make_ipynb()
    pages = {p.relative_to(CHAPTERS).as_posix(): p for p in make_ipynb.notebook_pages(ROOT)}
    assert make_ipynb.talks_to_cave(pages["programmatic_access/02_tables.md"])
    assert not make_ipynb.talks_to_cave(pages["background/01_em_connectomics.md"])
    assert make_ipynb.token_datastacks(pages["v1dd/04_function_to_structure.md"]) == [
        "v1dd_public"]
    assert make_ipynb.token_datastacks(pages["meshes/01_meshes.md"]) == ["minnie65_public"]


#: The IPython startup file of the book build (the Makefile sets IPYTHONDIR=.ci/ipython).
IPYTHONDIR = ROOT / ".ci" / "ipython"
STARTUP = IPYTHONDIR / "profile_default" / "startup" / "00-book-display.py"

_REPORT_OPTIONS = (
    "import json, pandas\n"
    "from matplotlib_inline.backend_inline import InlineBackend\n"
    "print(json.dumps({'pandas': {k: pandas.get_option(k) for k in %r},\n"
    "                  'figure_formats': sorted(InlineBackend.instance().figure_formats),\n"
    "                  'leaked': sorted(n for n in ('pd', 'DISPLAY_SETUP') if n in dir())}))"
)


def _run_in_kernel(ipython_dir: Path, cells: list[str]):
    """The notebook of ``cells`` executed by a fresh kernel whose profile is in
    ``ipython_dir`` (its startup files run first)."""
    import os

    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    previous = os.environ.get("IPYTHONDIR")
    os.environ["IPYTHONDIR"] = str(ipython_dir)
    try:
        nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    finally:
        if previous is None:
            del os.environ["IPYTHONDIR"]
        else:
            os.environ["IPYTHONDIR"] = previous
    return nb


def _options_in_kernel(ipython_dir: Path, cells: list[str]) -> dict:
    """Display options a fresh kernel (profile in ``ipython_dir``) has after ``cells``."""
    nb = _run_in_kernel(ipython_dir,
                        [*cells, _REPORT_OPTIONS % (sorted(PANDAS_OPTIONS),)])
    return json.loads(nb.cells[-1].outputs[-1]["text"])


def test_book_build_and_colab_twins_set_the_same_display_options(tmp_path):
    """A kernel of the book build (the startup file) and a twin's first cell (in a kernel
    without that profile) end up with the same options: those of the constants."""
    import nbformat

    assert STARTUP.is_file()
    expected = {"pandas": PANDAS_OPTIONS, "figure_formats": [FIGURE_FORMAT]}
    book = _options_in_kernel(IPYTHONDIR, [])
    twin_page = _load_make_ipynb().notebook_pages(ROOT)[0].with_suffix(".ipynb")
    first_cell = nbformat.read(twin_page, as_version=4).cells[0].source
    colab = _options_in_kernel(tmp_path / "ipython", [first_cell])
    assert book == {**expected, "leaked": []}  # the startup file binds no name in the pages
    assert colab == {**expected, "leaked": []}



def test_colab_twins_pass_the_linter():
    """The twins are linted with the project's ruff settings (pyproject.toml), so the page
    code is too: fix a finding in the .md page, then regenerate the twin."""
    import subprocess
    import sys

    pytest.importorskip("ruff")
    twins = sorted(str(p.relative_to(ROOT)) for p in CHAPTERS.rglob("*.ipynb")
                   if "_build" not in p.parts)
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *twins],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _stderr_of_kernel(ipython_dir: Path, source: str) -> str:
    """What a fresh kernel (profile in ``ipython_dir``) writes to stderr running ``source``."""
    nb = _run_in_kernel(ipython_dir, [source])
    return "".join(o.get("text", "") for o in nb.cells[0].outputs if o.get("name") == "stderr")


def test_book_build_shows_each_caveclient_warning_once(tmp_path):
    """caveclient logs every response's Warning header (a table's notice, sent with each
    query): the book build's kernels show each distinct one once; a plain kernel shows all."""
    source = ("import logging\nlog = logging.getLogger('caveclient.base')\n"
              "for _ in range(3):\n    log.warning('NOTICE A')\nlog.warning('NOTICE B')\n")
    book = _stderr_of_kernel(IPYTHONDIR, source)
    plain = _stderr_of_kernel(tmp_path / "ipython", source)
    assert (book.count("NOTICE A"), book.count("NOTICE B")) == (1, 1)
    assert (plain.count("NOTICE A"), plain.count("NOTICE B")) == (3, 1)


#: Code lines are wrapped at CODE_COLUMNS, so that none is clipped at the width of the
#: rendered page (issue #13).
CODE_COLUMNS = 88


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(CHAPTERS)))
def test_code_lines_fit_the_page(page):
    notebook = jupytext.read(page, fmt="md:myst")
    long_lines = [line for cell in notebook.cells if cell.cell_type == "code"
                  for line in cell.source.splitlines() if len(line) > CODE_COLUMNS]
    assert not long_lines, f"{page.name}: code lines over {CODE_COLUMNS} columns: {long_lines}"
