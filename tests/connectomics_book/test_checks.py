""".ci/check_html.py passes a sound site and reports each kind of defect in a broken one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from connectomics_book.build.banner import render_banner
from tests.fixtures.paths import REPO_ROOT

ROOT = REPO_ROOT
RECORD = {
    "generated_at": "2026-11-21T10:00:00+00:00",
    "caveclient_version": "8.2.1",
    "datastacks": [
        {"datastack": "minnie65_public", "materialization_version": 1300, "source": "public"}
    ],
}
BANNER = render_banner(RECORD)
GOOD_PAGE = f"""<html><body>{BANNER}
<h1 id="top">Title</h1><a href="other.html#part">other</a><img src="_images/fig.png">
<div class="cell tag_raises-exception"><div class="cell_output">
<div class="output traceback">NotImplementedError</div></div></div>
<script src="_static/plotly.min.js"></script><script>Plotly.newPlot("f", []);</script>
</body></html>"""


def run_check(site: Path, record: dict) -> subprocess.CompletedProcess:
    (site.parent / "provenance.json").write_text(json.dumps(record))
    return subprocess.run(
        [sys.executable, ROOT / ".ci" / "check_html.py", site, site.parent / "provenance.json"],
        capture_output=True,
        text=True,
        check=False,
    )


def make_site(tmp_path: Path) -> Path:
    site = tmp_path / "html"
    (site / "_images").mkdir(parents=True)
    (site / "_images" / "fig.png").write_bytes(b"\x89PNG not empty")
    (site / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=page.html" />')
    (site / "page.html").write_text(GOOD_PAGE)
    (site / "other.html").write_text(f'<html><body>{BANNER}<p id="part">x</p></body></html>')
    (site / "_static").mkdir()
    (site / "_static" / "plotly.min.js").write_text("/**\n* plotly.js v4.1.1\n*/")
    return site


def test_sound_site_passes(tmp_path):
    result = run_check(make_site(tmp_path), RECORD)
    assert result.returncode == 0, result.stdout
    assert "0 problems" in result.stdout


def test_each_defect_is_reported(tmp_path):
    site = make_site(tmp_path)
    (site / "_images" / "fig.png").write_bytes(b"")
    (site / "broken.html").write_text(
        '<html><body><a href="missing.html">x</a><a href="other.html#nowhere">y</a>'
        '<div class="cell"><div class="output traceback">ValueError</div></div>'
        '<script type="text/javascript">/**\n* plotly.js v4.1.1\n*/ (function(){})</script>'
        '</body></html>'
    )
    result = run_check(site, RECORD)
    assert result.returncode == 1
    for expected in (
        "broken.html: no provenance banner",
        "broken.html: broken link missing.html",
        "broken.html: broken anchor other.html#nowhere",
        "broken.html: error output",
        "page.html: image _images/fig.png is missing or empty",
        "broken.html: 1 inline copies of plotly.js",
    ):
        assert expected in result.stdout


def test_banner_must_match_the_record(tmp_path):
    synthetic = {**RECORD, "datastacks": [{**RECORD["datastacks"][0], "source": "synthetic"}]}
    result = run_check(make_site(tmp_path), synthetic)
    assert result.returncode == 1
    assert "banner says 'public', record says 'synthetic'" in result.stdout
