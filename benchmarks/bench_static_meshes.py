"""What the static multi-resolution meshes cost the build, the sample and a reader.

    python benchmarks/bench_static_meshes.py [--data sample-data] [--cells 40]

Prints, for ``minnie65_public`` under ``--data``:

* the size of ``static/seg_m{N}/`` on disk and the number of roots in its shards;
* the build cost per cell: the LOD 0-3 meshes and their Draco encoding
  (``generator/static_meshes.py``) for ``--cells`` cells with level-2 data, from their stored
  skeletons, on one core, extrapolated to every cell the build writes;
* vertices and compressed bytes per level of detail, summed over those cells;
* through a running offline server and the unmodified cloud-volume: the time to read one
  cell's manifest and each level (first read, no cache), and the dynamic mesh for comparison.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from offline_cave.contract import layout
from offline_cave.generator.static_meshes import encode_multilod, lod_meshes

DATASTACK = "minnie65_public"


def stored_skeleton(ds_dir: Path, nucleus: int):
    t = pq.read_table(ds_dir / layout.SKELETONS_PARQUET,
                      filters=[("nucleus_id", "=", int(nucleus))]).to_pandas()
    t = t.sort_values("node")
    return (t[["x", "y", "z"]].to_numpy(np.float64), t["parent"].to_numpy(np.int64),
            t["radius"].to_numpy(np.float64))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="sample-data")
    ap.add_argument("--cells", type=int, default=40)
    args = ap.parse_args()
    ds_dir = Path(args.data) / DATASTACK

    for d in sorted((ds_dir / layout.STATIC_DIR).glob("seg_m*")):
        files = [p for p in d.rglob("*") if p.is_file()]
        print(f"{d.name}: {sum(p.stat().st_size for p in files) / 1e6:.1f} MB in "
              f"{len(files)} files")

    covered = pq.read_table(ds_dir / layout.LEVEL2_CELLS_PARQUET).column(0).to_numpy()
    pick = covered[np.linspace(0, covered.size - 1, min(args.cells, covered.size)).astype(int)]
    lod_vertices = np.zeros(4)
    lod_bytes = 0
    elapsed_mesh = elapsed_encode = 0.0
    for nucleus in pick:
        v, p, r = stored_skeleton(ds_dir, int(nucleus))
        t0 = time.perf_counter()
        meshes = lod_meshes(v, p, r, float(r[np.nonzero(p < 0)[0][0]]))
        t1 = time.perf_counter()
        payload, _ = encode_multilod(meshes)
        t2 = time.perf_counter()
        elapsed_mesh += t1 - t0
        elapsed_encode += t2 - t1
        lod_vertices += [len(m[0]) for m in meshes]
        lod_bytes += len(payload)
    n = len(pick)
    per_cell = (elapsed_mesh + elapsed_encode) / n
    print(f"build, {n} cells on one core: meshes {elapsed_mesh / n * 1000:.0f} ms/cell, "
          f"Draco {elapsed_encode / n * 1000:.0f} ms/cell; {lod_bytes / n / 1e3:.0f} kB/cell")
    n_written = len(set(covered.tolist()))
    print(f"  -> about {per_cell * n_written:.0f} s of CPU for the {n_written} cells with "
          f"level-2 data (plus the example cells)")
    print("vertices per LOD (mean per cell):", np.round(lod_vertices / n).astype(int).tolist())

    from cloudvolume import CloudVolume

    from offline_cave.client.runner import offline_server

    with tempfile.TemporaryDirectory() as home, offline_server(
            Path(args.data), home=Path(home), datastacks=[DATASTACK], generate=False,
            set_environ=True) as (url, _):
        import cloudvolume.secrets as cvs

        cvs.CLOUD_VOLUME_DIR = str(Path(home) / ".cloudvolume")
        cvs.CAVE_CREDENTIALS_CACHE.clear()
        root = 864691135572530981
        cv = CloudVolume(f"precomputed://{url}/static/{DATASTACK}/seg_m1300", use_https=True,
                         progress=False)
        t0 = time.perf_counter()
        manifest = cv.mesh.get_manifest(root)
        print(f"read, root {root}: manifest {1000 * (time.perf_counter() - t0):.0f} ms")
        for lod in range(manifest.num_lods):
            t0 = time.perf_counter()
            mesh = cv.mesh.get(root, lod=lod)[root]
            print(f"  LOD {lod}: {len(mesh.vertices):>7,} vertices, "
                  f"{int(np.sum(manifest.fragment_offsets[lod])) / 1e3:7.0f} kB, "
                  f"{1000 * (time.perf_counter() - t0):5.0f} ms")
        dyn = CloudVolume(f"precomputed://{url}/seg/{DATASTACK}", use_https=True,
                          progress=False)
        t0 = time.perf_counter()
        mesh = dyn.mesh.get(root)
        vertices = mesh.vertices if hasattr(mesh, "vertices") else mesh[root].vertices
        print(f"  dynamic: {len(vertices):>7,} vertices, "
              f"{1000 * (time.perf_counter() - t0):5.0f} ms")


if __name__ == "__main__":
    main()
