"""connectomics_book: the course package of "the MICrONS & V1DD connectomics book".

* :mod:`connectomics_book.constants` -- the datastacks and versions the book teaches with
* :mod:`connectomics_book.facts` -- published facts the Background chapter plots (with sources)
* :mod:`connectomics_book.cells` -- shared cell selections: single-soma, proofread cells, layers
* :mod:`connectomics_book.provenance` -- record which data the book's outputs came from
* :mod:`connectomics_book.sphinx_banner` -- Sphinx extension: show that record on every page
"""

from connectomics_book.constants import (
    AS_OF,
    DATASTACK,
    MATERIALIZATION_VERSION,
    V1DD_DATASTACK,
    V1DD_VERSION,
)

__all__ = ["AS_OF", "DATASTACK", "MATERIALIZATION_VERSION", "V1DD_DATASTACK", "V1DD_VERSION"]
