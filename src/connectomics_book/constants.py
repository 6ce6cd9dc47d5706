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

#: The packages a page needs on Google Colab, pinned to requirements.lock
#: (tests/connectomics_book/test_env.py proves every pin matches the lock).
COLAB_PACKAGES: tuple[str, ...] = (
    "caveclient==8.2.1",
    "cloud-volume==12.15.2",
    "meshparty==2.0.3",
    "trimesh==5.2.0",
    "skeleton-plot==0.1.0",
    "navis==1.12.0",
    "standard-transform==2.0.0",
    "nglui==4.9.0",
    "pynwb==4.2.0",
    "matplotlib==3.11.2",
    "pandas==2.3.3",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "seaborn==0.13.2",
    "pyarrow==26.0.1",
)

#: The install line of the setup cell that tools/make_ipynb.py writes first into every Colab
#: twin (it runs on Colab only; the pages themselves carry no setup cell).
#: The course package itself (no dependencies of its own) comes from the repository.
COLAB_INSTALL = (
    "%pip install -q " + " ".join(COLAB_PACKAGES) + f' "microns-v1dd-course @ git+{REPOSITORY_URL}"'
)

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
