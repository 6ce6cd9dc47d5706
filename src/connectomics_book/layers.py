"""Cortical depth and layer boundaries for plots in the cortical frame.

Positions in the datasets are in voxels or nm of the EM volume, whose axes are only roughly
aligned with the cortex. :func:`to_cortical_um` applies the published ``standard_transform``
of the datastack: the result is in µm, with *y* the depth below the pia (growing downwards)
and *x*, *z* the two tangential directions.

Neither dataset publishes layer boundaries, so :func:`estimate_layer_boundaries` derives them
from the soma depths of the layer-specific excitatory cell types of a cell-type table (the
depth that best separates ``23P`` from ``4P`` somata is the L2/3-L4 border, and so on).
:data:`connectomics_book.facts.VISP_REFERENCE_LAYERS` holds the Allen reference depths for
comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from connectomics_book.constants import DATASTACK, V1DD_DATASTACK
from connectomics_book.facts import Layer

#: Layer of each layer-specific excitatory type, in the vocabularies of the MICrONS metamodel
#: (``aibs_metamodel_celltypes_v661``) and of V1DD (``cell_type_multifeature_v1``).
LAYER_OF_TYPE: dict[str, str] = {
    "23P": "L2/3",
    "4P": "L4",
    "5P-IT": "L5",
    "5P-ET": "L5",
    "5P-NP": "L5",
    "6P-IT": "L6",
    "6P-CT": "L6",
    "L2IT": "L2/3",
    "L3IT": "L2/3",
    "L4IT": "L4",
    "L5IT": "L5",
    "L5ET": "L5",
    "L5NP": "L5",
    "L6IT": "L6",
    "L6CT": "L6",
}

#: Layers whose excitatory somata define the borders, from pia to white matter.
SOMA_LAYERS: tuple[str, ...] = ("L2/3", "L4", "L5", "L6")

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


def _best_threshold(upper: np.ndarray, lower: np.ndarray) -> float:
    """The depth that misassigns the fewest of two groups (``upper`` above, ``lower`` below)."""
    candidates = np.unique(np.concatenate([upper, lower]))
    upper_sorted, lower_sorted = np.sort(upper), np.sort(lower)
    # threshold t: upper somata deeper than t and lower somata at or above t are errors
    upper_below = len(upper) - np.searchsorted(upper_sorted, candidates, side="right")
    lower_above = np.searchsorted(lower_sorted, candidates, side="right")
    errors = upper_below + lower_above
    best = np.flatnonzero(errors == errors.min())
    # middle of the optimal run of candidates, and halfway to the next depth
    i = best[len(best) // 2]
    following = candidates[min(i + 1, len(candidates) - 1)]
    return float((candidates[i] + following) / 2)


def estimate_layer_boundaries(
    depth: np.ndarray | Iterable[float],
    cell_type: Iterable[str],
    top_quantile: float = 0.005,
    bottom_quantile: float = 0.995,
    min_cells: int = 20,
) -> list[Layer]:
    """Layers L1, L2/3, L4, L5, L6 as depth bands (µm) estimated from soma depths.

    ``depth`` is the soma depth below the pia of each cell (µm, e.g. from :func:`depth_um`),
    ``cell_type`` its label; only the layer-specific excitatory types of
    :data:`LAYER_OF_TYPE` are used. Each border between two layers is the depth that best
    separates the somata of the upper layer's types from those of the lower layer's. The
    L1-L2/3 border is the ``top_quantile`` of the L2/3 soma depths and the bottom of L6 the
    ``bottom_quantile`` of the L6 soma depths. Raises ``ValueError`` when a layer has fewer
    than ``min_cells`` somata.
    """
    depth = np.asarray(depth, dtype=float)
    layer = np.array([LAYER_OF_TYPE.get(str(t), "") for t in cell_type])
    if len(layer) != len(depth):
        raise ValueError(f"{len(depth)} depths but {len(layer)} cell types")
    groups = {name: depth[(layer == name) & np.isfinite(depth)] for name in SOMA_LAYERS}
    thin = {name: len(d) for name, d in groups.items() if len(d) < min_cells}
    if thin:
        raise ValueError(
            f"too few somata to place the layer borders: {thin} (need {min_cells} per layer; "
            f"types used: {sorted(LAYER_OF_TYPE)})"
        )
    borders = [0.0, float(np.quantile(groups["L2/3"], top_quantile))]
    for upper, lower in zip(SOMA_LAYERS[:-1], SOMA_LAYERS[1:], strict=True):
        borders.append(_best_threshold(groups[upper], groups[lower]))
    borders.append(float(np.quantile(groups["L6"], bottom_quantile)))
    names = ("L1", *SOMA_LAYERS)
    return [Layer(n, top, bottom) for n, top, bottom in zip(names, borders, borders[1:])]


def draw_layers(ax, layers: Sequence[Layer], *, labels: bool = True, color: str = "0.6",
                **line_kwargs) -> None:
    """Draw layer borders as horizontal lines on ``ax`` (y = depth in µm, growing down).

    Labels sit at the left edge of the axes, halfway between the layer's borders. The
    y axis is not inverted here: do that once with ``ax.invert_yaxis()`` or ``ylim``.
    """
    style = {"linewidth": 0.8, "linestyle": "--", "zorder": 0.5} | line_kwargs
    borders = sorted({layer.top_um for layer in layers} | {layers[-1].bottom_um})
    for y in borders:
        ax.axhline(y, color=color, **style)
    if labels:
        transform = ax.get_yaxis_transform()  # x in axes fraction, y in data
        for layer in layers:
            ax.text(0.01, (layer.top_um + layer.bottom_um) / 2, layer.name, color=color,
                    transform=transform, va="center", ha="left", fontsize=8)
