"""Build-time code of the book: nothing here is imported by a page.

* :mod:`connectomics_book.build.pages` -- which files ``_toc.yml`` lists, and which are notebooks
* :mod:`connectomics_book.build.provenance` -- record which data the book's outputs came from
* :mod:`connectomics_book.build.banner` -- Sphinx extension: show that record on every page
"""
