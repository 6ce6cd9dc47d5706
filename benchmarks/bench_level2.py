"""Level-2 calls against a generated sample: times, and pcg_skel's path length against the served
skeletons.

usage: python benchmarks/bench_level2.py [DATA_DIR] [--cells 5]

Starts a server on DATA_DIR (default ``sample-data``), takes the ``--cells`` proofread
minnie65 cells with level-2 data and the fewest nodes (by the files), and for each prints the
seconds of ``level2_chunk_graph``, ``get_l2data`` (all its nodes), ``pcg_skel.pcg_skeleton``
and ``get_meshwork_from_client(synapses=True)``, and the path length of pcg_skel's skeleton
relative to skeleton version 4 (level-2 resolution) and to the stored full skeleton.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from offline_cave.client.runner import offline_server
from offline_cave.contract import layout

DATASTACK = "minnie65_public"


def path_length(vertices: np.ndarray, edges: np.ndarray) -> float:
    return float(np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1).sum())


def pick_cells(ds_dir: Path, n: int) -> pd.DataFrame:
    roots = pd.read_parquet(ds_dir / layout.ROOTS_PARQUET)
    current = roots[np.isinf(roots.expired) & (roots.nucleus_id > 0)]
    proof = pd.read_parquet(ds_dir / "v1300/proofreading_status_and_strategy.parquet")
    nodes = pd.read_parquet(ds_dir / layout.LEVEL2_NODES_PARQUET, columns=["nucleus_id"])
    sizes = nodes.groupby("nucleus_id").size().rename("n_nodes")
    cells = current[current.root_id.isin(proof.pt_root_id)].merge(
        sizes, left_on="nucleus_id", right_index=True)
    return cells.sort_values("n_nodes").head(n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default="sample-data")
    ap.add_argument("--cells", type=int, default=5)
    args = ap.parse_args()
    data_dir = Path(args.data_dir)
    ds_dir = data_dir / DATASTACK
    cells = pick_cells(ds_dir, args.cells)
    skel = pd.read_parquet(ds_dir / layout.SKELETONS_PARQUET,
                           filters=[("nucleus_id", "in", cells.nucleus_id.tolist())])
    with offline_server(data_dir, datastacks=[DATASTACK], generate=False, set_environ=True):
        import pcg_skel
        from caveclient import CAVEclient

        client = CAVEclient(DATASTACK)
        client.materialize.version = 1300
        print("root                n_l2  lvl2_graph_s  l2data_s  pcg_skeleton_s  meshwork_s  "
              "len/v4  len/full")
        for row in cells.itertuples():
            root = int(row.root_id)
            t0 = time.perf_counter()
            edges = client.chunkedgraph.level2_chunk_graph(root)
            t1 = time.perf_counter()
            client.l2cache.get_l2data(np.unique(edges).tolist())
            t2 = time.perf_counter()
            sk = pcg_skel.pcg_skeleton(root, client)
            t3 = time.perf_counter()
            pcg_skel.get_meshwork_from_client(root, client, synapses=True)
            t4 = time.perf_counter()
            v4 = client.skeleton.get_skeleton(root, skeleton_version=4)
            full = skel[skel.nucleus_id == row.nucleus_id].sort_values("node")
            xyz = full[["x", "y", "z"]].to_numpy(np.float64)
            child = full[full.parent >= 0]
            full_len = float(np.linalg.norm(xyz[child.node] - xyz[child.parent], axis=1).sum())
            mine = path_length(sk.vertices, sk.edges)
            print(f"{root}  {row.n_nodes:5d}  {t1 - t0:12.2f}  {t2 - t1:8.2f}  {t3 - t2:14.2f}  "
                  f"{t4 - t3:10.2f}  {mine / path_length(v4['vertices'], v4['edges']):6.3f}  "
                  f"{mine / full_len:8.3f}")


if __name__ == "__main__":
    main()
