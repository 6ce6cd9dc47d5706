"""Sphinx extension: an honesty banner on every page, built from the provenance record.

``python -m connectomics_book.build.provenance`` writes a JSON record of which CAVE services
answered when the pages were executed. This extension reads that record when the build
starts and shows it in the theme's announcement bar of every HTML page. A build without the
record fails: a page must never show outputs without saying where they came from.

Config values (``sphinx: config:`` in ``_config.yml``):

``provenance_file``
    path of the record, relative to the book's root (default ``_build/provenance.json``).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

from connectomics_book.build.provenance import SOURCE_PUBLIC, SOURCE_SYNTHETIC

BANNER_CLASS = "book-provenance"

#: Colours of the announcement bar (background, text): amber for synthetic, green for public.
_COLOURS = {SOURCE_SYNTHETIC: ("#fff3cd", "#664d03"), SOURCE_PUBLIC: ("#d1e7dd", "#0f5132")}


def load_record(path: Path) -> dict[str, Any]:
    """Read a provenance record, failing with instructions when it is missing or empty."""
    if not path.is_file():
        raise ExtensionError(
            f"provenance record {path} is missing: run "
            f"`python -m connectomics_book.build.provenance {path}` in the environment that executes the pages (`make book` does) before "
            "building, so every page can say which data produced its outputs"
        )
    record = json.loads(path.read_text(encoding="utf-8"))
    if not record.get("datastacks"):
        raise ExtensionError(f"provenance record {path} names no datastack")
    return record


def _describe(ds: dict[str, Any]) -> str:
    name = html.escape(str(ds["datastack"]))
    version = int(ds["materialization_version"])
    if ds["source"] == SOURCE_SYNTHETIC:
        return (
            f"an <strong>offline synthetic sample</strong> standing in for <code>{name}</code> "
            f"(materialization v{version}); its numbers and figures are made up for teaching "
            "and are <strong>not real data</strong>"
        )
    server = html.escape(str(ds.get("local_server") or ds.get("global_server") or "?"))
    return (
        f"the public datastack <code>{name}</code>, materialization v{version}, served by {server}"
    )


def banner_kind(record: dict[str, Any]) -> str:
    """``"synthetic"`` if any datastack of the record is the synthetic sample, else ``"public"``."""
    sources = {ds["source"] for ds in record["datastacks"]}
    return SOURCE_SYNTHETIC if SOURCE_SYNTHETIC in sources else SOURCE_PUBLIC


def render_banner(record: dict[str, Any]) -> str:
    """HTML of the banner for one provenance record."""
    kind = banner_kind(record)
    when = dt.datetime.fromisoformat(record["generated_at"]).strftime("%Y-%m-%d %H:%M UTC")
    parts = "; ".join(_describe(ds) for ds in record["datastacks"])
    background, text = _COLOURS[kind]
    return (
        f"<style>.bd-header-announcement{{background-color:{background};color:{text}}}</style>"
        f'<span class="{BANNER_CLASS}" data-source="{kind}">'
        f"Outputs on this page were computed against {parts}. "
        f"Executed {html.escape(when)} with caveclient "
        f"{html.escape(str(record.get('caveclient_version', '?')))}.</span>"
    )


def _on_builder_inited(app: Sphinx) -> None:
    path = Path(app.confdir, app.config.provenance_file)
    app.book_provenance_banner = render_banner(load_record(path))  # type: ignore[attr-defined]


def _on_html_page_context(app: Sphinx, pagename, templatename, context, doctree) -> None:
    context["theme_announcement"] = app.book_provenance_banner  # type: ignore[attr-defined]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("provenance_file", "_build/provenance.json", "env")
    app.connect("builder-inited", _on_builder_inited)
    app.connect("html-page-context", _on_html_page_context)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
