"""Tests of ``connectomics_book.download``, the one streaming download of bulk files and
sessions: errors in words, size and digest checks, nothing half-written left behind."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from connectomics_book import download

BODY = b"hello world" * 1000


class Fake:
    """A streamed ``requests`` response."""

    def __init__(self, body: bytes = BODY, status: int = 200, text: str = "",
                 cut: int | None = None):
        self.status_code, self.text, self.body, self.cut = status, text, body, cut

    def json(self):
        import json

        return json.loads(self.text)

    def iter_content(self, n):
        body = self.body[: self.cut] if self.cut is not None else self.body
        for i in range(0, len(body), n):
            yield body[i:i + n]


def test_a_matching_download_lands_and_a_wrong_digest_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "f.nwb"
    good = hashlib.sha256(BODY).hexdigest()
    with pytest.raises(OSError, match="sha256 checksum"):
        download.stream_to(Fake(), target, url="http://x/f", size=len(BODY),
                           digests=[download.sha256_hex("0" * 64)], progress=False)
    assert list(tmp_path.iterdir()) == []
    download.stream_to(Fake(), target, url="http://x/f", size=len(BODY),
                       digests=[download.sha256_hex(good)], progress=False)
    assert target.read_bytes() == BODY and list(tmp_path.iterdir()) == [target]


def test_a_short_download_is_refused_even_without_digests(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="stopped at 100 of 11000 bytes"):
        download.stream_to(Fake(cut=100), tmp_path / "f", url="http://x/f", size=len(BODY),
                           progress=False)
    assert list(tmp_path.iterdir()) == []


def test_every_checksum_given_is_checked(tmp_path: Path) -> None:
    good = download.md5_base64(base64.b64encode(hashlib.md5(BODY).digest()).decode())
    with pytest.raises(OSError, match="does not match its sha256 checksum"):
        download.stream_to(Fake(), tmp_path / "f", url="http://x/f",
                           digests=[good, download.sha256_hex("0" * 64)], progress=False)
    download.stream_to(Fake(), tmp_path / "f", url="http://x/f", digests=[good],
                       progress=False)
    assert (tmp_path / "f").read_bytes() == BODY


def test_get_names_the_status_and_the_servers_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    sent = {}

    def fake_get(url, headers, stream, timeout):
        sent.update(url=url, headers=headers)
        return Fake(status=403, text='{"message": "token not valid"}')

    monkeypatch.setattr(requests, "get", fake_get)
    with pytest.raises(OSError, match="http://x/f answered 403: token not valid"):
        download.get("http://x/f", headers={"Authorization": "Bearer t"})
    assert sent["headers"] == {"Authorization": "Bearer t"}
    monkeypatch.setattr(requests, "get", lambda *a, **k: Fake(status=502, text="<html>bad"))
    with pytest.raises(OSError, match="answered 502: <html>bad"):
        download.get("http://x/f")
