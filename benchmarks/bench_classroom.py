"""A classroom against one offline server: N students at once running a query mix like the book's.

    python benchmarks/bench_classroom.py [DATA_DIR] [--students 1,16,32] [--rounds 5]
        [--together] [--profile]

DATA_DIR (default ``sample-data``) is served through
:func:`offline_cave.client.runner.offline_server` in this process; every student is a separate
process (so the clients do not share the server's interpreter lock) with its own CAVEclient.
Each round a student runs, on a neuron of its own:

* ``syn_in``   ``materialize.query_table(synapses, filter_equal_dict={post_pt_root_id: root})``
* ``syn_out``  the same on ``pre_pt_root_id``
* ``celltypes`` ``query_table(cell-type table, filter_in_dict={cell_type: [four types]})``
* ``nuclei``   ``query_table(nucleus table, filter_in_dict={id: 200 nucleus ids})``
* ``roots``    ``chunkedgraph.get_roots`` of 500 nucleus supervoxels
* ``leaves``   ``chunkedgraph.get_leaves`` of the root
* ``skeleton`` ``skeleton.get_skeleton(root)`` (the skeleton service, flatdict)
* ``mesh``     the mesh fragment ``/seg/<datastack>/mesh/<root>:0:1`` with ``requests``

(the client's imports, cloud-volume's included, are done before the first timed query, as a
page does them in its imports cell) and prints p50/p95 per kind, the error count, the wall time
and the server's RSS (this process: the server and little else). Not part of the tests.

Measured 2026-12-03 on the development machine (2 cores shared with other jobs, load average
6-29 during the runs, which moves every figure by a factor of up to 2), default sample, 32
students x 5 rounds, students on the same 2 cores as the server; p50 / p95 ms, the range over
two runs of the old code and three of the new:

    kind       before                    after                     what changed
    syn_in      487-700 / 1144-3396       302-630 /  536-1802
    nuclei      374-632 /  736-1502       262-426 /  430-933
    roots       243-374 / 2317-8069       153-272 /  303-618      indexes read at start in the
    leaves      181-260 / 1399-3380       102-170 /  228-597      background; one lock per index
    skeleton   1421-1979 / 2237-2831     1010-1573 / 1422-3227    (no shared lock behind a build)
    mesh       1595-1682 / 2998-3101      220-291 /  468-879      mesh builder on arrays (14x)

The skeleton stays the slowest: caveclient's get_skeleton makes 7 requests (l2cache mapping,
versions, a new graphene CloudVolume with its info files, is_valid_nodes, the skeleton), about
32 ms of client and server CPU together, so with 32 clients on 2 cores its p95 passed 2 s in
the most loaded run (load average 29).
0 errors in every run; server RSS 787-902 MB at the end, 1.03-1.15 GB peak (before and after).

Measured 2026-12-04 (``--students 1,32 --together --compare-caches``, load average 21-35 from
other engineers' jobs), the response cache and the row-group cache off -> on, p50 / p95 ms:

    kind        1 student off/on        32 students off              32 students on
    syn_in      101 / 77               1106 / 4503                  510 / 2028
    syn_out      44 / 94               1066 / 1832                  559 / 1877
    celltypes    28 / 8                 988 / 2072                  260 /  608
    nuclei       17 / 19                677 / 1255                  368 /  609
    roots         5 / 5                 319 /  938                  233 /  537
    leaves        2 / 2                 157 /  426                  153 /  279
    skeleton     60 / 14               1777 / 2639                 1416 / 2043
    mesh         12 / 2                 316 /  572                  171 /  427

server CPU per query 16.3 -> 9.0 ms (the students' clients 7.9 / 6.9 ms), 0 errors, server RSS
peak 1.31 / 1.35 GB, wall 147 -> 98 s. The skeleton and mesh figures of the "on" runs are
flattered: the serialised-skeleton and mesh caches (not switched off) kept what the "off" run
built. The row-group cache takes 384 MiB when full (RSS 0.97 -> 1.33 GB at the end).

A second run (skeletons now also read through the row-group cache), load average 13-38 during
"off" and 38 during "on", so the halves are not at the same load: p95 off -> on syn_in 2526 ->
2709, syn_out 1877 -> 3327, celltypes 2397 -> 830, nuclei 1361 -> 1360, roots 595 -> 852,
leaves 553 -> 692, skeleton 3242 -> 3567, mesh 661 -> 540 ms; server CPU per query 18.0 ->
10.6 ms, wall 121 -> 146 s, 0 errors, RSS peak 1.34 GB. On this shared machine latency
follows the other jobs' load; the server's CPU per query is what the caches change.
A single student: skeleton 30 ms, mesh 6 ms p50 (each built on its first request). Before,
without importing cloud-volume ahead, the first skeletons took 7.5-21 s (32 processes
importing it at once).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

DATASTACK = "minnie65_public"
KINDS = ["syn_in", "syn_out", "celltypes", "nuclei", "roots", "leaves", "skeleton", "mesh"]


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def student(k: int, url: str, home: str, version: int, cells: list[int], nuclei: list[int],
            svids: list[int], rounds: int,
            barrier=None) -> tuple[dict[str, list[float]], int, list[str], float]:
    """One student's session: ``rounds`` rounds of the mix; latencies per kind, errors, notes
    and the CPU seconds this student's process spent in the timed queries."""
    os.environ["HOME"] = home
    os.environ["CLOUD_VOLUME_DIR"] = str(Path(home) / ".cloudvolume")
    import logging

    import requests
    from caveclient import CAVEclient

    logging.getLogger("caveclient").setLevel(logging.ERROR)  # the sample notice, per query
    # caveclient imports cloud-volume on the first get_skeleton (CAVEclient.info makes a
    # CloudVolume): a page imports it in its imports cell, so it is not timed as a query here
    # (32 processes importing it at once on 2 cores made the first skeletons take ~14 s)
    import cloudvolume  # noqa: F401

    client = CAVEclient(DATASTACK, version=version)
    synapses = client.materialize.synapse_table
    token = {"Authorization": "Bearer offline"}
    session = requests.Session()
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    errors, notes = 0, []
    rng = np.random.default_rng(k)
    if barrier is not None:  # the class starts the page together, once everyone has imported
        barrier.wait()
    cpu0 = time.process_time()
    for i in range(rounds):
        root = cells[(k * rounds + i) % len(cells)]
        ops = {
            "syn_in": lambda root=root: client.materialize.query_table(
                synapses, filter_equal_dict={"post_pt_root_id": root}),
            "syn_out": lambda root=root: client.materialize.query_table(
                synapses, filter_equal_dict={"pre_pt_root_id": root}),
            "celltypes": lambda root=root: client.materialize.query_table(
                "aibs_metamodel_celltypes_v661",
                filter_in_dict={"cell_type": ["BC", "MC", "BPC", "NGC"]}),
            "nuclei": lambda root=root: client.materialize.query_table(
                "nucleus_detection_v0",
                filter_in_dict={"id": [int(x) for x in rng.choice(nuclei, 200)]}),
            "roots": lambda root=root: client.chunkedgraph.get_roots(
                [int(x) for x in rng.choice(svids, 500)]),
            "leaves": lambda root=root: client.chunkedgraph.get_leaves(root),
            "skeleton": lambda root=root: client.skeleton.get_skeleton(root),
            "mesh": lambda root=root: session.get(f"{url}/seg/{DATASTACK}/mesh/{root}:0:1",
                                        headers=token, timeout=120).raise_for_status(),
        }
        for kind in KINDS:
            t = time.perf_counter()
            try:
                ops[kind]()
            except Exception as exc:  # noqa: BLE001 - a benchmark counts every failure
                errors += 1
                if len(notes) < 3:
                    notes.append(f"{kind}: {type(exc).__name__}: {str(exc)[:200]}")
                    traceback.print_exc(limit=1)
            times[kind].append(time.perf_counter() - t)
    return times, errors, notes, time.process_time() - cpu0


