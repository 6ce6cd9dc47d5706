"""Sphinx extension: the built book serves plotly.js once, as a file, instead of inline.

A page draws an interactive figure with ``HTML(fig.to_html(include_plotlyjs=True))``, which
embeds plotly's JavaScript (about 4.8 MB) in the cell output, so that the notebook works
offline in Jupyter and on Colab. In the built book this extension replaces every such inline
copy with a ``<script src>`` of ``_static/plotly.min.js``, the same file (copied from the
installed ``plotly`` package), so the page's HTML holds only the figures' data and the
browser loads the library once for all pages, offline too. Pages without plotly output are
left untouched and do not load the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

STATIC_NAME = "plotly.min.js"


def _plotlyjs() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def share_plotlyjs(body: str, script_url: str, plotlyjs: str | None = None) -> tuple[str, int]:
    """``body`` with every inline ``<script>`` holding plotly.js replaced by
    ``<script src="script_url">``, and the number of copies replaced."""
    plotlyjs = _plotlyjs() if plotlyjs is None else plotlyjs
    parts, replaced, start = [], 0, 0
    while (found := body.find(plotlyjs, start)) >= 0:
        tag_start = body.rfind("<script", start, found)
        tag_end = body.find(">", tag_start) + 1
        close = body.find("</script>", found + len(plotlyjs))
        if tag_start < 0 or tag_end != found or close != found + len(plotlyjs):
            parts.append(body[start:found + len(plotlyjs)])  # not a whole script: keep it
            start = found + len(plotlyjs)
            continue
        parts.append(body[start:tag_start])
        parts.append(f'<script charset="utf-8" src="{script_url}"></script>')
        start = close + len("</script>")
        replaced += 1
    parts.append(body[start:])
    return "".join(parts), replaced


def _on_html_page_context(app: Sphinx, pagename: str, templatename: str,
                          context: dict[str, Any], doctree: Any) -> None:
    body = context.get("body")
    if not body or "plotly" not in body:
        return
    script_url = context["pathto"](f"_static/{STATIC_NAME}", 1)
    context["body"], replaced = share_plotlyjs(body, script_url)
    if replaced:
        app.env.plotly_js_needed = True  # type: ignore[attr-defined]


def _on_build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and getattr(app.env, "plotly_js_needed", False):
        import plotly

        source = Path(plotly.__file__).parent / "package_data" / STATIC_NAME
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, static / STATIC_NAME)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", _on_html_page_context)
    app.connect("build-finished", _on_build_finished)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": False}
