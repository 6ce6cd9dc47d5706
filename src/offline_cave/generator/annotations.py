"""Annotation tables of the sample, with the real names, schemas and column orders.

Each builder returns a pandas DataFrame whose columns are exactly what the materialization
service streams for that table (positions split into ``_x/_y/_z`` int64 voxel columns).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from offline_cave.contract.params import EXC_TYPES, INH_TYPES

BASE_COLUMNS = ("id", "created", "superceded_id", "valid")


def timestamps(rng: np.random.Generator, n: int, start: str, seconds: float) -> pd.Series:
    """``n`` UTC timestamps (microsecond precision) uniformly in [start, start + seconds)."""
    t0 = datetime.fromisoformat(start).replace(tzinfo=UTC)
    offsets = np.sort(rng.uniform(0, seconds, size=n))
    micro = (offsets * 1e6).astype(np.int64)
    base = np.datetime64(t0.replace(tzinfo=None), "us")
    stamps = pd.to_datetime(base + micro.astype("timedelta64[us]")).tz_localize("UTC")
    return pd.Series(stamps.as_unit("us"))


def _base(ids: np.ndarray, created: pd.Series) -> dict[str, object]:
    n = len(ids)
    return {
        "id": np.asarray(ids, dtype=np.int64),
        "created": pd.Series(created).reset_index(drop=True).array,
        "superceded_id": pd.array([pd.NA] * n, dtype="Int64"),
        "valid": np.ones(n, dtype=bool),
    }


def _point(prefix: str, xyz: np.ndarray, sv: np.ndarray | None = None,
           root: np.ndarray | None = None) -> dict[str, object]:
    cols: dict[str, object] = {}
    if sv is not None:
        cols[f"{prefix}_supervoxel_id"] = np.asarray(sv, dtype=np.int64)
        cols[f"{prefix}_root_id"] = np.asarray(root, dtype=np.int64)
    for i, axis in enumerate("xyz"):
        cols[f"{prefix}_position_{axis}"] = xyz[:, i]
    return cols


def nucleus_detection(nucleus_id, created, volume, pt_vx, sv, root) -> pd.DataFrame:
    """``nucleus_detection_v0`` (schema nucleus_detection)."""
    n = len(nucleus_id)
    nan = np.full((n, 3), np.nan)
    cols = _base(nucleus_id, created)
    cols["volume"] = np.asarray(volume, dtype=np.float64)
    cols["pt_supervoxel_id"] = np.asarray(sv, dtype=np.int64)
    cols["pt_root_id"] = np.asarray(root, dtype=np.int64)
    cols.update(_point("pt", pt_vx))
    cols.update(_point("bb_start", nan))
    cols.update(_point("bb_end", nan))
    return pd.DataFrame(cols)


def reference(ids, created, target_id, payload: dict[str, object]) -> pd.DataFrame:
    """A reference table (``target_id`` -> nucleus id) with its payload columns."""
    cols = _base(ids, created)
    cols["target_id"] = np.asarray(target_id, dtype=np.int64)
    cols.update(payload)
    return pd.DataFrame(cols)


def reference_point(ids, created, target_id, pt_vx, sv, root) -> pd.DataFrame:
    """``nucleus_alternative_points`` (schema reference_point)."""
    cols = _base(ids, created)
    cols["target_id"] = np.asarray(target_id, dtype=np.int64)
    cols.update(_point("pt", pt_vx, sv, root))
    return pd.DataFrame(cols)


def synapses(ids, created: str, size, pre_sv, pre_root, post_sv, post_root, pre_vx, post_vx,
             ctr_vx) -> pa.Table:
    """``synapses_pni_2`` (schema synapse), column order of ``synapse_query``.

    Built straight into Arrow from numpy arrays (no pandas copy): this is the largest table.
    ``created`` is one ISO time for all rows (the table was ingested in bulk).
    """
    n = len(ids)
    stamp = np.datetime64(created, "us").astype(np.int64)
    cols = {
        "id": pa.array(np.asarray(ids, dtype=np.int64)),
        "created": pa.array(np.full(n, stamp), pa.timestamp("us", tz="UTC")),
        "superceded_id": pa.nulls(n, pa.int64()),
        "valid": pa.array(np.asarray(pre_root) != np.asarray(post_root)),  # autapses invalid
        "size": pa.array(np.asarray(size, dtype=np.int64)),
        "pre_pt_supervoxel_id": pa.array(pre_sv), "pre_pt_root_id": pa.array(pre_root),
        "post_pt_supervoxel_id": pa.array(post_sv), "post_pt_root_id": pa.array(post_root),
    }
    for prefix, xyz in (("pre_pt", pre_vx), ("post_pt", post_vx), ("ctr_pt", ctr_vx)):
        for i, axis in enumerate("xyz"):
            cols[f"{prefix}_position_{axis}"] = pa.array(xyz[:, i].astype(np.int64))
    return pa.table(cols)


def proofreading(ids, created, pt_vx, valid_id, status_dendrite, status_axon,
                 strategy_dendrite, strategy_axon, sv, root) -> pd.DataFrame:
    """``proofreading_status_and_strategy`` (schema compartment_proofread_status_strategy)."""
    cols = _base(ids, created)
    cols.update(_point("pt", pt_vx))
    cols["valid_id"] = np.asarray(valid_id, dtype=np.int64)
    cols["status_dendrite"] = np.asarray(status_dendrite, dtype=bool)
    cols["status_axon"] = np.asarray(status_axon, dtype=bool)
    cols["strategy_dendrite"] = np.asarray(strategy_dendrite, dtype=object)
    cols["strategy_axon"] = np.asarray(strategy_axon, dtype=object)
    cols["pt_supervoxel_id"] = np.asarray(sv, dtype=np.int64)
    cols["pt_root_id"] = np.asarray(root, dtype=np.int64)
    return pd.DataFrame(cols)


def lookup_view(nucleus: pd.DataFrame, alternative: pd.DataFrame) -> pd.DataFrame:
    """``nucleus_detection_lookup_v1``: nuclei with a usable root from the alternative points."""
    view = nucleus[["id", "created", "valid", "volume", "pt_supervoxel_id", "pt_root_id",
                    "pt_position_x", "pt_position_y", "pt_position_z"]].copy()
    alt = alternative.set_index("target_id")
    fix = view["pt_root_id"].eq(0) & view["id"].isin(alt.index)
    view.loc[fix, "pt_supervoxel_id"] = alt.loc[view.loc[fix, "id"], "pt_supervoxel_id"].to_numpy()
    view.loc[fix, "pt_root_id"] = alt.loc[view.loc[fix, "id"], "pt_root_id"].to_numpy()
    return view.reset_index(drop=True)


def noisy_labels(true_type: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Classifier noise: a ``rate`` share of neurons get another type of the same class."""
    out = np.asarray(true_type, dtype=object).copy()
    flip = rng.random(out.size) < rate
    for pool in (EXC_TYPES, INH_TYPES):
        idx = np.flatnonzero(flip & np.isin(out, pool))
        out[idx] = np.asarray(pool, dtype=object)[rng.integers(0, len(pool), size=idx.size)]
    return out


def days(n: float) -> float:
    return float(timedelta(days=n).total_seconds())
