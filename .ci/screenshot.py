"""Screenshot one built page in headless Chromium and check that it is not blank.

A page that renders as one flat colour, or almost all white, fails. Shoot a real page, not
index.html: that one is a meta-refresh, and Chromium then exits 0 without writing a file.

usage: python .ci/screenshot.py PAGE.html OUT.png
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

MIN_INK = 0.02  # at least 2 % of the pixels must be clearly non-white

page, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
browser = next(filter(None, map(shutil.which, BROWSERS)), None)
if browser is None:
    sys.exit(f"screenshot: none of {BROWSERS} on PATH (apt-get install chromium)")
if not page.is_file():
    sys.exit(f"screenshot: {page} does not exist")
out.parent.mkdir(parents=True, exist_ok=True)
out.unlink(missing_ok=True)
with tempfile.TemporaryDirectory() as profile:
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
            f"--screenshot={out}",
            "--window-size=1280,900",
            page.as_uri(),
        ],
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
if not out.is_file():
    sys.exit(f"screenshot: chromium wrote no {out}")
image = Image.open(out).convert("L")
histogram = image.histogram()
n_pixels = image.width * image.height
ink = sum(histogram[:200]) / n_pixels  # pixels clearly darker than white
colours = sum(1 for count in histogram if count)
print(
    f"screenshot: {out} {image.width}x{image.height}, {colours} grey levels, "
    f"{ink:.1%} non-white pixels"
)
if colours < 2 or ink < MIN_INK:
    sys.exit("screenshot: the page looks blank")
