"""Pick cells from the annotation tables: single-soma objects, proofread cells, layers.

The *Programmatic access* pages build these selections step by step once and then call the
functions below, so every later page selects cells the same way. Every function works on
what ``caveclient`` returns from the public datastacks (``minnie65_public``); nothing here
knows where the data are served from.

Units: depths are µm below the pia, as returned by ``standard_transform``'s
``minnie_transform`` (the pia at 0, depth growing downwards).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Cell-type table of the MICrONS soma/nucleus metamodel (a reference table on nuclei).
CELL_TYPE_TABLE = "aibs_metamodel_celltypes_v661"
#: Table of proofreading status and strategy (one row per assessed cell, its own point).
PROOFREADING_TABLE = "proofreading_status_and_strategy"

#: Excitatory types of ``aibs_metamodel_celltypes_v661`` grouped by the layer they define,
#: from the pia down. :func:`estimate_layer_bottoms` splits neighbouring groups.
LAYER_TYPES: dict[str, tuple[str, ...]] = {
    "L2/3": ("23P",),
    "L4": ("4P",),
    "L5": ("5P-IT", "5P-ET", "5P-NP"),
    "L6": ("6P-IT", "6P-CT"),
}


def drop_multi_soma(df: pd.DataFrame, root_column: str = "pt_root_id") -> pd.DataFrame:
    """Keep the rows whose root id is non-zero and occurs exactly once in ``df``.

    A root id shared by several rows of a soma-keyed table is an object with several
    somata (a merge error); root id 0 means the point lies outside the segmentation. Neither
    can be attributed to one cell, so both are dropped (the MICrONS tutorials' convention).
    """
    roots = df[root_column]
    single = ~roots.duplicated(keep=False) & (roots != 0)
    return df[single]


def proofread_cells(client, axon: bool = True) -> pd.DataFrame:
    """Single-soma cells with a cell type and a proofread axon (or dendrite), one row each.

    Queries :data:`CELL_TYPE_TABLE` and :data:`PROOFREADING_TABLE` at the client's
    materialization version (``client.materialize.version``), drops multi-soma objects and
    keeps the cells whose ``status_axon`` (``axon=True``) or ``status_dendrite``
    (``axon=False``) is True.

    Returns columns ``nucleus_id``, ``pt_root_id``, ``classification_system``,
    ``cell_type``, ``strategy_axon`` and ``strategy_dendrite``, sorted by ``nucleus_id``.
    """
    cell_type_df = client.materialize.query_table(CELL_TYPE_TABLE)
    proofread_df = client.materialize.query_table(PROOFREADING_TABLE)
    status = "status_axon" if axon else "status_dendrite"
    proofread_df = proofread_df[proofread_df[status].isin([True, "t"])]
    # target_id is the nucleus id under both column conventions of reference-table joins
    cells_df = drop_multi_soma(cell_type_df).rename(columns={"target_id": "nucleus_id"})
    proofread_df = proofread_df.query("pt_root_id != 0").drop_duplicates("pt_root_id")
    proofread_df = proofread_df[["pt_root_id", "strategy_axon", "strategy_dendrite"]]
    merged = cells_df.merge(proofread_df, on="pt_root_id")
    columns = [
        "nucleus_id",
        "pt_root_id",
        "classification_system",
        "cell_type",
        "strategy_axon",
        "strategy_dendrite",
    ]
    return merged[columns].sort_values("nucleus_id").reset_index(drop=True)


def _split_depth(upper: np.ndarray, lower: np.ndarray) -> float:
    """The depth that best separates two groups: fewest upper cells below plus lower above.

    Ties (a range of equally good depths) resolve to the middle of the range.
    """
    depth = np.concatenate([upper, lower])
    is_lower = np.concatenate([np.zeros(upper.size), np.ones(lower.size)])
    order = np.argsort(depth, kind="stable")
    depth, is_lower = depth[order], is_lower[order]
    # errors if the boundary sits just above sorted cell i (i = 0 .. n)
    lower_above = np.concatenate([[0], np.cumsum(is_lower)])
    upper_below = upper.size - np.concatenate([[0], np.cumsum(1 - is_lower)])
    errors = lower_above + upper_below
    best = np.flatnonzero(errors == errors.min())
    padded = np.concatenate([[depth[0]], depth, [depth[-1]]])
    # boundary i lies between depth[i-1] and depth[i]
    cuts = (padded[best] + padded[best + 1]) / 2
    return float((cuts.min() + cuts.max()) / 2)


def estimate_layer_bottoms(
    depth_um: Sequence[float] | np.ndarray,
    cell_type: Sequence[str] | np.ndarray,
    quantile: float = 0.01,
) -> pd.Series:
    """Estimate the bottom of each cortical layer (µm below pia) from the excitatory types.

    The MICrONS datasets publish no layer boundaries, but their excitatory cell types are
    defined by layer (:data:`LAYER_TYPES`). Each boundary between two neighbouring layers is
    the depth that misplaces the fewest cells of the two groups. The bottom of L1 is the
    ``quantile`` of the L2/3 cell depths and the bottom of L6 the ``1 - quantile`` of the L6
    depths (L1 and the white matter have no excitatory type of their own).

    Returns a Series indexed ``L1, L2/3, L4, L5, L6`` with increasing depths.
    This is a rough, volume-wide estimate: the cortex curves and thins into the higher
    visual areas, so boundaries vary by a few tens of µm across the volume.
    """
    depth = np.asarray(depth_um, dtype=float)
    types = np.asarray(cell_type, dtype=object)
    groups = {
        layer: depth[np.isin(types, members) & np.isfinite(depth)]
        for layer, members in LAYER_TYPES.items()
    }
    empty = [layer for layer, d in groups.items() if d.size == 0]
    if empty:
        raise ValueError(f"no cells of the types that define {empty}: {LAYER_TYPES}")
    layers = list(groups)
    bottoms = {"L1": float(np.quantile(groups["L2/3"], quantile))}
    for upper, lower in zip(layers[:-1], layers[1:], strict=True):
        bottoms[upper] = _split_depth(groups[upper], groups[lower])
    bottoms["L6"] = float(np.quantile(groups["L6"], 1 - quantile))
    result = pd.Series(bottoms, name="bottom_um")[["L1", *layers]]
    if not result.is_monotonic_increasing:
        raise ValueError(f"layer bottoms are not ordered by depth: {result.to_dict()}")
    return result


def assign_layer(
    depth_um: Sequence[float] | np.ndarray, layer_bottoms: pd.Series
) -> pd.Categorical:
    """Name the layer of each depth (µm below pia); deeper than the last bottom is ``"WM"``.

    ``layer_bottoms`` is the output of :func:`estimate_layer_bottoms` (or any Series of
    increasing bottom depths indexed by layer name). Depths above the pia count as the first
    layer.
    """
    edges = [-np.inf, *layer_bottoms.to_numpy(), np.inf]
    labels = [*layer_bottoms.index, "WM"]
    return pd.cut(np.asarray(depth_um, dtype=float), bins=edges, labels=labels)
