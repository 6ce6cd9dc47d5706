"""The data versions the book teaches with, pinned in one place.

Pages import these names instead of repeating literals, so moving the book to a newer
materialization is a one-line change here (plus re-running the book).
"""

from __future__ import annotations

import datetime as _dt

#: Date on which the pins below were checked against the public services.
AS_OF = _dt.date(2026, 11, 21)

#: MICrONS public datastack (aligned volume ``minnie65_phase3``; positions in 4x4x40 nm voxels).
DATASTACK = "minnie65_public"
#: Materialization version the pages query. 1300 (2025-01-13) is a long-term "major" version.
MATERIALIZATION_VERSION = 1300
#: Version of the function-meets-structure chapter. The digital-twin property tables
#: (``digital_twin_properties_bcm_coreg_*``) first appear at 1507 (datasets-facts §2.6), which
#: expired on 2026-07-31 (§1.2); 1822 (2026-06-27) is the newest listed version that has them.
#: 1300 has only the deprecated ``functional_properties_v3_bcm``.
FUNCTIONAL_VERSION = 1822

#: V1 Deep Dive public datastack (positions in 9x9x45 nm voxels).
V1DD_DATASTACK = "v1dd_public"
#: The only documented public V1DD materialization ("current as of summer 2025").
V1DD_VERSION = 1196

#: Every (datastack, version) pair the book's pages query, in the order the book introduces them.
DATASTACK_VERSIONS: tuple[tuple[str, int], ...] = (
    (DATASTACK, MATERIALIZATION_VERSION),
    (V1DD_DATASTACK, V1DD_VERSION),
)

#: Public repository of the book (placeholder until the course is published).
REPOSITORY_URL = "https://github.com/example-org/microns-v1dd-book"

#: The global CAVE server of each public datastack. Each issues its own tokens (created at
#: ``<server>/auth/api/v1/create_token``); a client for ``v1dd_public`` must be told its server
#: once, caveclient then remembers it.
MICRONS_SERVER = "https://global.daf-apis.com"
V1DD_SERVER = "https://global.em.brain.allentech.org"
GLOBAL_SERVERS: dict[str, str] = {DATASTACK: MICRONS_SERVER, V1DD_DATASTACK: V1DD_SERVER}

#: Distribution name of the course package (pyproject.toml), and how Colab installs it: from
#: the one repository above.
COURSE_DISTRIBUTION = "microns-v1dd-course"
COURSE_REQUIREMENT = f'"{COURSE_DISTRIBUTION} @ git+{REPOSITORY_URL}"'
#: The command of the install line that tools/make_ipynb.py writes into the setup cell of each
#: Colab twin, followed by the distributions that page imports, pinned to requirements.lock
#: (derived per page from its imports; never kept by hand), then ``COURSE_REQUIREMENT``.
COLAB_PIP = "%pip install -q"
#: Distributions a page needs that its imports do not show: the public V1DD NWB sessions are
#: Zarr stores, which pynwb reads through hdmf_zarr. Added, pinned from requirements.lock, to
#: the twins of the pages that read NWB sessions.
NWB_DISTRIBUTIONS: tuple[str, ...] = ("hdmf-zarr",)

#: Display options of every page: compact pandas tables and the inline figure format.
PANDAS_OPTIONS: dict[str, int] = {
    "display.max_rows": 12,
    "display.max_columns": 14,
    "display.precision": 2,
}
#: Format of the inline matplotlib figures (IPython's ``InlineBackend.figure_formats``).
FIGURE_FORMAT = "png"

#: The display setup, as code. The book build runs it from the IPython startup file
#: (``.ci/ipython/profile_default/startup/``, ``IPYTHONDIR`` set by the Makefile); the Colab
#: twins run it in their hidden first cell (``tools/make_ipynb.py``). It binds no short alias
#: (``pd``, ``np``): each page imports what its code uses. The warning filter hides the notice
#: about missing notebook progress bars (ipywidgets is not installed where the book is built).
_FIGURE_CONFIG = f'InlineBackend.figure_formats = ["{FIGURE_FORMAT}"]'
DISPLAY_SETUP = "\n".join(
    [
        "import warnings",
        "",
        "import pandas",
        "",
        *(f'pandas.set_option("{name}", {value!r})' for name, value in PANDAS_OPTIONS.items()),
        f"get_ipython().run_line_magic(\"config\", {_FIGURE_CONFIG!r})",
        'warnings.filterwarnings("ignore", message="IProgress not found")',
    ]
)
