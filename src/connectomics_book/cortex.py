"""Cortical depth for plots in the cortical frame, and layer borders drawn on them.

Positions in the datasets are in voxels or nm of the EM volume, whose axes are only roughly
aligned with the cortex. :func:`to_cortical_um` applies the published ``standard_transform``
of the datastack: the result is in µm, with *y* the depth below the pia (growing downwards)
and *x*, *z* the two tangential directions.

Neither dataset publishes layer boundaries:
:func:`connectomics_book.selection.estimate_layer_bottoms` estimates them from the soma depths of
the layer-specific excitatory types, and :func:`draw_layers` draws them on a plot whose y
axis is that depth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from connectomics_book.constants import DATASTACK, V1DD_DATASTACK

_TRANSFORMS = {DATASTACK: "minnie65", V1DD_DATASTACK: "v1dd"}


def cortical_transform(datastack: str = DATASTACK, resolution: str | Sequence[float] = "nm"):
    """The ``standard_transform`` of ``datastack`` for points in ``resolution``.

    ``resolution`` is ``"nm"``, ``"vx"`` (the dataset's voxels: 4 x 4 x 40 nm for MICrONS,
    9 x 9 x 45 nm for V1DD) or an explicit ``[x, y, z]`` voxel size in nm. The returned
    object's ``apply(points)`` gives µm in the cortical frame; it also has
    ``apply_skeleton`` for meshparty skeletons.
    """
    from standard_transform import minnie_transform, v1dd_transform

    try:
        dataset = _TRANSFORMS[datastack]
    except KeyError:
        raise ValueError(
            f"no cortical transform for datastack {datastack!r}; known: {sorted(_TRANSFORMS)}"
        ) from None
    make = minnie_transform if dataset == "minnie65" else v1dd_transform
    return make(resolution=resolution)


def to_cortical_um(
    points: np.ndarray | Iterable,
    datastack: str = DATASTACK,
    resolution: str | Sequence[float] = "nm",
) -> np.ndarray:
    """Points ``(n, 3)`` in ``resolution`` -> µm in the cortical frame (y = depth below pia).

    A column of a dataframe holding ``[x, y, z]`` lists (such as ``pt_position``) is
    accepted as well.
    """
    array = np.asarray(points)
    if array.dtype == object:  # e.g. a dataframe column of [x, y, z] lists
        array = np.stack([np.asarray(p, dtype=float) for p in array])
    array = np.atleast_2d(array.astype(float))
    if array.shape[-1] != 3:
        raise ValueError(f"expected points of shape (n, 3), got {array.shape}")
    return np.asarray(cortical_transform(datastack, resolution).apply(array))


def depth_um(
    points: np.ndarray | Iterable,
    datastack: str = DATASTACK,
    resolution: str | Sequence[float] = "nm",
) -> np.ndarray:
    """Depth below the pia in µm of each point (see :func:`to_cortical_um`)."""
    return to_cortical_um(points, datastack, resolution)[:, 1]


def add_cortical_position(
    df: pd.DataFrame,
    column: str = "pt_position",
    datastack: str = DATASTACK,
    resolution: str | Sequence[float] = "nm",
    prefix: str = "",
) -> pd.DataFrame:
    """A copy of ``df`` with the cortical-frame position of ``column`` (µm) added.

    ``column`` holds ``[x, y, z]`` positions in ``resolution`` (query the table with
    ``desired_resolution=[1, 1, 1]`` for nm). The new columns are ``x_um``, ``depth_um``
    (below the pia) and ``z_um``, each preceded by ``prefix``.
    """
    out = df.copy()
    names = [f"{prefix}{name}" for name in ("x_um", "depth_um", "z_um")]
    if len(out) == 0:
        for name in names:
            out[name] = pd.Series(dtype=float)
        return out
    position = to_cortical_um(out[column], datastack, resolution)
    for i, name in enumerate(names):
        out[name] = position[:, i]
    return out


def draw_layers(
    ax, layer_bottoms: pd.Series, *, labels: bool = True, color: str = "0.55", **line_kwargs
) -> None:
    """Draw layer borders as horizontal lines on ``ax`` whose y axis is depth (µm).

    ``layer_bottoms`` is a Series of increasing bottom depths indexed by layer name, as
    returned by :func:`connectomics_book.selection.estimate_layer_bottoms`; the pia (depth 0) is
    drawn too. Labels sit at the left edge of the axes, halfway between a layer's borders.
    The y axis is not inverted here: do that once with ``ax.invert_yaxis()`` or ``ylim``.
    """
    bottoms = layer_bottoms.to_numpy(dtype=float)
    if len(bottoms) == 0 or (np.diff(bottoms) <= 0).any():
        raise ValueError(f"layer bottoms must increase with depth: {layer_bottoms.to_dict()}")
    tops = np.concatenate([[0.0], bottoms[:-1]])
    style = {"linewidth": 0.8, "linestyle": "--", "zorder": 0.5} | line_kwargs
    for y in np.concatenate([[0.0], bottoms]):
        ax.axhline(y, color=color, **style)
    if labels:
        transform = ax.get_yaxis_transform()  # x in axes fraction, y in data units
        for name, top, bottom in zip(layer_bottoms.index, tops, bottoms, strict=True):
            ax.text(
                0.01,
                (top + bottom) / 2,
                str(name),
                color=color,
                transform=transform,
                va="center",
                ha="left",
                fontsize=8,
            )
