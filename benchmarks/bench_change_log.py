"""Change logs and lineage walks of the chunkedgraph, in one process, over a generated sample.

    python benchmarks/bench_change_log.py [DATA_DIR] [--datastack minnie65_public]

Times ``SegmentStore`` directly (no HTTP): ``lineage_graph`` and ``past_ids`` of the first
1,000 and 10,000 roots, and the filtered tabular change logs of every root an edit created
(the case that walks histories and looks up the roots of the placed supervoxels). Prints
seconds per call and rows; the first change-log call includes reading the piece index.
Not part of the tests.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyarrow.parquet as pq

from offline_cave.contract import layout
from offline_cave.server.data.chunkedgraph import SegmentStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default="sample-data")
    parser.add_argument("--datastack", default="minnie65_public")
    args = parser.parse_args()
    ds = Path(args.data_dir) / args.datastack
    seg = SegmentStore(ds, db=None, info={})  # type: ignore[arg-type]  (no SQL used here)
    roots = pq.read_table(ds / layout.ROOTS_PARQUET, columns=["root_id"]).column(0).to_numpy()
    lineage = pq.read_table(ds / layout.LINEAGE_PARQUET).to_pandas()
    t = time.perf_counter()
    seg._load()
    print(f"load roots and lineage: {time.perf_counter() - t:.2f} s")
    for n in (1000, 10000):
        ids = roots[:n].tolist()
        t = time.perf_counter()
        seg.lineage_graph(ids, None, None)
        t_lineage = time.perf_counter() - t
        t = time.perf_counter()
        seg.past_ids(ids, None)
        print(f"{n} roots: lineage_graph {t_lineage:.2f} s, past_ids "
              f"{time.perf_counter() - t:.2f} s")
    edited = sorted(set(lineage.child_root_id))
    t = time.perf_counter()
    logs = seg.tabular_change_logs(edited, filtered=True)
    rows = sum(len(v["operation_id"]) for v in logs.values())
    print(f"{len(edited)} edited roots: tabular change logs {time.perf_counter() - t:.2f} s, "
          f"{rows} rows")
    t = time.perf_counter()
    seg.tabular_change_logs(edited[:100], filtered=False)
    print(f"100 edited roots again (indexes loaded): {time.perf_counter() - t:.3f} s")


if __name__ == "__main__":
    main()
