"""Latency of common course queries through caveclient against the offline server.

For each operation the same selection is also done in-process with pyarrow straight on the
parquet files, and the ratio server/pyarrow is printed: it is the price of the HTTP + client
round trip (plus joins and root handling the client/server do).

    python benchmarks/bench_server.py --data sample-data [--reps 20]

Operations: one neuron's input synapses, its output synapses, a full cell-type table (with the
reference join to the nuclei), a spatial box query on synapses (a 40 um cube around the soma),
the neuron's skeleton, and its mesh (cold = generated from the skeleton, warm = cached).
The neuron is picked by query: the skeletonized cell with the most input synapses.

First it times ``python -m offline_cave serve`` itself: from launch to the printed URL, and to
the first answered query of the cell-type table (last listed version) (``--startups`` runs).
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def timed(fn: Callable[[], object], reps: int) -> tuple[list[float], object]:
    out = None
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return times, out


def p(times: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(times) * 1000.0, q))


def startup_times(data: Path, datastack: str, runs: int) -> None:
    """Seconds from launching ``serve`` to its URL line and to a first answered table query."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = "Bearer 0123456789abcdef0123456789abcdef"  # any token
    to_line, to_query = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "offline_cave", "serve", "--data",
                                 str(data), "--port", "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        try:
            url = proc.stdout.readline().rsplit(" ", 1)[-1].strip()
            to_line.append(time.perf_counter() - t0)
            base = f"{url}/materialize/api/v3/datastack/{datastack}"
            version = session.get(f"{base}/versions", timeout=60).json()[-1]
            r = session.post(f"{base}/version/{version}/table/aibs_metamodel_celltypes_v661/"
                              "query", params={"return_pyarrow": "true"}, json={}, timeout=60)
            to_query.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise SystemExit(f"first query failed: {r.status_code} {r.text[:200]}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    print(f"serve start-up over {runs} runs: URL printed after median {np.median(to_line):.2f} s "
          f"(max {max(to_line):.2f} s); first cell-type query answered after median "
          f"{np.median(to_query):.2f} s (max {max(to_query):.2f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="sample data directory")
    parser.add_argument("--datastack", default="minnie65_public")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--startups", type=int, default=5, help="start-up runs (0: skip)")
    args = parser.parse_args(argv)
    if args.startups:
        startup_times(args.data, args.datastack, args.startups)

    from offline_cave.client.runner import offline_server
    from offline_cave.contract import layout

    ds_dir = args.data / args.datastack
    logging.getLogger("caveclient").setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    with offline_server(args.data, datastacks=[args.datastack], generate=False,
                        set_environ=True) as (url, _home):
        from caveclient import CAVEclient
        from cloudvolume import CloudVolume

        from offline_cave.server.data.artefacts import mesh_cache_path
        from offline_cave.server.data.mesh import decode_legacy, skeleton_mesh

        client = CAVEclient(args.datastack)
        version = client.materialize.version
        vdir = ds_dir / f"v{version}"
        syn_path = vdir / "synapses_pni_2.parquet"
        nuc_path = vdir / "nucleus_detection_v0.parquet"
        ct_path = vdir / "aibs_metamodel_celltypes_v661.parquet"
        sk_path = ds_dir / layout.SKELETONS_PARQUET

        # pick the neuron by query
        roots = pq.read_table(ds_dir / layout.ROOTS_PARQUET,
                              columns=["root_id", "nucleus_id"]).to_pandas()
        skeletonized = set(pq.read_table(ds_dir / layout.SKELETON_CELLS_PARQUET,
                                         columns=["nucleus_id"]).column(0).to_pylist())
        cell_roots = set(roots[roots.nucleus_id.isin(skeletonized)].root_id)
        posts = pq.read_table(syn_path, columns=["post_pt_root_id"]).column(0).to_pandas()
        counts = posts[posts.isin(cell_roots)].value_counts()
        root = int(counts.index[0])
        nucleus = int(roots.set_index("root_id").loc[root, "nucleus_id"])
        nuc = pq.read_table(nuc_path).to_pandas()
        soma = nuc[nuc.id == nucleus][["pt_position_x", "pt_position_y", "pt_position_z"]]
        soma = soma.values[0] if len(soma) else np.array([0, 0, 0])
        half = np.array([20_000 / 4, 20_000 / 4, 20_000 / 40])  # 40 um cube, 4x4x40 nm voxels
        lo, hi = (soma - half).astype(int), (soma + half).astype(int)
        print(f"server {url}; version {version}; neuron {root} (nucleus {nucleus}, "
              f"{int(counts.iloc[0])} input synapses)", flush=True)

        def arrow_inputs():
            return pq.read_table(syn_path, filters=[("post_pt_root_id", "=", root)])

        def arrow_outputs():
            return pq.read_table(syn_path, filters=[("pre_pt_root_id", "=", root)])

        def arrow_celltypes():
            ct = pq.read_table(ct_path)
            nt = pq.read_table(nuc_path)
            return ct.join(nt, keys="target_id", right_keys="id", right_suffix="_ref")

        def arrow_box():
            t = pq.read_table(syn_path, filters=[
                ("ctr_pt_position_x", ">=", int(lo[0])), ("ctr_pt_position_x", "<", int(hi[0])),
                ("ctr_pt_position_y", ">=", int(lo[1])), ("ctr_pt_position_y", "<", int(hi[1])),
                ("ctr_pt_position_z", ">=", int(lo[2])), ("ctr_pt_position_z", "<", int(hi[2]))])
            return t

        def arrow_skeleton():
            return pq.read_table(sk_path, filters=[("nucleus_id", "=", nucleus)])

        def arrow_mesh_cold():
            sk = arrow_skeleton().to_pandas().sort_values("node")
            return skeleton_mesh(sk[["x", "y", "z"]].values, sk.parent.values, sk.radius.values)

        cache_file = mesh_cache_path(ds_dir, nucleus)
        cv = CloudVolume(client.info.segmentation_source(), use_https=True, progress=False)

        rows = []

        def bench(name: str, server: Callable, local: Callable, reps: int = args.reps,
                  size: Callable[[object], int] = len) -> None:
            server()  # warm-up (connections, metadata caches)
            ts, out = timed(server, reps)
            tl, lout = timed(local, reps)
            rows.append((name, size(out), p(ts, 50), p(ts, 95), p(tl, 50), p(tl, 95)))
            print(f"  {name:<22} done", file=sys.stderr, flush=True)

        bench("input synapses", lambda: client.materialize.synapse_query(post_ids=root),
              arrow_inputs)
        bench("output synapses", lambda: client.materialize.synapse_query(pre_ids=root),
              arrow_outputs)
        bench("cell-type table", lambda: client.materialize.query_table(
            "aibs_metamodel_celltypes_v661"), arrow_celltypes, reps=max(3, args.reps // 4))
        bench("spatial box (40 um)", lambda: client.materialize.query_table(
            "synapses_pni_2", filter_spatial_dict={"ctr_pt_position": [lo.tolist(), hi.tolist()]}),
            arrow_box)
        bench("skeleton (dict)", lambda: client.skeleton.get_skeleton(root),
              arrow_skeleton, size=lambda o: len(o["vertices"]) if isinstance(o, dict) else len(o))

        if cache_file.exists():
            cache_file.unlink()
        t = time.perf_counter()
        mesh = cv.mesh.get(root)[root]
        cold = time.perf_counter() - t
        tl, _ = timed(arrow_mesh_cold, 1)
        if not cache_file.exists():
            raise SystemExit(f"the server did not cache the mesh where expected: {cache_file}")
        rows.append(("mesh (cold, generated)", len(mesh.vertices), cold * 1000, cold * 1000,
                     p(tl, 50), p(tl, 50)))
        bench("mesh (warm, cached)", lambda: cv.mesh.get(root)[root],
              lambda: decode_legacy(cache_file.read_bytes()),
              size=lambda o: len(o.vertices) if hasattr(o, "vertices") else len(o[0]))

    print()
    print(f"{'operation':<24}{'rows':>9}{'server p50':>12}{'p95':>9}{'pyarrow p50':>13}"
          f"{'p95':>9}{'ratio':>8}")
    for name, n, s50, s95, l50, l95 in rows:
        ratio = s50 / l50 if l50 > 0 else float("nan")
        print(f"{name:<24}{n:>9}{s50:>10.1f}ms{s95:>7.1f}ms{l50:>11.1f}ms{l95:>7.1f}ms"
              f"{ratio:>7.1f}x")
    return 0


if __name__ == "__main__":
    pa.set_cpu_count(2)
    sys.exit(main())
