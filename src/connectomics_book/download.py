"""One streaming download: GET a URL into a file, checked, through a temporary file.

Used by :mod:`connectomics_book.bulk` (public bucket, no token, checked against the size and
the ``x-goog-hash`` header the bucket sends) and :mod:`connectomics_book.sessions` (a session
server, the reader's token, checked against the SHA-256 of its manifest). What differs is the
headers sent and the checksums expected; everything else is here:

* :func:`get` answers the response of a 200, or raises :class:`OSError` naming the URL, the
  status and the server's message (its JSON ``message`` or the first 200 characters);
* :func:`stream_to` writes a response body to ``path`` through a temporary file in the same
  folder, with a progress bar, computes the digests asked for while it streams, and renames
  the file into place only when the size and every expected digest match; otherwise the
  temporary file is removed and an :class:`OSError` says what did not match.

Digests are named as their sources name them: ``md5`` and ``crc32c`` in base64 (Google Cloud
Storage's ``x-goog-hash``), ``sha256`` in hex (the sessions manifest).
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

#: Size of the chunks read from the response and written to the file.
CHUNK_BYTES = 1 << 20


def _md5():
    return hashlib.md5(usedforsecurity=False)


def _crc32c():
    import google_crc32c

    return google_crc32c.Checksum()


#: digest name -> (new hasher, how its digest is written)
_DIGESTS = {
    "md5": (_md5, lambda h: base64.b64encode(h.digest()).decode()),
    "crc32c": (_crc32c, lambda h: base64.b64encode(h.digest()).decode()),
    "sha256": (hashlib.sha256, lambda h: h.hexdigest()),
}


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
              expected: Mapping[str, str] | None = None, progress: bool = True) -> None:
    """Write the body of ``response`` to ``path``; keep it only if it is complete and matches.

    ``size``: the expected number of bytes (None: not checked). ``expected``: digests by name
    (``md5``, ``crc32c``, ``sha256``; see the module docstring for their spelling); each is
    computed while the file streams and compared at the end. ``url`` names the download in
    the messages. Nothing half-written is ever left at ``path`` or beside it.
    """
    from tqdm.auto import tqdm

    expected = dict(expected or {})
    unknown = set(expected) - set(_DIGESTS)
    if unknown:
        raise ValueError(f"unknown digest(s) {sorted(unknown)}; known: {sorted(_DIGESTS)}")
    hashers = {name: _DIGESTS[name][0]() for name in expected}
    n = 0
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh, tqdm(total=size, unit="B", unit_scale=True,
                                             desc=f"downloading {path.name}",
                                             mininterval=5, disable=not progress) as bar:
            for chunk in response.iter_content(CHUNK_BYTES):
                fh.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
                n += len(chunk)
                bar.update(len(chunk))
        if size is not None and n != size:
            raise OSError(f"the download of {url} stopped at {n} of {size} bytes; try again")
        bad = [name for name, want in expected.items()
               if _DIGESTS[name][1](hashers[name]) != want]
        if bad:
            raise OSError(f"the download of {url} does not match its {'/'.join(bad)} "
                          f"checksum; try again")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
