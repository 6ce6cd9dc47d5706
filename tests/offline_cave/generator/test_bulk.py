"""The bulk exports of the sample (``generator/bulk.py``): the public release's file formats,
with exactly the rows of the served tables.

Runs on the default sample (``OFFLINE_CAVE_DATA``, default ``sample-data``), generated on
first use; the determinism check copies two of its tables into a temporary directory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from offline_cave.contract import layout
from offline_cave.contract.params import DATASTACKS
from offline_cave.generator import bulk
from offline_cave.generator.pipeline import ensure_sample
from offline_cave.generator.writer import Writer
from tests.fixtures.paths import REPO_ROOT

DATA = Path(os.environ.get("OFFLINE_CAVE_DATA", REPO_ROOT / "sample-data"))
PINNED = 1300
SYN_COLUMNS = [c for c, _ in bulk.SYNAPSE_VIEW_COLUMNS]


@pytest.fixture(scope="module")
def ds() -> Path:
    return ensure_sample(DATA, "minnie65_public", deep=False, log=lambda *_: None)


@pytest.fixture(scope="module")
def vdir(ds: Path) -> Path:
    return ds / layout.BULK_DIR / f"v{PINNED}"


def read_export(vdir: Path, stem: str, header_suffix: str = "_header.csv") -> pd.DataFrame:
    """Read an export the way the MICrONS tutorial does: header=None, names from the header."""
    header = pd.read_csv(vdir / f"{stem}{header_suffix}", header=None, names=["column", "type"])
    df = pd.read_csv(vdir / f"{stem}.csv.gz", compression="gzip", header=None)
    df.columns = header["column"].tolist()
    return df


@pytest.fixture(scope="module")
def table(ds: Path) -> pd.DataFrame:
    cols = SYN_COLUMNS + ["valid"]
    return (pq.read_table(ds / f"v{PINNED}" / "synapses_pni_2.parquet", columns=cols)
            .to_pandas().sort_values("id", ignore_index=True))


def test_the_synapse_export_is_every_row_of_the_table(vdir: Path, table: pd.DataFrame) -> None:
    header = pd.read_csv(vdir / "synapses_pni_2_v1_filtered_view_header.csv", header=None)
    assert header[0].tolist() == SYN_COLUMNS  # the real dump's column order
    assert header.shape[1] == 2 and set(header[1]) == {"bigint", "integer"}
    csv = read_export(vdir, bulk.SYNAPSE_VIEW)
    assert csv["pre_pt_root_id"].is_monotonic_increasing  # rows by presynaptic root
    csv = csv.sort_values("id", ignore_index=True)
    assert len(csv) == len(table) > 100_000
    pd.testing.assert_frame_equal(csv, table[SYN_COLUMNS], check_dtype=False)
    # the file itself: header-less, gzip, voxel positions as integers
    with pd.io.common.get_handle(vdir / f"{bulk.SYNAPSE_VIEW}.csv.gz", "r",
                                 compression="gzip") as h:
        first = h.handle.readline().strip().split(",")
    assert len(first) == len(SYN_COLUMNS) and all(v.lstrip("-").isdigit() for v in first)


def test_connections_with_nuclei_sum_the_synapses(ds: Path, vdir: Path,
                                                  table: pd.DataFrame) -> None:
    con = read_export(vdir, bulk.CONNECTIONS)
    assert con.columns.tolist() == ["pre_pt_root_id", "post_pt_root_id", "n_syn", "sum_size",
                                    "pre_nuc_id", "post_nuc_id"]
    truth = table.groupby(["pre_pt_root_id", "post_pt_root_id"])["size"].agg(["count", "sum"])
    got = con.set_index(["pre_pt_root_id", "post_pt_root_id"]).sort_index()
    assert got.index.equals(truth.index)
    assert (got["n_syn"].to_numpy() == truth["count"].to_numpy()).all()
    assert (got["sum_size"].to_numpy() == truth["sum"].to_numpy()).all()
    # a nucleus id only when the root has exactly one nucleus
    nuc = pq.read_table(ds / f"v{PINNED}" / "nucleus_detection_v0.parquet").to_pandas()
    nuc = nuc[nuc["pt_root_id"] != 0]
    counts = nuc["pt_root_id"].value_counts()
    single = nuc[nuc["pt_root_id"].isin(counts.index[counts == 1])]
    expect = con["post_pt_root_id"].map(single.set_index("pt_root_id")["id"])
    assert np.array_equal(con["post_nuc_id"].isna(), expect.isna())
    assert (con["post_nuc_id"].dropna() == expect.dropna()).all()
    assert expect.notna().sum() > 1000 and (counts > 1).any()
    multi = counts.index[counts > 1]
    assert con.loc[con["pre_pt_root_id"].isin(multi), "pre_nuc_id"].isna().all()


def test_the_nucleus_export_is_the_nucleus_table(ds: Path, vdir: Path) -> None:
    csv = read_export(vdir, "nucleus_detection_v0_merged")
    nuc = pq.read_table(ds / f"v{PINNED}" / "nucleus_detection_v0.parquet").to_pandas()
    assert csv.columns.tolist() == nuc.columns.tolist()
    nuc = nuc.sort_values("id", ignore_index=True)
    assert (csv["id"].to_numpy() == nuc["id"].to_numpy()).all()
    assert (csv["pt_root_id"].to_numpy() == nuc["pt_root_id"].to_numpy()).all()
    assert set(csv["valid"]) <= {"t", "f"}  # PostgreSQL's CSV booleans
    assert np.allclose(csv["volume"], nuc["volume"])


def test_the_parquet_partitions_hold_the_csv_rows_by_pre_root(vdir: Path,
                                                              table: pd.DataFrame) -> None:
    parts = sorted((vdir / bulk.PARQUET_DIR).iterdir())
    assert [p.name for p in parts] == sorted(f"{bulk.BUCKET_COLUMN}={k}"
                                             for k in range(bulk.N_PRE_BUCKETS))
    frames = []
    for part in parts:
        k = int(part.name.split("=")[1])
        df = pq.read_table(part / "part-0.parquet").to_pandas()
        assert (df["pre_pt_root_id"] % bulk.N_PRE_BUCKETS == k).all()
        assert df["pre_pt_root_id"].is_monotonic_increasing
        frames.append(df)
    both = pd.concat(frames).sort_values("id", ignore_index=True)
    pd.testing.assert_frame_equal(both, table[SYN_COLUMNS])


def test_the_index_gives_each_files_size_and_hashes(ds: Path) -> None:
    index = json.loads((ds / layout.BULK_INDEX).read_text())
    manifest = json.loads((ds / layout.MANIFEST).read_text())["files"]
    assert index["version"] == PINNED and len(index["files"]) == 6 + bulk.N_PRE_BUCKETS
    for rel, entry in index["files"].items():
        path = ds / layout.BULK_DIR / rel
        assert f"{layout.BULK_DIR}/{rel}" in manifest  # verified before serving
        assert entry["bytes"] == path.stat().st_size
        if rel.endswith("_header.csv"):
            assert entry["md5"] == base64.b64encode(
                hashlib.md5(path.read_bytes()).digest()).decode()


def test_bulk_exports_are_deterministic(ds: Path, tmp_path: Path) -> None:
    params = DATASTACKS["minnie65_public"]
    digests = []
    for run in ("a", "b"):
        target = tmp_path / run
        (target / f"v{PINNED}").mkdir(parents=True)
        for name in ("synapses_pni_2", "synapses_pni_2.by_pre", "nucleus_detection_v0"):
            shutil.copy(ds / f"v{PINNED}" / f"{name}.parquet", target / f"v{PINNED}")
        out = Writer(target)
        bulk.write_bulk(out, params, log=lambda *_: None)
        digests.append({k: v["sha256"] for k, v in out.entries.items()})
    assert digests[0] == digests[1] and len(digests[0]) == 7 + bulk.N_PRE_BUCKETS


def test_only_the_minnie_datastack_gets_exports() -> None:
    assert bulk.applies(DATASTACKS["minnie65_public"])
    assert not bulk.applies(DATASTACKS["v1dd_public"])
    assert bulk.export_version(DATASTACKS["minnie65_public"]) == PINNED


def test_duckdb_reads_the_export_with_its_header(vdir: Path, table: pd.DataFrame) -> None:
    """What the book's page does: name the header-less CSV's columns from the header file."""
    from connectomics_book.bulk import read_csv_sql

    sql = read_csv_sql(vdir / f"{bulk.SYNAPSE_VIEW}.csv.gz",
                       vdir / f"{bulk.SYNAPSE_VIEW}_header.csv")
    n, total = duckdb.sql(f"SELECT count(*), sum(size) FROM {sql}").fetchall()[0]
    assert (n, total) == (len(table), int(table["size"].sum()))
