"""EM-like imagery and supervoxels around a synapse of the example pyramidal cell.

``generator/imagery.py`` renders one region of the default minnie65 sample; the server serves
it at ``aligned_volume.image_source`` (JPEG chunks) and under the graphene info's ``data_dir``
(gzipped supervoxel chunks). Through the unmodified ``ImageryClient`` and ``CloudVolume``:
cutouts have the requested shape, the overlay's root ids are the chunkedgraph's roots of the
supervoxels below them, every supervoxel is one of the sample's, and membranes are darker
than cytoplasm. Runs on the generated default sample (``OFFLINE_CAVE_DATA``, default
``sample-data``).
"""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from offline_cave.contract import layout
from tests.fixtures.server_harness import sample_fixtures

DATASTACK = "minnie65_public"
PYRAMIDAL = 864691135572530981
ds_dir, served = sample_fixtures(DATASTACK, "home-imagery")


@pytest.fixture(scope="module")
def meta(ds_dir: Path) -> dict:
    return json.loads((ds_dir / layout.IMAGERY_JSON).read_text())


@pytest.fixture(scope="module")
def client(served: str):
    from caveclient import CAVEclient

    return CAVEclient(DATASTACK)


@pytest.fixture(scope="module")
def imagery(client):
    from imageryclient import ImageryClient

    return ImageryClient(client=client)


@pytest.fixture(scope="module")
def focus(meta: dict) -> np.ndarray:
    """The focus synapse's ctr_pt (4 x 4 x 40 nm voxels, as the synapse table has it)."""
    return np.asarray(meta["stats"]["focus_ctr_vx"])


def test_cutouts_have_the_requested_shape(imagery, focus: np.ndarray) -> None:
    img = imagery.image_cutout(focus, bbox_size=(512, 512))
    assert img.shape == (256, 256)  # 512 viewer voxels of 4 nm = 256 pixels of 8 nm
    img3 = imagery.image_cutout(focus, bbox_size=(400, 300, 5))
    assert img3.shape == (200, 150, 5)
    img, seg = imagery.image_and_segmentation_cutout(
        focus, bbox_size=(512, 512), scale_to_bounds=True, split_segmentations=True)
    assert img.shape == (512, 512)
    assert seg and all(mask.shape == (512, 512) for mask in seg.values())
    assert img.dtype == np.uint8 and img.std() > 10  # an image, not the fill of missing chunks


def test_overlay_roots_are_the_chunkedgraph_roots(client, imagery, focus) -> None:
    roots = imagery.segmentation_cutout(focus, bbox_size=(600, 600, 3))
    svs = imagery.segmentation_cutout(focus, root_ids=None, bbox_size=(600, 600, 3))
    assert roots.shape == svs.shape == (300, 300, 3)
    ids = np.unique(svs[svs != 0])
    assert ids.size > 3
    expected = dict(zip(ids.tolist(), client.chunkedgraph.get_roots(ids).tolist(), strict=True))
    for sv, root in expected.items():
        assert set(np.unique(roots[svs == sv]).tolist()) == {root}
    assert np.all(roots[svs == 0] == 0)
    assert PYRAMIDAL in expected.values()


def test_focus_synapse_is_on_the_example_cell(client, imagery, focus) -> None:
    syn = client.materialize.synapse_query(post_ids=PYRAMIDAL)
    ctr = np.stack(syn["ctr_pt_position"].to_numpy())
    row = syn.iloc[int(np.argmin(np.abs(ctr - focus).sum(axis=1)))]
    svs = imagery.segmentation_cutout(row["post_pt_position"], root_ids=None,
                                      bbox_size=(2, 2, 1))
    assert int(np.ravel(svs)[0]) == int(row["post_pt_supervoxel_id"])
    svs = imagery.segmentation_cutout(row["pre_pt_position"], root_ids=None, bbox_size=(2, 2, 1))
    assert int(np.ravel(svs)[0]) == int(row["pre_pt_supervoxel_id"])


def test_every_supervoxel_is_one_of_the_sample(ds_dir: Path, meta: dict) -> None:
    known = pd.read_parquet(ds_dir / layout.PIECES_PARQUET, columns=["supervoxel_id"])
    found: set[int] = set()
    assert [sc["key"] for sc in meta["scales"]] == ["8_8_40", "16_16_40", "32_32_40",
                                                    "64_64_40"]
    for scale in meta["scales"]:
        for path in sorted((ds_dir / layout.IMAGERY_WS_DIR / scale["key"]).iterdir()):
            block = np.frombuffer(gzip.decompress(path.read_bytes()), np.uint64)
            found |= set(np.unique(block).tolist())
    found.discard(0)
    assert len(found) == meta["n_supervoxels"] > 10
    assert found <= set(known["supervoxel_id"].tolist())


def test_membranes_are_darker_than_cytoplasm(imagery, focus) -> None:
    img, seg = imagery.image_and_segmentation_cutout(focus, bbox_size=(1600, 1600, 3))
    img, cell = img[:, :, 1], seg[:, :, 1] == PYRAMIDAL  # the middle section
    assert cell.sum() > 1000
    # the cell's own boundary (the cutout's edge is not one: border_value=1)
    rim = cell & ~ndimage.binary_erosion(cell, iterations=2, border_value=1)
    core = ndimage.binary_erosion(cell, iterations=6, border_value=1)
    assert img[rim].mean() < img[core].mean() - 40


