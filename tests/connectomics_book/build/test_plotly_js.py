"""The built book loads plotly.js from one file instead of inline in every figure."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from connectomics_book.build.plotly_js import share_plotlyjs

URL = "../../_static/plotly.min.js"


def _figure_html() -> str:
    figure = go.Figure(go.Scatter3d(x=[0, 1], y=[0, 1], z=[0, 1]))
    return figure.to_html(include_plotlyjs=True, full_html=False)


def test_inline_plotlyjs_becomes_one_script_src_per_copy():
    body = f"<p>before</p>{_figure_html()}<p>between</p>{_figure_html()}"
    assert body.count(get_plotlyjs()) == 2
    shared, replaced = share_plotlyjs(body, URL)
    assert replaced == 2
    assert get_plotlyjs()[:200] not in shared
    assert shared.count(f'src="{URL}"') == 2
    assert shared.count("Plotly.newPlot") == 2 and "<p>between</p>" in shared
    assert len(shared) < len(body) - 2 * len(get_plotlyjs()) + 1000


def test_a_page_without_inline_plotlyjs_is_unchanged():
    body = "<p>no figure, but the word plotly</p><script>var x = 1;</script>"
    assert share_plotlyjs(body, URL) == (body, 0)
