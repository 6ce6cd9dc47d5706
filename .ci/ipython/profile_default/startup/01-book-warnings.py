# Repeated warnings of the book build: caveclient logs the `Warning` header of every response
# (the materialization service sends a table's notice text with each query of it), so a page
# that queries one table 17 times printed the same notice 17 times. In the book each distinct
# warning is shown once per page (kernel); the first one still appears where it happens.
# Students' own kernels (Colab, a laptop) keep caveclient's behaviour untouched.


def _book_warnings_once():
    import logging

    class _OncePerKernel(logging.Filter):
        """Pass the first record of each distinct (level, message), drop the repeats."""

        def __init__(self):
            super().__init__()
            self.seen = set()

        def filter(self, record):
            key = (record.levelno, record.getMessage())
            if key in self.seen:
                return False
            self.seen.add(key)
            return True

    logging.getLogger("caveclient.base").addFilter(_OncePerKernel())


_book_warnings_once()
del _book_warnings_once
