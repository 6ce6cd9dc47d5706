# Display options of the book's pages: every kernel of the book build runs this file (the
# Makefile sets IPYTHONDIR=.ci/ipython). The code is connectomics_book.constants.DISPLAY_SETUP,
# which the Colab twins run in their first cell, so the book and Colab show the same tables
# and figures. It runs in a namespace of its own: the pages see none of its names.


def _book_display_setup():
    from IPython import get_ipython

    from connectomics_book.constants import DISPLAY_SETUP

    exec(DISPLAY_SETUP, {"get_ipython": get_ipython})


_book_display_setup()
del _book_display_setup
