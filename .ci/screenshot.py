"""Screenshot built pages in headless Chromium; check they are not blank and show figures.

A page that renders as one flat colour, or almost all white, fails. With ``--figures`` the page
is shot a second time from a copy whose images and plot containers are hidden by CSS; the two
shots must differ in at least ``--min-figure`` of the content pixels, i.e. the page's figures
are visibly rendered (not broken links, not empty frames). Shoot a real page, not index.html:
that one is a meta-refresh, and Chromium then exits 0 without writing a file.

usage: python .ci/screenshot.py PAGE.html OUT.png [--height PX] [--figures] [--min-figure F]
       python .ci/screenshot.py --site _build/html OUT_DIR   (every page of the book; figures
       required on every page whose HTML has figure outputs)
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

MIN_INK = 0.02  # at least 2 % of the content pixels must be clearly non-white
HIDE_FIGURES = ("<style>img[src*='_images/'], .cell_output canvas, .js-plotly-plot, "
                ".plotly-graph-div "
                "{visibility: hidden !important}</style>")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def shoot(browser: str, page: Path, out: Path, height: int) -> np.ndarray:
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             "--hide-scrollbars", "--virtual-time-budget=8000", f"--screenshot={out}",
             f"--window-size=1280,{height}", page.as_uri()],
            check=True, timeout=180, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not out.is_file():
        sys.exit(f"screenshot: chromium wrote no {out}")
    return np.asarray(Image.open(out).convert("L"), dtype=np.int16)


def check_page(browser: str, page: Path, out: Path, height: int, figures: bool,
               min_figure: float) -> str | None:
    """Shoot one page; returns a failure message or None (and prints what it measured)."""
    # judge the central column (the sidebars and their borders run the full height), and
    # only its rows that show something (a tall window leaves white space below short pages)
    column = slice(int(0.2 * 1280), int(0.8 * 1280))
    grey = shoot(browser, page, out, height)[:, column]
    rows = np.flatnonzero((grey < 245).any(axis=1))
    content = grey[rows] if rows.size else grey
    ink = float((content < 200).mean())
    levels = len(np.unique(content))
    message = f"screenshot: {out.name} ({len(rows)} rows of content), {ink:.1%} non-white"
    if levels < 2 or ink < MIN_INK:
        return f"{message}: {page.name} looks blank"
    if figures:
        hidden = page.with_name(f".{page.stem}.nofigures.html")
        html = page.read_text(encoding="utf-8")
        hidden.write_text(html.replace("</head>", HIDE_FIGURES + "</head>", 1), encoding="utf-8")
        try:
            bare = shoot(browser, hidden, out.with_name(f"{out.stem}.nofigures.png"),
                         height)[:, column]
        finally:
            hidden.unlink(missing_ok=True)
        n = min(len(bare), len(grey))
        changed = np.abs(grey[:n] - bare[:n]) > 40
        share = float(changed[rows[rows < n]].mean()) if rows.size else 0.0
        message += f", figures cover {share:.1%} of the content"
        if share < min_figure:
            return f"{message}: {page.name} shows no visible figures"
    print(message, flush=True)
    return None


def has_figures(page: Path) -> bool:
    """Whether a built page has figure outputs (images or plotly plots in cell outputs)."""
    html = page.read_text(encoding="utf-8", errors="replace")
    # figures of cells and of figure directives live in _images/ (theme logos in _static/)
    return 'src="../../_images/' in html or 'src="_images/' in html or "plotly-graph-div" in html


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("page", type=Path, nargs="?")
    parser.add_argument("out", type=Path)
    parser.add_argument("--site", type=Path, help="shoot every page of this built book")
    parser.add_argument("--height", type=int, default=900,
                        help="window height (a tall window captures the whole page)")
    parser.add_argument("--figures", action="store_true",
                        help="require visibly rendered figures (see the module docstring)")
    parser.add_argument("--min-figure", type=float, default=0.003)
    args = parser.parse_args()
    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    if browser is None:
        sys.exit(f"screenshot: none of {BROWSERS} on PATH (apt-get install chromium)")
    if args.site:
        site = args.site.resolve()
        pages = [site / "intro.html", *sorted((site / "chapters").rglob("*.html"))]
        failures = []
        for page in pages:
            if page.name.startswith("."):
                continue
            out = args.out.resolve() / page.relative_to(site).with_suffix(".png")
            out.parent.mkdir(parents=True, exist_ok=True)
            failure = check_page(browser, page, out, 20000, has_figures(page), args.min_figure)
            if failure:
                failures.append(failure)
                print(failure, flush=True)
        print(f"screenshot: {len(pages)} pages shot, {len(failures)} failed")
        sys.exit(1 if failures else 0)
    if args.page is None or not args.page.is_file():
        sys.exit(f"screenshot: {args.page} does not exist")
    args.out.resolve().parent.mkdir(parents=True, exist_ok=True)
    failure = check_page(browser, args.page.resolve(), args.out.resolve(), args.height,
                         args.figures, args.min_figure)
    if failure:
        sys.exit(failure)


if __name__ == "__main__":
    main()
