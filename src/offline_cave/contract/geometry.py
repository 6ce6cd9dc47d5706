"""Coordinate frames of the sample: cortical frame (um from pia) <-> voxels <-> nm.

The sample is built in the *cortical frame* that ``standard_transform`` defines for the
dataset (minnie65: rotate 5 deg about z, translate pia to y = 0, scale nm -> um), then mapped
back into the dataset's native frame with the transform's exact inverse. So students who apply
``standard_transform.minnie_transform`` to the served positions get the depths the generator
intended.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import standard_transform

from offline_cave.contract.params import LAYER_BOUNDS_UM, LAYERS, DatastackParams


@cache
def _transform(dataset: str, resolution: str):
    factory = {"minnie65": standard_transform.minnie_transform,
               "v1dd": standard_transform.v1dd_transform}[dataset]
    return factory(resolution)


def cortical_to_voxels(points_um: np.ndarray, params: DatastackParams,
                       resolution: tuple[float, float, float] | None = None) -> np.ndarray:
    """Cortical-frame um -> voxels of ``resolution`` nm (default: the datastack's table voxels).

    Returns float64; round before storing.
    """
    pts = np.atleast_2d(np.asarray(points_um, dtype=np.float64))
    tform = _transform(params.transform, "vx")
    vx = tform.invert(pts)
    # standard_transform's "vx" resolution is its own dataset default; rescale if the
    # datastack's table resolution differs (V1DD synapses)
    default = np.asarray(standard_transform.datasets._DATASET_VOXEL_RESOLUTION[params.transform])
    return vx * default / np.asarray(resolution or params.voxel_resolution)


def cortical_to_nm(points_um: np.ndarray, params: DatastackParams) -> np.ndarray:
    """Cortical-frame um -> dataset nm (the frame of meshes and skeletons)."""
    pts = np.atleast_2d(np.asarray(points_um, dtype=np.float64))
    return _transform(params.transform, "nm").invert(pts)


def voxels_to_cortical(points_vx: np.ndarray, params: DatastackParams) -> np.ndarray:
    """Annotation voxels -> cortical-frame um."""
    pts = np.atleast_2d(np.asarray(points_vx, dtype=np.float64))
    nm = pts * np.asarray(params.voxel_resolution)
    return _transform(params.transform, "nm").apply(nm)


def layer_of_depth(depth_um: np.ndarray) -> np.ndarray:
    """Layer name ('L1', 'L2/3', 'L4', 'L5', 'L6', 'WM') for each depth in um from pia."""
    depth = np.asarray(depth_um, dtype=np.float64)
    edges = np.array([LAYER_BOUNDS_UM[name][1] for name in LAYERS[:-1]])
    return np.asarray(LAYERS, dtype=object)[np.searchsorted(edges, depth, side="right")]


@dataclass(frozen=True)
class Slab:
    """The sampled block of cortex in the cortical frame (um)."""

    box_min: np.ndarray
    box_max: np.ndarray

    @property
    def volume_mm3(self) -> float:
        return float(np.prod(self.box_max - self.box_min) * 1e-9)


def slab_for(params: DatastackParams, scale: float) -> Slab:
    """The slab for a datastack at a scale: the area grows with ``scale`` (x by scale**0.6,
    z by scale**0.4, so a 10x slab still fits the real volume's z extent)."""
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    half = np.array([params.slab_width_x_um * scale**0.6 / 2, 0.0,
                     params.slab_width_z_um * scale**0.4 / 2])
    centre = np.array([params.slab_center_x_um, 0.0, params.slab_center_z_um])
    box_min = centre - half
    box_max = centre + half
    box_max[1] = params.depth_max_um
    return Slab(box_min=box_min, box_max=box_max)
