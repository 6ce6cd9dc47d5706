"""The EM-like imagery of a generated sample: its size, its build time and cutout times.

usage: python benchmarks/bench_imagery.py [DATA_DIR] [--repeat 3]

Reads ``minnie65_public/imagery/imagery.json`` of DATA_DIR (default ``sample-data``) and the
chunk files, prints the voxels, bytes on disk (image JPEG, supervoxels gzipped), number of
supervoxels and the seconds the generator spent planning and rendering; then starts a server
and prints the seconds of ``ImageryClient`` cutouts around the focus synapse (image only,
image + agglomerated segmentation, 512 x 512 and 1600 x 1600 x 5 viewer voxels).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from offline_cave.client.runner import offline_server
from offline_cave.contract import layout

DATASTACK = "minnie65_public"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default="sample-data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ds_dir = Path(args.data_dir) / DATASTACK
    meta = json.loads((ds_dir / layout.IMAGERY_JSON).read_text())
    lo, hi = (np.asarray(v) for v in meta["box_vx"])
    size_um = (hi - lo) * np.asarray(meta["resolution"]) / 1000
    em = sum(p.stat().st_size for p in (ds_dir / layout.IMAGERY_EM_DIR).rglob("*") if p.is_file())
    ws = sum(p.stat().st_size for p in (ds_dir / layout.IMAGERY_WS_DIR).rglob("*") if p.is_file())
    print(f"box {(hi - lo).tolist()} voxels of {meta['resolution']} nm = "
          f"{' x '.join(f'{v:.2f}' for v in size_um)} um; {int(np.prod(hi - lo)):,} voxels")
    print(f"on disk: image {em / 1e6:.1f} MB (JPEG), supervoxels {ws / 1e6:.2f} MB (gzip), "
          f"{meta['n_supervoxels']} supervoxels")
    print(f"generator: {meta['stats']}")
    with offline_server(args.data_dir, datastacks=[DATASTACK], generate=False, set_environ=True):
        from caveclient import CAVEclient
        from imageryclient import ImageryClient

        img_client = ImageryClient(client=CAVEclient(DATASTACK))
        ctr = np.asarray(meta["stats"]["focus_ctr_vx"])
        for label, call in (
                ("image 512x512", lambda: img_client.image_cutout(ctr, bbox_size=(512, 512))),
                ("image+seg 512x512", lambda: img_client.image_and_segmentation_cutout(
                    ctr, bbox_size=(512, 512), split_segmentations=True)),
                ("image+seg 1600x1600x5", lambda: img_client.image_and_segmentation_cutout(
                    ctr, bbox_size=(1600, 1600, 5)))):
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
            print(f"{label}: median {np.median(times):.2f} s over {args.repeat}")


if __name__ == "__main__":
    main()
