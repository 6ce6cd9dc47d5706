"""Check the rendered book (default _build/html) for what a green build can still hide.

* every page shows the provenance banner, and it agrees with the provenance record;
* no cell output is an error (traceback) unless its cell is tagged ``raises-exception``
  (an exercise stub);
* every ``<img>`` points at an existing, non-empty file;
* every relative link or source points at an existing file, and every ``#fragment`` at an
  existing id (external URLs cannot be checked offline);
* every Colab button opens a notebook Colab can read: an ``.ipynb`` that exists in this
  repository (``tools/make_ipynb.py`` writes them);
* no page holds plotly.js inline (about 5 MB a copy): the ``connectomics_book.build.plotly_js``
  extension serves it once from ``_static``.

usage: python .ci/check_html.py [SITE_DIR] [PROVENANCE_JSON]
"""

import json
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup

from connectomics_book.build.banner import BANNER_CLASS, banner_kind

site = Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html").resolve()
record_path = Path(sys.argv[2] if len(sys.argv) > 2 else "_build/provenance.json")
record = json.loads(record_path.read_text(encoding="utf-8"))
expected_kind = banner_kind(record)

pages = {
    path: BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "html.parser")
    for path in sorted(site.rglob("*.html"))
    if not {"_static", "_sources"} & set(path.relative_to(site).parts)
}
ids = {
    path: {tag["id"] for tag in soup.find_all(id=True)}
    | {tag["name"] for tag in soup.find_all("a", attrs={"name": True})}
    for path, soup in pages.items()
}
problems: list[str] = []
#: How plotly.js begins (its licence comment), whatever its version.
PLOTLYJS_HEADER = "/**\n* plotly.js v"
n_images = n_links = n_colab = 0
repo = Path.cwd().resolve()


def is_error_output(tag) -> bool:
    classes = set(tag.get("class") or ())
    return "traceback" in classes or {"output", "error"} <= classes


for path, soup in pages.items():
    name = path.relative_to(site)
    if soup.find("meta", attrs={"http-equiv": lambda v: (v or "").lower() == "refresh"}):
        continue  # index.html redirects to the root page
    banner = soup.find(class_=BANNER_CLASS)
    if banner is None:
        problems.append(f"{name}: no provenance banner")
    elif banner.get("data-source") != expected_kind:
        problems.append(
            f"{name}: banner says {banner.get('data-source')!r}, record says {expected_kind!r}"
        )
    for output in soup.find_all(is_error_output):
        cell = output.find_parent(class_="cell")
        if cell is None or "tag_raises-exception" not in (cell.get("class") or ()):
            problems.append(f"{name}: error output: {output.get_text()[:300]!r}")
    for img in soup.find_all("img"):
        src = img.get("src", "")
        if urlsplit(src).scheme or src.startswith("data:"):
            continue
        n_images += 1
        target = (path.parent / unquote(urlsplit(src).path)).resolve()
        if not target.is_file() or target.stat().st_size == 0:
            problems.append(f"{name}: image {src} is missing or empty")
    inline_plotlyjs = [tag for tag in soup.find_all("script", src=False)
                       if (tag.string or "").lstrip().startswith(PLOTLYJS_HEADER)]
    if inline_plotlyjs:
        problems.append(f"{name}: {len(inline_plotlyjs)} inline copies of plotly.js "
                        "(is connectomics_book.build.plotly_js in _config.yml?)")
    for tag in soup.find_all("a", href=lambda h: "colab.research.google.com" in (h or "")):
        n_colab += 1
        _, _, in_repo = urlsplit(tag["href"]).path.partition("/blob/")
        in_repo = in_repo.partition("/")[2]  # after the branch
        if not in_repo.endswith(".ipynb") or not (repo / in_repo).is_file():
            problems.append(f"{name}: Colab button opens {in_repo!r}, not a notebook of the repo")
    for tag in soup.find_all(["a", "link", "script"]):
        link = tag.get("href") or tag.get("src")
        if not link or link.startswith(("mailto:", "javascript:", "data:")):
            continue
        url = urlsplit(link)
        if url.scheme or url.netloc:
            continue  # external: cannot be checked offline
        n_links += 1
        target = (path.parent / unquote(url.path)).resolve() if url.path else path
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            problems.append(f"{name}: broken link {link}")
        elif url.fragment and target in ids and unquote(url.fragment) not in ids[target]:
            problems.append(f"{name}: broken anchor {link}")

for problem in problems:
    print(problem)
print(
    f"check_html: {len(pages)} pages, {n_images} images, {n_links} internal links, "
    f"{n_colab} Colab buttons, "
    f"banner '{expected_kind}': {len(problems)} problems"
)
sys.exit(1 if problems else 0)