class Sampler:
    """A poor man's sampling profiler of this process's threads (the server's)."""

    def __init__(self, interval: float = 0.005) -> None:
        import collections
        import threading

        self.leaf: collections.Counter = collections.Counter()
        self.ours: collections.Counter = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        import threading

        me = threading.get_ident()
        while not self._stop.wait(interval):
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                top = f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"
                if top in ("threading.py:wait", "selectors.py:select", "queue.py:get",
                           "base_events.py:_run_once", "threading.py:_wait_for_tstate_lock"):
                    continue
                self.samples += 1
                self.leaf[top] += 1
                seen = set()
                f = frame
                while f is not None:
                    if "offline_cave" in f.f_code.co_filename:
                        name = f"{Path(f.f_code.co_filename).name}:{f.f_code.co_name}"
                        if name not in seen:
                            seen.add(name)
                            self.ours[name] += 1
                    f = f.f_back

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self, n: int = 12) -> None:
        print(f"server thread samples (busy): {self.samples}")
        print("  innermost frames:")
        for name, c in self.leaf.most_common(n):
            print(f"    {100 * c / max(1, self.samples):5.1f}%  {name}")
        print("  offline_cave functions (inclusive):")
        for name, c in self.ours.most_common(n):
            print(f"    {100 * c / max(1, self.samples):5.1f}%  {name}")


def pick(ds_dir: Path, version: int) -> tuple[list[int], list[int], list[int]]:
    """Roots of skeletonized neurons, nucleus ids and nucleus supervoxels of the sample."""
    import pyarrow.parquet as pq

    from offline_cave.contract import layout

    nuc = pq.read_table(ds_dir / f"v{version}" / "nucleus_detection_v0.parquet").to_pandas()
    with_skeleton = set(pq.read_table(ds_dir / layout.SKELETON_CELLS_PARQUET,
                                      columns=["nucleus_id"]).column(0).to_pylist())
    cells = nuc[nuc.id.isin(with_skeleton) & (nuc.pt_root_id != 0)]
    return (cells.pt_root_id.astype(int).tolist()[:256], nuc.id.astype(int).tolist(),
            nuc.pt_supervoxel_id[nuc.pt_supervoxel_id != 0].astype(int).tolist())


