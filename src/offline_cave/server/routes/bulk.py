"""Bulk export files (``/mat_dbs/public/{datastack}/v{N}/{file}``): read-only downloads.

The public release keeps whole-table exports in a Google Cloud Storage bucket
(``https://storage.googleapis.com/mat_dbs/public/minnie65_phase3_v1/v{N}/...``, see
``generator/bulk.py``); this route is the classroom copy the course's sources registry points
at offline. Like the bucket it needs no token, answers ``GET`` and ``HEAD`` with
``Content-Length`` and an ``x-goog-hash: crc32c=...,md5=...`` header, and streams the file
(never read whole into memory). Only files listed in the sample's ``bulk/index.json`` exist:
any other name, including one that tries to climb out of the directory, is a 404 naming what
there is.
"""

from __future__ import annotations

from starlette.responses import FileResponse, Response

from offline_cave.server.http import Req, endpoint

_MEDIA = {".gz": "application/gzip", ".csv": "text/csv", ".parquet": "application/octet-stream"}


@endpoint
def bulk_file(req: Req) -> Response:
    """One listed bulk file, streamed, with its size and hashes in the headers."""
    store = req.registry.get(req.path_params["datastack"])
    path, entry = store.bulk.entry(req.path_params["version"], req.path_params["file"])
    headers = {"x-goog-hash": f"crc32c={entry['crc32c']},md5={entry['md5']}",
               "Cache-Control": "public, max-age=3600"}
    return FileResponse(path, media_type=_MEDIA.get(path.suffix, "application/octet-stream"),
                        headers=headers, content_disposition_type="attachment",
                        filename=path.name)


ROUTES = [("bulk.file", bulk_file, ["GET", "HEAD"])]
"""(endpoint name, handler, methods) of the bulk export files."""
