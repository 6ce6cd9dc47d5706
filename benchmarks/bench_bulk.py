"""Whole-connectome computations on the bulk synapse export: pandas, DuckDB, Dask, the API.

    python benchmarks/bench_bulk.py [--data sample-data] [--scales 1 10] [--api-cells 20]

The three computations of the chapter "The whole connectome" (``connectomics_book.bulk``):
degrees of every root, type-to-type synapse counts, synapse size by layer. Each engine runs
each computation in a fresh process; the parent samples the resident memory of that process
and all its children (Dask's workers) every 50 ms and prints wall time and peak memory, with
ratios to DuckDB:

* pandas: the Parquet's three columns read whole into memory, then ``groupby``;
* DuckDB: SQL over the Parquet files, ``memory_limit=1GB``, 2 threads;
* Dask: ``dask.dataframe`` on a ``distributed.LocalCluster`` of 2 workers x 1 thread,
  ``memory_limit=1GB`` each (cluster start-up included in the time, reported separately).

Scale 1 is the sample's synapse export (``bulk/v1300/..._by_pre``). Scale ``k`` > 1 is
*emulated*: ``k`` copies of those rows with the root ids of copy ``i`` shifted by ``i << 40``
(so the copies are disjoint graphs), written once to a temporary directory; it measures how
the engines scale with rows, not a generated ``--scale k`` sample. The per-neuron API approach
times ``synapse_query(pre_ids=)`` and ``synapse_query(post_ids=)`` for ``--api-cells`` typed
cells against the offline server and extrapolates to every typed cell (and to the real
volume's ~10x as many cells; the public service's latency differs from loopback's).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
COMPUTATIONS = ("degrees", "types", "layers")
ENGINES = ("pandas", "duckdb", "dask")


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_measured(args: list[str]) -> tuple[float, int, dict]:
    """Run ``python -c ...`` args; (wall s, peak tree RSS bytes, the JSON it printed)."""
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}:{REPO}")
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, env=env,
                             text=True)
    proc, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        peak = max(peak, _tree_rss(proc))
        time.sleep(0.05)
    out = child.stdout.read()
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise RuntimeError(f"{args} failed ({child.returncode})")
    return wall, peak, json.loads(out.strip().splitlines()[-1])


WORKER = r'''
import json, sys, time
import pandas as pd
from connectomics_book import bulk
engine, what, parquet, cells_path = sys.argv[1:5]
cells = pd.read_parquet(cells_path)
t0 = time.perf_counter()
setup = 0.0
if engine == "duckdb":
    import duckdb
    con = duckdb.connect(config={"memory_limit": "1GB", "threads": 2})
    con.register("cells", cells)
    syn = f"read_parquet('{bulk.parquet_glob(parquet)}')"
    sql = {"degrees": bulk.DEGREES_SQL, "types": bulk.TYPE_TO_TYPE_SQL,
           "layers": bulk.SIZE_BY_LAYER_SQL}[what]
    n = len(con.sql(sql.format(syn=syn, cells="cells")).df())
elif engine == "dask":
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="1GB",
                           dashboard_address=None)
    client = Client(cluster)
    setup = time.perf_counter() - t0
    syn = dd.read_parquet(parquet, columns=["pre_pt_root_id", "post_pt_root_id", "size"])
    f = {"degrees": lambda: bulk.dask_degrees(syn),
         "types": lambda: bulk.dask_type_to_type(syn, cells),
         "layers": lambda: bulk.dask_size_by_layer(syn, cells)}[what]
    n = len(f())
    client.close(); cluster.close()
else:
    import pyarrow.dataset as ds
    syn = ds.dataset(parquet, partitioning="hive").to_table(
        columns=["pre_pt_root_id", "post_pt_root_id", "size"]).to_pandas()
    if what == "degrees":
        pairs = syn.groupby(["pre_pt_root_id", "post_pt_root_id"]).size()
        n = len(pd.concat([pairs.groupby(level=0).agg(["sum", "count"]),
                           pairs.groupby(level=1).agg(["sum", "count"])], axis=1))
    elif what == "types":
        t = cells.set_index("root_id")["cell_type"]
        s = syn.assign(a=syn["pre_pt_root_id"].map(t), b=syn["post_pt_root_id"].map(t))
        n = len(s.dropna(subset=["a", "b"]).groupby(["a", "b"]).size())
    else:
        lay = cells.set_index("root_id")["layer"]
        s = syn.assign(layer=syn["post_pt_root_id"].map(lay)).dropna(subset=["layer"])
        n = len(s.groupby("layer")["size"].describe())
print(json.dumps({"rows_out": n, "compute_s": time.perf_counter() - t0 - setup,
                  "setup_s": setup}))
'''


def emulate_scale(parquet: Path, k: int, root: Path) -> Path:
    """``k`` disjoint copies of the synapse rows (root ids of copy i shifted by i << 40)."""
    import duckdb

    out = root / f"scale{k}"
    if (out / "_SUCCESS").exists():
        return out
    from connectomics_book import bulk

    con = duckdb.connect(config={"memory_limit": "2GB", "threads": 2,
                                 "temp_directory": str(root / ".tmp")})
    shift = "(c.i::BIGINT << 40)"
    con.execute(
        f"COPY (SELECT * REPLACE (pre_pt_root_id + {shift} AS pre_pt_root_id, "
        f"post_pt_root_id + {shift} AS post_pt_root_id, id + c.i * 10000000000 AS id), "
        f"(pre_pt_root_id + {shift}) % {bulk.N_PRE_BUCKETS} AS {bulk.BUCKET_COLUMN} "
        f"FROM read_parquet('{bulk.parquet_glob(parquet)}', hive_partitioning = false), "
        f"range({k}) c(i)) TO '{out}' (FORMAT parquet, PARTITION_BY ({bulk.BUCKET_COLUMN}))")
    (out / "_SUCCESS").write_text("")
    return out


def cells_and_api(ds_dir: Path, n_cells: int):
    """The typed cells (from the API, as the page gets them) and the per-neuron API timing."""
    from caveclient import CAVEclient

    from connectomics_book import bulk
    from offline_cave.client.runner import offline_server

    with tempfile.TemporaryDirectory() as home, offline_server(
            ds_dir.parent, home=Path(home), datastacks=[ds_dir.name], generate=False,
            set_environ=True):
        client = CAVEclient("minnie65_public")
        client.materialize.version = 1300
        cells = bulk.soma_table(client.materialize.query_table(
            "aibs_metamodel_celltypes_v661", desired_resolution=[1, 1, 1]))
        roots = cells["root_id"].sample(n_cells, random_state=0).tolist()
        client.materialize.synapse_query(pre_ids=roots[0])  # warm the connection
        t0 = time.perf_counter()
        rows = 0
        for r in roots:
            rows += len(client.materialize.synapse_query(pre_ids=r))
            rows += len(client.materialize.synapse_query(post_ids=r))
        per_cell = (time.perf_counter() - t0) / n_cells
    return cells, {"per_cell_s": per_cell, "rows": rows, "cells": len(cells),
                   "all_cells_s": per_cell * len(cells)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(REPO / "sample-data"))
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--api-cells", type=int, default=20)
    ap.add_argument("--engines", nargs="+", default=list(ENGINES))
    args = ap.parse_args(argv)
    sys.path[:0] = [str(REPO / "src"), str(REPO)]
    from connectomics_book import bulk

    ds_dir = Path(args.data) / "minnie65_public"
    parquet = ds_dir / "bulk" / "v1300" / f"{bulk.SYNAPSE_VIEW}_by_pre"
    cells, api = cells_and_api(ds_dir, args.api_cells)
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        cells_path = Path(tmp) / "cells.parquet"
        cells.to_parquet(cells_path)
        print(f"cells: {len(cells)} typed single-soma cells; {mp.cpu_count()} cores")
        print(f"{'scale':>5} {'computation':<8} {'engine':<7} {'wall s':>7} {'setup s':>7} "
              f"{'peak MB':>8} {'t/duckdb':>8} {'mem/duckdb':>10}")
        for k in args.scales:
            source = parquet if k == 1 else emulate_scale(parquet, k, Path(tmp))
            for what in COMPUTATIONS:
                res = {}
                for engine in args.engines:
                    wall, peak, out = run_measured(["-c", WORKER, engine, what, str(source),
                                                    str(cells_path)])
                    res[engine] = (wall, peak, out)
                base = res.get("duckdb")
                for engine, (wall, peak, out) in res.items():
                    rt = f"{wall / base[0]:.2f}" if base else "-"
                    rm = f"{peak / base[1]:.2f}" if base else "-"
                    print(f"{k:>5} {what:<8} {engine:<7} {wall:7.1f} {out['setup_s']:7.1f} "
                          f"{peak / 1e6:8.0f} {rt:>8} {rm:>10}", flush=True)
    print(f"API: {api['per_cell_s'] * 1000:.0f} ms per cell (2 synapse queries, "
          f"{api['rows']} rows for {args.api_cells} cells); all {api['cells']} typed cells "
          f"~{api['all_cells_s'] / 60:.1f} min; the real volume (~10x the cells) "
          f"~{api['all_cells_s'] * 10 / 3600:.1f} h at this latency")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
