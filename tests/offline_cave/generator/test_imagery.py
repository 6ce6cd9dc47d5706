"""The imagery renderer on a toy scene: two dendrites, one synapse between an outside axon
and one of them, known supervoxel points.

Checks what the image and the supervoxels must show whatever the sample: every voxel's
supervoxel is the nearest point of its own piece, membranes are darker than cytoplasm, the
bouton holds darker vesicles, and voxels no object fills are 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from offline_cave.generator import imagery

SHAPE = (256, 256, 8)  # 2 x 2 um, 0.32 um deep


def toy_plan() -> tuple[imagery.Plan, dict]:
    lo = np.array([1000, 1000, 100])
    box_lo, box_hi = imagery.box_of(lo, SHAPE)
    mid = (box_lo + box_hi) / 2
    # dendrite A along x through the middle, dendrite B along y near one edge
    a = imagery.Cell(0, 11, np.array([mid + [-3000, 0, 0], mid + [3000, 0, 0]]),
                     np.array([-1, 0]), np.array([350.0, 350.0]), np.zeros(2, np.int64))
    b = imagery.Cell(1, 22, np.array([mid + [500, -3000, 0], mid + [500, 3000, 0]]),
                     np.array([-1, 0]), np.array([150.0, 150.0]), np.zeros(2, np.int64))
    post = mid + [-400, 350, 0]
    ctr = post + [0, 220, 0]
    pre = post + [0, 440, 0]
    plan = imagery.Plan(lo, SHAPE, 0, [a, b], np.array([0]), pre[None], post[None], ctr[None],
                        np.array([11]))
    pieces = {"core": np.array([0, 1]), "frags": {}, "pre": np.array([5]),
              "post": np.array([0])}
    # supervoxels: two on dendrite A (one at the synapse), one on B, one in the bouton
    sv_nm = np.array([post, mid + [900, 0, 0], mid + [500, 900, 0], pre])
    candidates = (np.array([101, 102, 201, 501]), np.array([0, 0, 1, 5]), sv_nm)
    return plan, {"pieces": pieces, "candidates": candidates, "mid": mid, "pre": pre,
                  "post": post, "ctr": ctr, "box_lo": box_lo}


@pytest.fixture(scope="module")
def rendered():
    plan, scene = toy_plan()
    p = scene["pieces"]
    image, ws, stats = imagery.render(plan, p["core"], p["frags"], p["pre"], p["post"],
                                      scene["candidates"], np.random.default_rng(0))
    return image, ws, scene


def voxel(scene: dict, nm: np.ndarray) -> tuple[int, int, int]:
    ijk = np.floor((nm - scene["box_lo"]) / np.asarray(imagery.RESOLUTION)).astype(int)
    return tuple(int(v) for v in ijk)


def test_supervoxels_are_the_nearest_point_of_the_piece(rendered) -> None:
    image, ws, scene = rendered
    assert set(np.unique(ws).tolist()) <= {0, 101, 102, 201, 501}
    assert ws[voxel(scene, scene["post"] - [0, 100, 0])] == 101
    assert ws[voxel(scene, scene["mid"] + [950, 0, 0])] == 102
    # dendrite B crosses A: where it is B's, B's one supervoxel, never A's
    assert ws[voxel(scene, scene["mid"] + [500, -800, 0])] == 201
    assert ws[voxel(scene, scene["pre"])] == 501  # the bouton of the outside axon
    assert ws[voxel(scene, scene["mid"] + [-900, -900, 0])] == 0  # nothing there


def test_membranes_darker_than_cytoplasm_and_vesicles_in_the_bouton(rendered) -> None:
    image, ws, scene = rendered
    k = voxel(scene, scene["mid"])[2]
    img = image[:, :, k].astype(float)
    i, j, _ = voxel(scene, scene["mid"] + [-900, 0, 0])
    column = img[i, :]  # across dendrite A (radius 350 nm = 44 pixels)
    inside = column[j - 25:j + 25].mean()
    edge = min(column[j - 48:j - 40].min(), column[j + 40:j + 48].min())
    assert edge < inside - 50
    bi, bj, _ = voxel(scene, scene["ctr"] + [0, 150, 0])
    bouton = img[bi - 15:bi + 15, bj - 10:bj + 10]
    assert bouton.min() < inside - 50  # vesicle membranes


def test_a_coarse_mip_renders_the_same_objects(rendered) -> None:
    """The scene at 64 x 64 x 40 nm (the wide mip's resolution): the supervoxels sit where
    the full-resolution ones do and membranes stay darker than cytoplasm."""
    image, ws, scene = rendered
    plan, _ = toy_plan()
    p = scene["pieces"]
    res = imagery.SCALES[imagery.WIDE_MIP]
    factor = res[0] // imagery.RESOLUTION[0]
    lo = plan.lo_vx // np.array([factor, factor, 1])
    box = (lo, (SHAPE[0] // factor, SHAPE[1] // factor, SHAPE[2]), res)
    slabs = []
    coarse, cws, _ = imagery.render(plan, p["core"], p["frags"], p["pre"], p["post"],
                                    scene["candidates"], np.random.default_rng(1), box=box,
                                    emit=lambda k0, img, sv: slabs.append(k0))
    assert coarse is None and slabs == [0]  # handed over in slabs, not kept
    coarse, cws, _ = imagery.render(plan, p["core"], p["frags"], p["pre"], p["post"],
                                    scene["candidates"], np.random.default_rng(1), box=box)
    assert coarse.shape == cws.shape == box[1]

    def at(nm):
        ijk = np.floor((nm - lo * np.asarray(res)) / np.asarray(res)).astype(int)
        return tuple(int(v) for v in ijk)

    assert cws[at(scene["mid"] + [950, 0, 0])] == 102
    assert cws[at(scene["mid"] + [500, -800, 0])] == 201
    assert cws[at(scene["mid"] + [-900, -900, 0])] == 0
    i, j, k = at(scene["mid"] + [-900, 0, 0])
    column = coarse[i, :, k].astype(float)  # across dendrite A: 350 nm = 5.5 pixels
    assert min(column[j - 6], column[j + 6]) < column[j - 2:j + 3].mean() - 25


def test_downsampled_mips_average_the_full_resolution(rendered) -> None:
    image, ws, scene = rendered
    lo0 = np.array([1001, 1000, 100])  # odd: blocks start one voxel before the box
    lo, img, seg = imagery.downsample(image, ws, lo0, 1)
    assert lo.tolist() == [500, 500, 100] and img.shape == (128, 128, SHAPE[2])
    assert img[10, 10, 3] == round(image[19:21, 20:22, 3].astype(float).mean())
    assert seg[10, 10, 3] == ws[20, 21, 3]
    lo, img, seg = imagery.downsample(image, ws, lo0 - 1, 2)
    assert img.shape == (64, 64, SHAPE[2]) and seg.shape == img.shape
    assert abs(int(img[5, 7, 0]) - image[20:24, 25:29, 0].mean()) <= 0.5
