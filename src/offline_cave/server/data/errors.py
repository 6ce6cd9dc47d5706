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
