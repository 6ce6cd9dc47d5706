"""The bulk export files over HTTP (``/mat_dbs/public/...``, ``routes/bulk.py``): read only,
streamed with their size and hashes, nothing outside the listed files.

Runs on the generated default sample (``OFFLINE_CAVE_DATA``, default ``sample-data``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from offline_cave.client.runner import offline_server
from offline_cave.contract import layout
from offline_cave.generator.pipeline import ensure_sample
from tests.fixtures.paths import REPO_ROOT

DATA = Path(os.environ.get("OFFLINE_CAVE_DATA", REPO_ROOT / "sample-data"))
HEADER = "synapses_pni_2_v1_filtered_view_header.csv"


@pytest.fixture(scope="module")
def ds_dir() -> Path:
    return ensure_sample(DATA, "minnie65_public", deep=False, log=lambda *_: None)


@pytest.fixture(scope="module")
def base(ds_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("home-bulk")
    with offline_server(ds_dir.parent, home=home, datastacks=["minnie65_public"],
                        generate=False) as (url, _):
        yield f"{url}/mat_dbs/public/minnie65_public"


def test_a_listed_file_is_served_without_a_token_with_size_and_hashes(
        base: str, ds_dir: Path) -> None:
    index = json.loads((ds_dir / layout.BULK_INDEX).read_text())["files"]
    for rel in (f"v1300/{HEADER}", "v1300/connections_with_nuclei.csv.gz",
                "v1300/synapses_pni_2_v1_filtered_view_by_pre/pre_root_bucket=3/part-0.parquet"):
        r = requests.get(f"{base}/{rel}", timeout=60)  # a public bucket: no token
        assert r.status_code == 200, r.text
        body = r.content
        assert body == (ds_dir / layout.BULK_DIR / rel).read_bytes()
        assert int(r.headers["Content-Length"]) == len(body) == index[rel]["bytes"]
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        assert r.headers["x-goog-hash"] == f"crc32c={index[rel]['crc32c']},md5={md5}"
    head = requests.head(f"{base}/v1300/{HEADER}", timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == index[f"v1300/{HEADER}"]["bytes"]


def test_a_large_file_streams_in_chunks(base: str, ds_dir: Path) -> None:
    rel = "v1300/synapses_pni_2_v1_filtered_view.csv.gz"
    size = (ds_dir / layout.BULK_DIR / rel).stat().st_size
    with requests.get(f"{base}/{rel}", stream=True, timeout=60) as r:
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == size
        n = sum(len(c) for c in r.iter_content(1 << 20))
    assert n == size > 10_000_000


@pytest.mark.parametrize("rel", [
    "v1300/nope.csv.gz", "v1822/connections_with_nuclei.csv.gz", "v1300/..%2F..%2FMANIFEST.json",
    "v1300/../../MANIFEST.json", "..%2Findex.json", "v1300/%2e%2e/%2e%2e/datastack.json",
    "v1300/" + "x" * 300, "v1300/synapses_pni_2_v1_filtered_view_by_pre",
])
def test_unknown_files_are_a_404_that_says_what_there_is(base: str, rel: str) -> None:
    r = requests.get(f"{base}/{rel}", timeout=30)
    assert r.status_code == 404, r.text
    message = r.json()["message"]
    # ("/../" is resolved by the client: that request never reaches the bulk route)
    assert "no bulk file" in message or "no such endpoint" in message
    if rel.startswith("v1300/nope"):
        assert "synapses_pni_2_v1_filtered_view.csv.gz" in message
    if rel.startswith("v1822"):
        assert "exported versions: v1300" in message


def test_an_unknown_datastack_is_a_404(base: str) -> None:
    r = requests.get(base.replace("minnie65_public", "nope_public") + f"/v1300/{HEADER}",
                     timeout=30)
    assert r.status_code == 404 and "nope_public" in r.json()["message"]


def test_writes_are_refused(base: str) -> None:
    r = requests.put(f"{base}/v1300/{HEADER}", data=b"x", timeout=30)
    assert r.status_code == 405
