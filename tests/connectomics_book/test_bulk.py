"""``connectomics_book.bulk``: the whole-connectome path of the chapter "The whole connectome".

Against the served default sample (``OFFLINE_CAVE_DATA``, default ``sample-data``), as a
student whose HOME ``configure`` pointed at the server: the download is checked and cached,
the CSV export converts to the same rows as the sample's Parquet, and DuckDB, Dask (on a
``distributed.LocalCluster``) and per-neuron CAVE queries give exactly the same counts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from connectomics_book import bulk, sources
from offline_cave.generator.pipeline import ensure_sample
from tests.fixtures.paths import REPO_ROOT
from tests.fixtures.server_harness import serving_sample

DATA = Path(os.environ.get("OFFLINE_CAVE_DATA", REPO_ROOT / "sample-data"))
VERSION = 1300
CSV = f"{bulk.SYNAPSE_VIEW}.csv.gz"
HEADER = f"{bulk.SYNAPSE_VIEW}_header.csv"


@pytest.fixture(scope="module")
def ds_dir() -> Path:
    return ensure_sample(DATA, "minnie65_public", deep=False, log=lambda *_: None)


@pytest.fixture(scope="module")
def served(ds_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("home-bulk")
    saved = {k: os.environ.pop(k, None) for k in (sources.ENV_SOURCES_FILE,
                                                  sources.ENV_CACHE_DIR)}
    try:
        with serving_sample(ds_dir, home) as url:
            yield url
    finally:
        os.environ.update({k: v for k, v in saved.items() if v is not None})


@pytest.fixture(scope="module")
def files(served: str) -> tuple[Path, Path]:
    return bulk.download(CSV, VERSION, progress=False), bulk.download(HEADER, VERSION,
                                                                      progress=False)


@pytest.fixture(scope="module")
def parquet(files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bulk.csv_to_parquet(*files, tmp_path_factory.mktemp("pq") / "syn")


@pytest.fixture(scope="module")
def client(served: str):
    from caveclient import CAVEclient

    c = CAVEclient("minnie65_public")
    c.materialize.version = VERSION
    return c


@pytest.fixture(scope="module")
def cells(client) -> pd.DataFrame:
    return bulk.soma_table(client.materialize.query_table(
        "aibs_metamodel_celltypes_v661", desired_resolution=[1, 1, 1]))


@pytest.fixture(scope="module")
def duck(parquet: Path, cells: pd.DataFrame) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(config={"memory_limit": "500MB", "threads": 2})
    con.register("cells", cells)
    syn = f"read_parquet('{bulk.parquet_glob(parquet)}')"
    out = {name: con.sql(sql.format(syn=syn, cells="cells")).df()
           for name, sql in (("degrees", bulk.DEGREES_SQL), ("types", bulk.TYPE_TO_TYPE_SQL),
                             ("layers", bulk.SIZE_BY_LAYER_SQL))}
    con.close()
    return out


def test_download_comes_from_the_configured_server_once(served: str, ds_dir: Path,
                                                        files: tuple[Path, Path]) -> None:
    csv, header = files
    home = Path(os.environ["HOME"])
    assert home / ".cache" / "connectomics_book" / "minnie65_bulk" in csv.parents
    assert csv.read_bytes() == (ds_dir / "bulk" / "v1300" / CSV).read_bytes()
    stamp = csv.stat().st_mtime_ns
    assert bulk.download(CSV, VERSION, progress=False) == csv
    assert csv.stat().st_mtime_ns == stamp  # reused, not fetched again
    csv.write_bytes(csv.read_bytes()[:-10])  # a truncated copy is fetched again
    assert bulk.download(CSV, VERSION, progress=False).read_bytes() == \
        (ds_dir / "bulk" / "v1300" / CSV).read_bytes()
    assert [c for c, _ in bulk.header_columns(header)][-1] == "post_pt_root_id"
    with pytest.raises(OSError, match="404"):
        bulk.download("nope.csv.gz", VERSION, progress=False)
    with pytest.raises(ValueError, match="not a bulk file name"):
        bulk.download("../../secrets.json", VERSION, progress=False)


def test_a_download_that_does_not_match_its_checksum_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    class Fake:
        status_code = 200
        headers = {"Content-Length": "5", "x-goog-hash": "crc32c=AAAAAA==,md5=AAAAAAAAAAAAAAAAAAAAAA=="}

        def iter_content(self, _n):
            yield b"hello"

    monkeypatch.setattr(requests, "get", lambda *a, **k: Fake())
    target = tmp_path / "f.csv.gz"
    with pytest.raises(OSError, match="crc32c/md5 checksum"):
        bulk._fetch("http://x/f.csv.gz", target, progress=False)
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left
    Fake.headers = {"Content-Length": "5",
                    "x-goog-hash": "crc32c=mnG7TA==,md5=XUFAKrxLKna5cZ2REBfFkg=="}
    bulk._fetch("http://x/f.csv.gz", target, progress=False)
    assert target.read_bytes() == b"hello"
    assert bulk.parse_goog_hash("crc32c=mnG7TA==") == {"crc32c": "mnG7TA=="}


def test_the_csv_round_trips_to_the_samples_parquet(parquet: Path, ds_dir: Path) -> None:
    mine = duckdb.sql(f"SELECT * FROM read_parquet("
                      f"'{bulk.parquet_glob(parquet)}', hive_partitioning = false) "
                      f"ORDER BY id").df()
    theirs = duckdb.sql(f"SELECT * FROM read_parquet('{ds_dir}/bulk/v1300/"
                        f"{bulk.SYNAPSE_VIEW}_by_pre/*/*.parquet', hive_partitioning = false)"
                        f" ORDER BY id").df()
    assert len(mine) == len(theirs) > 100_000
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False)
    for part in sorted(parquet.glob(f"{bulk.BUCKET_COLUMN}=*")):
        k = int(part.name.split("=")[1])
        pre = duckdb.sql(f"SELECT pre_pt_root_id FROM read_parquet('{part}/*.parquet')").df()
        assert (pre["pre_pt_root_id"] % bulk.N_PRE_BUCKETS == k).all()
    assert bulk.csv_to_parquet(Path("missing.csv.gz"), Path("missing.csv"), parquet) == parquet


def test_dask_on_a_local_cluster_equals_duckdb(parquet: Path, cells: pd.DataFrame,
                                               duck: dict[str, pd.DataFrame]) -> None:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="1GB",
                      dashboard_address=None, processes=True) as cluster, \
            Client(cluster.scheduler_address) as dask_client:
        assert len(dask_client.scheduler_info()["workers"]) == 2
        syn = bulk.read_dask(parquet)
        assert syn.npartitions == bulk.N_PRE_BUCKETS
        degrees = bulk.dask_degrees(syn)
        types = bulk.dask_type_to_type(syn, cells)
        layers = bulk.dask_size_by_layer(syn, cells)
    pd.testing.assert_frame_equal(degrees, duck["degrees"], check_dtype=False)
    pd.testing.assert_frame_equal(types, duck["types"], check_dtype=False)
    pd.testing.assert_frame_equal(layers, duck["layers"][["layer", "n_syn", "sum_size"]],
                                  check_dtype=False)
    assert len(types) > 20 and set(layers["layer"]) >= {"L2/3", "L4", "L5", "L6"}


def test_duckdb_equals_the_per_neuron_api_queries(client, parquet: Path, cells: pd.DataFrame,
                                                  duck: dict[str, pd.DataFrame]) -> None:
    degrees = duck["degrees"].set_index("root_id")
    # the whole table: as many synapses as the service counts
    assert degrees["n_out"].sum() == degrees["n_in"].sum() == \
        client.materialize.get_annotation_count("synapses_pni_2")
    rng = np.random.default_rng(0)
    roots = rng.choice(cells["root_id"].to_numpy(), 12, replace=False)
    typed = cells.set_index("root_id")["cell_type"]
    by_type: dict[tuple[str, str], int] = {}
    for root in roots:
        outs = client.materialize.synapse_query(pre_ids=int(root))
        ins = client.materialize.synapse_query(post_ids=int(root))
        row = degrees.loc[root] if root in degrees.index else pd.Series(0, degrees.columns)
        assert (len(outs), len(ins)) == (row["n_out"], row["n_in"])
        assert outs["post_pt_root_id"].nunique() == row["n_post_partners"]
        assert ins["pre_pt_root_id"].nunique() == row["n_pre_partners"]
        post = outs["post_pt_root_id"].map(typed).dropna()
        for t, n in post.value_counts().items():
            by_type[(typed[root], t)] = by_type.get((typed[root], t), 0) + int(n)
    assert sum(by_type.values()) > 0
    # the type-to-type query restricted to the sampled presynaptic cells: the same counts
    con = duckdb.connect()
    con.register("picked", cells[cells["root_id"].isin(roots)])
    con.register("cells", cells)
    sql = bulk.TYPE_TO_TYPE_SQL.replace("JOIN {cells} pre", "JOIN picked pre")
    got = con.sql(sql.format(syn=f"read_parquet('{bulk.parquet_glob(parquet)}')",
                             cells="cells")).df()
    con.close()
    assert {(a, b): int(n) for a, b, n in got[["pre_type", "post_type", "n_syn"]]
            .itertuples(index=False)} == by_type
