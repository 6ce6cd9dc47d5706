"""connectomics_book: the course package of "the MICrONS & V1DD connectomics book".

What the pages import:

* :mod:`connectomics_book.constants` -- the datastacks and versions the book teaches with
* :mod:`connectomics_book.facts` -- published facts the Background chapter plots (with sources)
* :mod:`connectomics_book.selection` -- shared cell selections: single-soma, proofread cells, layers
* :mod:`connectomics_book.cortex` -- cortical depth (standard_transform) and layer lines on plots
* :mod:`connectomics_book.skeletons` -- skeletons and meshes of single cells, distances on them
* :mod:`connectomics_book.sessions` -- find the NWB file of a V1DD two-photon session
* :mod:`connectomics_book.twophoton` -- V1DD two-photon data: trial alignment, tuning, selectivity

What builds the book (never imported by a page):

* :mod:`connectomics_book.build` -- the page list, the provenance record and its banner
"""

from connectomics_book.constants import (
    AS_OF,
    DATASTACK,
    MATERIALIZATION_VERSION,
    V1DD_DATASTACK,
    V1DD_VERSION,
)

__all__ = ["AS_OF", "DATASTACK", "MATERIALIZATION_VERSION", "V1DD_DATASTACK", "V1DD_VERSION"]
