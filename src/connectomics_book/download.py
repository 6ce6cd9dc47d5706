"""One streaming download: GET a URL into a file, checked, through a temporary file.

Used by :mod:`connectomics_book.bulk` (public bucket, no token, checked against the size and
the ``x-goog-hash`` header the bucket sends) and :mod:`connectomics_book.sessions` (a session
server, the reader's token, checked against the SHA-256 of its manifest). What differs is the
headers sent and the checksums expected; everything else is here:

* :func:`get` answers the response of a 200, or raises :class:`OSError` naming the URL, the
  status and the server's message (its JSON ``message`` or the first 200 characters);
* :func:`stream_to` writes a response body to ``path`` through a temporary file in the same
  folder, with a progress bar, computes the checksums it is given (:class:`Digest`, the
  parameter that differs between callers) while it streams, and renames the file into place
  only when the size and every checksum match; otherwise the temporary file is removed and
  an :class:`OSError` says what did not match.

This module needs only the standard library, ``requests`` and ``tqdm``: a caller that checks
a CRC32C (bulk) brings its own hasher, so pages that only read sessions do not install it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Size of the chunks read from the response and written to the file.
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Digest:
    """One checksum to verify: a new hasher (anything with ``update(bytes)``), how its digest
    is written, and the value expected."""

    name: str
    new: Callable[[], Any]
    encode: Callable[[Any], str]
    expected: str


def sha256_hex(expected: str) -> Digest:
    """SHA-256 written in hex (the sessions manifest)."""
    return Digest("sha256", hashlib.sha256, lambda h: h.hexdigest(), expected)


def md5_base64(expected: str) -> Digest:
    """MD5 written in base64 (Google Cloud Storage's ``x-goog-hash: md5=``)."""
    return Digest("md5", lambda: hashlib.md5(usedforsecurity=False),
                  lambda h: base64.b64encode(h.digest()).decode(), expected)


def get(url: str, *, headers: Mapping[str, str] | None = None, stream: bool = False,
        timeout: float = 60):
    """``requests.get(url)``; the response of a 200, else an :class:`OSError` in words."""
    import requests

    response = requests.get(url, headers=dict(headers or {}), stream=stream, timeout=timeout)
    if response.status_code != 200:
        try:
            message = response.json().get("message", "")
        except ValueError:
            message = response.text[:200]
        raise OSError(f"{url} answered {response.status_code}: {message}")
    return response


def stream_to(response, path: Path, *, url: str, size: int | None = None,
              digests: Sequence[Digest] = (), progress: bool = True) -> None:
    """Write the body of ``response`` to ``path``; keep it only if it is complete and matches.

    ``size``: the expected number of bytes (None: not checked). ``digests``: the checksums to
    verify (:class:`Digest`; e.g. :func:`sha256_hex`), each computed while the file streams
    and compared at the end. ``url`` names the download in the messages. Nothing
    half-written is ever left at ``path`` or beside it.
    """
    from tqdm.auto import tqdm

    hashers = [d.new() for d in digests]
    n = 0
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh, tqdm(total=size, unit="B", unit_scale=True,
                                             desc=f"downloading {path.name}",
                                             mininterval=5, disable=not progress) as bar:
            for chunk in response.iter_content(CHUNK_BYTES):
                fh.write(chunk)
                for h in hashers:
                    h.update(chunk)
                n += len(chunk)
                bar.update(len(chunk))
        if size is not None and n != size:
            raise OSError(f"the download of {url} stopped at {n} of {size} bytes; try again")
        bad = [d.name for d, h in zip(digests, hashers, strict=True)
               if d.encode(h) != d.expected]
        if bad:
            raise OSError(f"the download of {url} does not match its {'/'.join(bad)} "
                          f"checksum; try again")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