def set_caches(state, on: bool) -> None:
    """Turn the server's response cache and decoded row-group cache on (defaults) or off;
    both start empty."""
    from offline_cave.server.data.row_groups import DEFAULT_ROW_GROUP_CACHE_BYTES, RowGroups
    from offline_cave.server.response_cache import DEFAULT_RESPONSE_CACHE_BYTES, ResponseCache

    state.response_cache = ResponseCache(DEFAULT_RESPONSE_CACHE_BYTES if on else 0)
    groups = RowGroups(DEFAULT_ROW_GROUP_CACHE_BYTES if on else 0)
    for ds in state.registry.datastacks.values():
        ds.row_groups = groups
    state.registry.row_groups = groups


def run_class(n: int, url: str, home: Path, args: argparse.Namespace, cells: list[int],
              nuclei: list[int], svids: list[int]) -> int:
    """One class of ``n`` students against the running server; prints its figures."""
    import multiprocessing

    ctx = get_context("spawn")
    sampler = Sampler()
    load0 = os.getloadavg()
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(n) if args.together else None
        with ProcessPoolExecutor(n, mp_context=ctx) as pool:
            futures = [pool.submit(student, k, url, str(home), args.version, cells, nuclei,
                                   svids, args.rounds, barrier) for k in range(n)]
            t0, cpu0 = time.perf_counter(), time.process_time()
            if args.profile:
                with sampler:
                    results = [f.result() for f in futures]
            else:
                results = [f.result() for f in futures]
            wall, server_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    load1 = os.getloadavg()
    rss, hwm = rss_mb(), rss_mb("VmHWM")
    print(f"\n{n} students x {args.rounds} rounds x {len(KINDS)} kinds in {wall:.1f} s (wall, "
          f"including client start-up)")
    print(f"load average (1, 5, 15 min) before {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f}, "
          f"after {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f} on {os.cpu_count()} CPUs")
    n_queries = n * args.rounds * len(KINDS)
    student_cpu = sum(r[3] for r in results)
    print(f"CPU per query: server {1000 * server_cpu / n_queries:.1f} ms (this process, start-up "
          f"of the students' pool included), students {1000 * student_cpu / n_queries:.1f} ms "
          f"(their timed queries)")
    print(f"{'kind':10s} {'n':>5s} {'p50 ms':>9s} {'p95 ms':>9s} {'max ms':>9s}")
    for kind in KINDS:
        ts = np.array([t for r in results for t in r[0][kind]]) * 1000
        print(f"{kind:10s} {len(ts):5d} {np.percentile(ts, 50):9.1f} {np.percentile(ts, 95):9.1f} "
              f"{ts.max():9.1f}")
    n_err = sum(r[1] for r in results)
    print(f"errors: {n_err}")
    for note in [n for r in results for n in r[2]][:5]:
        print(f"  {note}")
    print(f"server process RSS: {rss:.0f} MB now, {hwm:.0f} MB peak")
    if args.profile:
        sampler.report()
    return n_err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=Path("sample-data"))
    parser.add_argument("--students", default="32",
                        help="class size, or several (1,16,32) run one after another against "
                             "the same server, so their ratios share one machine load")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--version", type=int, default=1300)
    parser.add_argument("--together", action="store_true",
                        help="students start their first query together, after every one "
                             "has imported its clients (default: each as soon as it is ready)")
    parser.add_argument("--compare-caches", action="store_true",
                        help="run every class size twice, first with the server's response "
                             "and row-group caches off (the server before them), then on")
    parser.add_argument("--profile", action="store_true",
                        help="sample the server's threads and print where they spend time")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in str(args.students).split(",")]

    from offline_cave.client.runner import offline_server

    cells, nuclei, svids = pick(args.data / DATASTACK, args.version)
    rss0 = rss_mb()
    n_err = 0
    with offline_server(args.data, datastacks=[DATASTACK], generate=False) as (url, home):
        from offline_cave.client.runner import ACTIVE

        # a class starts after the instructor's server has read its indexes
        t_warm = time.perf_counter()
        warm_up = ACTIVE[url].app.state.warm_up
        if warm_up is not None:
            warm_up.join()
        print(f"server indexes read; waited {time.perf_counter() - t_warm:.1f} s; RSS "
              f"{rss_mb():.0f} MB (before the server {rss0:.0f} MB)")
        state = ACTIVE[url].app.state
        for n in sizes:
            for on in ([False, True] if args.compare_caches else [True]):
                if args.compare_caches:
                    set_caches(state, on)
                    print(f"\n== caches {'on' if on else 'off'}")
                n_err += run_class(n, url, home, args, cells, nuclei, svids)
    return 1 if n_err else 0


if __name__ == "__main__":
    sys.exit(main())