def _get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url) as resp:
            return resp.status, resp.read(), {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, err.read(), {k.lower(): v for k, v in err.headers.items()}


def test_image_and_supervoxel_files_and_bad_names(served: str, meta: dict) -> None:
    info = json.loads(_get(f"{served}/em/{DATASTACK}/info")[1])
    assert info["type"] == "image" and info["scales"][0]["encoding"] == "jpeg"
    assert info["scales"][0]["resolution"] == [8, 8, 40]
    lo = np.asarray(meta["box_vx"][0])
    name = "_".join(f"{a}-{a + s}" for a, s in zip(lo, meta["image"]["chunk_size"], strict=True))
    status, body, _ = _get(f"{served}/em/{DATASTACK}/{meta['key']}/{name}")
    assert status == 200 and body[:2] == b"\xff\xd8"  # a JPEG
    name = "_".join(f"{a}-{a + s}" for a, s in zip(lo, meta["watershed"]["chunk_size"],
                                                    strict=True))
    status, body, headers = _get(f"{served}/seg/{DATASTACK}/{meta['key']}/{name}")
    assert status == 200 and headers.get("content-encoding") == "gzip"
    shifted = "_".join(f"{a + 1}-{a + 1 + s}" for a, s in zip(lo, meta["image"]["chunk_size"],
                                                              strict=True))
    for rel in (f"{meta['key']}/{shifted}", f"{meta['key']}/0-1_0-1_0-1", "4_4_40/0-64_0-64_0-64",
                f"{meta['key']}/..%2F..%2FMANIFEST.json", f"{meta['key']}/not-a-chunk",
                "8_8_40/" + "9" * 300):
        status, body, _ = _get(f"{served}/em/{DATASTACK}/{rel}")
        assert status == 404, (rel, status)
        assert b"message" in body or b"error" in body


def test_coarser_mips_halve_x_and_y(imagery, meta: dict) -> None:
    image_cv, seg_cv = imagery.image_cv, imagery.segmentation_cv
    expected = [[8, 8, 40], [16, 16, 40], [32, 32, 40], [64, 64, 40]]
    for cv in (image_cv, seg_cv):
        assert [cv.mip_resolution(m).tolist() for m in cv.available_mips] == expected
    for mip, scale in enumerate(meta["scales"]):
        for cv in (image_cv, seg_cv):
            assert cv.mip_chunk_size(mip).tolist() == scale["chunk_size"]
            # every stored chunk is on the served scale's chunk grid
            grid = (np.asarray(scale["box_vx"][0]) - cv.mip_voxel_offset(mip))
            assert np.all(grid % np.asarray(scale["chunk_size"]) == 0)
    wide = np.diff(np.asarray(meta["scales"][3]["box_vx"]), axis=0)[0] * [64, 64, 40]
    assert np.all(wide[:2] >= 40_000) and wide[2] >= 1_280  # tens of um across


def test_a_wide_cutout_at_the_coarsest_mip(imagery, focus, meta: dict) -> None:
    """32 um across at 64 nm: image everywhere (not only in the full-resolution box), and
    the root of every voxel is the chunkedgraph's root of its supervoxel."""
    img = imagery.image_cutout(focus, bbox_size=(8000, 8000, 3), mip=3)
    assert img.shape == (500, 500, 3) and img.dtype == np.uint8
    for corner in (img[:100, :100], img[-100:, -100:], img[:100, -100:]):
        assert corner.std() > 8 and 60 < corner.mean() < 200  # outside the 10 um box
    svs = imagery.segmentation_cutout(focus, root_ids=None, bbox_size=(8000, 8000, 3), mip=3)
    roots = imagery.segmentation_cutout(focus, bbox_size=(8000, 8000, 3), mip=3)
    assert svs.shape == roots.shape == (500, 500, 3)
    ids = np.unique(svs[svs != 0])
    assert ids.size > 50
    expected = np.asarray(imagery.segmentation_cv.get_roots(ids), np.int64)
    at = np.clip(np.searchsorted(ids, svs), 0, ids.size - 1)  # ids are sorted
    assert np.array_equal(np.where(svs != 0, expected[at], 0), roots)
    assert PYRAMIDAL in set(expected.tolist())


def test_downsampled_mips_match_the_full_resolution(imagery, focus) -> None:
    full = imagery.image_cutout(focus, bbox_size=(1024, 1024, 2), mip=0).astype(float)
    half = imagery.image_cutout(focus, bbox_size=(1024, 1024, 2), mip=1).astype(float)
    assert full.shape == (512, 512, 2) and half.shape == (256, 256, 2)
    pooled = full.reshape(256, 2, 256, 2, 2).mean(axis=(1, 3))
    # the same picture (JPEG noise and the block grid's one-voxel shift aside)
    assert np.corrcoef(pooled.ravel(), half.ravel())[0, 1] > 0.8
    sv_full = imagery.segmentation_cutout(focus, root_ids=None, bbox_size=(1024, 1024, 2))
    sv_half = imagery.segmentation_cutout(focus, root_ids=None, bbox_size=(1024, 1024, 2),
                                          mip=1)
    assert np.mean(sv_full[::2, ::2] == sv_half) > 0.8
    wide = imagery.image_cutout(focus, bbox_size=(1024, 1024, 2), mip=3).astype(float)
    pooled = full.reshape(64, 8, 64, 8, 2).mean(axis=(1, 3))
    # rendered apart at 64 nm from the same cells: the same large profiles
    assert np.corrcoef(pooled.ravel(), wide.ravel())[0, 1] > 0.5
