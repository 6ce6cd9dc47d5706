"""Domain errors of the data layer: what is missing or malformed, in words for the user.

The data layer (this package) raises these and knows nothing of HTTP; the one place that turns
them into status codes is :data:`offline_cave.server.http.DATA_ERROR_STATUS`. Every error
carries the message the client will see, unchanged.
"""

from __future__ import annotations


class DataError(Exception):
    """Base of every domain error; ``message`` is shown to the client as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingDatastack(DataError):
    """A datastack, chunkedgraph table or aligned volume that is not served."""


class MissingVersion(DataError):
    """A materialization version that the datastack does not list."""


class MissingTable(DataError):
    """A table that does not exist at the requested version."""


class MissingView(DataError):
    """A view that does not exist at the requested version."""


class MissingSchema(DataError):
    """An annotation schema name the schema service does not know."""


class MissingRoot(DataError):
    """A root id that the chunkedgraph does not hold."""


class MissingArtefact(DataError):
    """A file-backed artefact (data file, skeleton, mesh) the sample does not have."""


class InvalidQuery(DataError, ValueError):
    """A malformed or impossible request to the data layer (a bad filter, version, ...)."""


class TooMany(InvalidQuery):
    """A request over one of the server's size limits (ids, rows); the message names it."""


class QueryTimeout(DataError):
    """A query stopped at the server's query time limit."""


class OutOfResources(DataError):
    """A query the server could not run within its memory limit."""


class StateTooLarge(DataError):
    """A Neuroglancer state over the state service's size limit."""


class StateStoreFull(DataError):
    """The state service holds as many states (or bytes) as it keeps."""


def shown(value: object, limit: int = 200) -> str:
    """``value`` as text safe to echo in a message: at most ``limit`` characters (then
    ``...``), non-printable characters and lone surrogates written as escapes."""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) > limit
    if cut:
        text = text[:limit]
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text + "..." if cut else text
