"""Acceptance tests of the generated sample (issue "Sample cortex").

The biology checks read the *served* files (tables and skeletons), the way a student's
analysis would, and recover what the generator planted. Tolerances are stated in each test.
They run on the default sample (``OFFLINE_CAVE_DATA``, default ``sample-data``), generated
on first use; the cache and determinism checks use tiny samples in temporary directories.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import standard_transform
from scipy.spatial import cKDTree

from offline_cave.contract import layout
from offline_cave.generator.pipeline import SampleError, ensure_sample
from tests.fixtures.paths import REPO_ROOT

DATA = Path(os.environ.get("OFFLINE_CAVE_DATA", REPO_ROOT / "sample-data"))
PINNED = 1300


@pytest.fixture(scope="session")
def ds() -> Path:
    return ensure_sample(DATA, "minnie65_public", deep=False, log=lambda *_: None)


def read(ds: Path, table: str, version: int = PINNED) -> pd.DataFrame:
    return pq.read_table(ds / f"v{version}" / f"{table}.parquet").to_pandas()


@pytest.fixture(scope="session")
def typed(ds) -> pd.DataFrame:
    """Cell types joined to nuclei, multi-soma roots dropped (as the tutorials do)."""
    nuc = read(ds, "nucleus_detection_v0")
    ct = read(ds, "aibs_metamodel_celltypes_v661")
    merged = ct.merge(nuc[["id", "pt_root_id", "pt_position_x", "pt_position_y",
                           "pt_position_z"]], left_on="target_id", right_on="id",
                      suffixes=("", "_nuc"))
    merged = merged[merged.pt_root_id > 0].drop_duplicates("pt_root_id", keep=False)
    pos = merged[["pt_position_x", "pt_position_y", "pt_position_z"]].to_numpy()
    merged["depth_um"] = standard_transform.minnie_transform("vx").apply(pos)[:, 1]
    return merged.reset_index(drop=True)


@pytest.fixture(scope="session")
def synapses(ds) -> pd.DataFrame:
    return read(ds, "synapses_pni_2")


# ----------------------------------------------------------------------------- schemas
# column lists from datasets-facts (§2.1-2.6), positions split as served
SPLIT = ("_x", "_y", "_z")


def _split(name):
    return [name + s for s in SPLIT]


EXPECTED_COLUMNS = {
    "nucleus_detection_v0": ["id", "created", "superceded_id", "valid", "volume",
                             "pt_supervoxel_id", "pt_root_id", *_split("pt_position"),
                             *_split("bb_start_position"), *_split("bb_end_position")],
    "synapses_pni_2": ["id", "created", "superceded_id", "valid", "size", "pre_pt_supervoxel_id",
                       "pre_pt_root_id", "post_pt_supervoxel_id", "post_pt_root_id",
                       *_split("pre_pt_position"), *_split("post_pt_position"),
                       *_split("ctr_pt_position")],
    "aibs_metamodel_celltypes_v661": ["id", "created", "superceded_id", "valid", "target_id",
                                      "classification_system", "cell_type"],
    "aibs_metamodel_mtypes_v661_v2": ["id", "created", "superceded_id", "valid", "target_id",
                                      "classification_system", "cell_type"],
    "allen_v1_column_types_slanted_ref": ["id", "created", "superceded_id", "valid",
                                          "target_id", "classification_system", "cell_type"],
    "nucleus_ref_neuron_svm": ["id", "created", "superceded_id", "valid", "target_id",
                               "classification_system", "cell_type"],
    "proofreading_status_and_strategy": ["id", "created", "superceded_id", "valid",
                                         *_split("pt_position"), "valid_id", "status_dendrite",
                                         "status_axon", "strategy_dendrite", "strategy_axon",
                                         "pt_supervoxel_id", "pt_root_id"],
    "coregistration_manual_v4": ["id", "created", "superceded_id", "valid", "target_id",
                                 "session", "scan_idx", "unit_id", "field", "residual", "score"],
    "functional_properties_v3_bcm": ["id", "created", "superceded_id", "valid", "target_id",
                                     "session", "scan_idx", "unit_id", "pref_ori", "pref_dir",
                                     "gOSI", "gDSI", "cc_abs"],
}
VOCAB = {
    "aibs_metamodel_celltypes_v661": {"23P", "4P", "5P-IT", "5P-ET", "5P-NP", "6P-IT", "6P-CT",
                                      "BC", "MC", "BPC", "NGC", "astrocyte", "oligo",
                                      "microglia", "OPC", "pericyte"},
    "aibs_metamodel_mtypes_v661_v2": {"L2a", "L2b", "L3a", "L3b", "L3c", "L4a", "L4b", "L4c",
                                      "L5a", "L5b", "L5ET", "L5NP", "L6a", "L6b", "L6c", "L6CT",
                                      "L6wm", "PTC", "DTC", "STC", "ITC"},
    # the column's labels, the rare ones included (datasets-facts §2.3)
    "allen_v1_column_types_slanted_ref": {"23P", "4P", "5P-IT", "5P-ET", "5P-NP", "6P-IT",
                                          "6P-CT", "BC", "BPC", "MC", "Unsure", "Unsure E",
                                          "Unsure I", "WM-P"},
}


@pytest.mark.parametrize("table", sorted(EXPECTED_COLUMNS))
def test_table_columns_match_the_fact_sheet(ds, table):
    schema = pq.read_schema(ds / f"v{PINNED}" / f"{table}.parquet")
    assert schema.names == EXPECTED_COLUMNS[table]
    for name in schema.names:
        if name.endswith(("root_id", "supervoxel_id")) or name == "id":
            assert str(schema.field(name).type) == "int64", name
    assert str(schema.field("created").type) == "timestamp[us, tz=UTC]"


@pytest.mark.parametrize("table", sorted(VOCAB))
def test_vocabularies_are_the_real_ones(ds, table):
    assert set(read(ds, table).cell_type) == VOCAB[table]


def test_digital_twin_table_exists_only_from_1507(ds):
    tables = json.loads((ds / layout.TABLES_JSON).read_text())
    twin = tables["digital_twin_properties_bcm_coreg_v4"]
    assert twin["introduced"] == 1507 and list(twin["row_counts"]) == ["1822"]
    deg = read(ds, "digital_twin_properties_bcm_coreg_v4", 1822)
    assert deg.pref_ori.between(0, 180).all() and deg.pref_ori.max() > np.pi  # degrees
    rad = read(ds, "functional_properties_v3_bcm")
    assert rad.pref_ori.between(0, np.pi).all()  # radians


def test_versions_are_listed_with_real_dates(ds):
    versions = {v["version"]: v for v in json.loads((ds / layout.VERSIONS_JSON).read_text())}
    assert versions[1300]["time_stamp"] == "2025-01-13T10:10:01.286229"
    assert versions[117]["time_stamp"] == "2021-06-11T08:10:00.215114"
    assert {v for v, m in versions.items() if m["materialized"]} == {1300, 1822}


# ----------------------------------------------------------------------------- ids
def test_id_formats(ds, synapses):
    nuc = read(ds, "nucleus_detection_v0")
    roots = np.concatenate([synapses.pre_pt_root_id, synapses.post_pt_root_id,
                            nuc.pt_root_id[nuc.pt_root_id > 0]])
    assert np.all(roots >> 56 == 12)
    assert {len(str(r)) for r in roots[:1000]} == {18}
    svs = np.concatenate([synapses.pre_pt_supervoxel_id, nuc.pt_supervoxel_id[nuc.pt_supervoxel_id > 0]])
    assert np.all(svs >> 56 == 1)
    # supervoxel chunk coordinates decode to the point's position (datasets-facts §1.4)
    x = synapses.pre_pt_position_x.to_numpy()
    cx = (synapses.pre_pt_supervoxel_id.to_numpy() >> 46) & 1023
    assert np.array_equal(cx, np.floor((x / 2 - 26385) / 256).astype(int))
    # nucleus ids are sparse 6-digit-ish ids; some nuclei miss the segmentation (root 0)
    assert nuc.id.is_unique and nuc.id.min() >= 1000 and nuc.id.max() < 1_000_000
    zero = (nuc.pt_root_id == 0).mean()
    assert 0.03 < zero < 0.10, zero
    assert (nuc.pt_supervoxel_id[nuc.pt_root_id == 0] == 0).all()
    # a few roots carry two nuclei (merged somata), as in the real data
    multi = nuc[nuc.pt_root_id > 0].pt_root_id.value_counts()
    assert 5 <= (multi == 2).sum() <= 0.03 * len(nuc)


def test_sample_size_is_a_tenth_of_the_volume(ds, synapses):
    nuc = read(ds, "nucleus_detection_v0")
    assert len(nuc) >= 10_000
    assert 1_000_000 <= len(synapses) <= 6_000_000


# ----------------------------------------------------------------------------- biology
def test_class_shares(typed):
    share = typed.classification_system.value_counts(normalize=True)
    # datasets-facts §2.3: 70.6 % E, 8.7 % I, 20.7 % non-neuronal; tolerance +-2 points
    assert share["excitatory_neuron"] == pytest.approx(0.706, abs=0.02)
    assert share["inhibitory_neuron"] == pytest.approx(0.087, abs=0.02)
    assert share["nonneuron"] == pytest.approx(0.207, abs=0.02)


def test_per_layer_type_proportions(typed):
    bins = [0, 104, 300, 409, 619, 831, 2000]
    typed = typed.assign(layer=pd.cut(typed.depth_um, bins, labels=["L1", "L23", "L4", "L5",
                                                                       "L6", "WM"]))
    neurons = typed[typed.classification_system != "nonneuron"]
    by_layer = pd.crosstab(neurons.layer, neurons.cell_type, normalize="index")
    # each excitatory type dominates its own layer (>= 70 % of that layer's E cells; the
    # classifier noise is 1 %), L1 neurons are mostly NGC, L2/3 excitatory cells are 23P
    exc = neurons[neurons.classification_system == "excitatory_neuron"]
    exc_by_layer = pd.crosstab(exc.layer, exc.cell_type, normalize="index")
    assert exc_by_layer.loc["L23", "23P"] > 0.9
    assert exc_by_layer.loc["L4", "4P"] > 0.9
    assert exc_by_layer.loc["L5", ["5P-IT", "5P-ET", "5P-NP"]].sum() > 0.9
    assert exc_by_layer.loc["L6", ["6P-IT", "6P-CT"]].sum() > 0.9
    assert by_layer.loc["L1", "NGC"] > 0.7
    # inhibitory share of neurons ~11 % overall (datasets-facts §3.3), +-3 points
    inh = (neurons.classification_system == "inhibitory_neuron").mean()
    assert inh == pytest.approx(0.11, abs=0.03)


def test_synapse_sizes_are_lognormal_multiples_of_four(synapses):
    size = synapses["size"].to_numpy()
    assert (size % 4 == 0).all() and size.min() > 0
    # datasets-facts §3.6: ln(size) mean 7.94, sd 1.17; tolerance 0.05
    assert np.log(size).mean() == pytest.approx(7.94, abs=0.05)
    assert np.log(size).std() == pytest.approx(1.17, abs=0.05)


def _path_distances(skel: pd.DataFrame) -> np.ndarray:
    xyz = skel[["x", "y", "z"]].to_numpy(np.float64)
    parent = skel.parent.to_numpy()
    dist = np.zeros(len(parent))
    step = np.linalg.norm(xyz[1:] - xyz[parent[1:]], axis=1)
    for i in range(1, len(parent)):  # parents precede children
        dist[i] = dist[parent[i]] + step[i - 1]
    return dist / 1000.0


def test_basket_inputs_are_closer_to_the_soma_than_martinotti_inputs(ds, typed, synapses):
    cell_type = typed.set_index("pt_root_id").cell_type
    nucleus_of_root = typed.set_index("pt_root_id").target_id
    pyramids = typed[typed.cell_type.isin(["23P", "4P", "5P-IT"])].pt_root_id.to_numpy()[:120]
    inputs = synapses[synapses.post_pt_root_id.isin(pyramids)].copy()
    inputs["pre_type"] = inputs.pre_pt_root_id.map(cell_type)
    inputs = inputs[inputs.pre_type.isin(["BC", "MC"])]
    skeletons = pq.read_table(ds / layout.SKELETONS_PARQUET,
                              filters=[("nucleus_id", "in", list(nucleus_of_root[pyramids]))]
                              ).to_pandas()
    rows = []
    for root, group in inputs.groupby("post_pt_root_id"):
        skel = skeletons[skeletons.nucleus_id == nucleus_of_root[root]]
        dist = _path_distances(skel)
        post_nm = group[["post_pt_position_x", "post_pt_position_y",
                         "post_pt_position_z"]].to_numpy() * [4, 4, 40]
        xyz = skel[["x", "y", "z"]].to_numpy()
        gap, nearest = cKDTree(xyz).query(post_nm)
        # or on the soma's surface (a soma synapse: 4-7 um from node 0, the soma centre)
        on_soma = np.abs(np.linalg.norm(post_nm - xyz[0], axis=1) - skel.radius.iat[0])
        assert np.median(np.minimum(gap, on_soma)) < 5000, "synapses sit on the post cell"
        rows.append(pd.DataFrame({"pre_type": group.pre_type.to_numpy(), "dist": dist[nearest]}))
    by_type = pd.concat(rows).groupby("pre_type").dist.median()
    # planted: basket -> soma/proximal, Martinotti -> distal; require a 2x separation
    assert by_type["BC"] * 2 < by_type["MC"], by_type


def test_connection_probability_decays_with_distance(ds, typed, synapses):
    proof = read(ds, "proofreading_status_and_strategy")
    pre_roots = set(proof[proof.status_axon].pt_root_id) & set(typed.pt_root_id)
    neurons = typed[typed.classification_system != "nonneuron"]
    pos = neurons[["pt_position_x", "pt_position_y", "pt_position_z"]].to_numpy() * [4, 4, 40]
    roots = neurons.pt_root_id.to_numpy()
    connected = set(zip(synapses.pre_pt_root_id, synapses.post_pt_root_id, strict=True))
    is_pre = np.isin(roots, list(pre_roots))
    dists, conn = [], []
    for i in np.flatnonzero(is_pre):
        d = np.linalg.norm(pos - pos[i], axis=1) / 1000
        near = (d < 400) & (roots != roots[i])
        dists.append(d[near])
        conn.append(np.array([(roots[i], r) in connected for r in roots[near]]))
    dists, conn = np.concatenate(dists), np.concatenate(conn)
    bins = [0, 50, 100, 200, 400]
    p = [conn[(dists >= a) & (dists < b)].mean() for a, b in zip(bins, bins[1:], strict=False)]
    # monotone decay, and the nearest bin at least 3x the farthest
    assert all(a > b for a, b in zip(p, p[1:], strict=False)), p
    assert p[0] > 3 * p[-1], p


def test_like_to_like_among_coregistered_cells(ds, typed, synapses):
    func = read(ds, "functional_properties_v3_bcm").sort_values("cc_abs")
    func = func.drop_duplicates("target_id", keep="last")
    root_of = typed.set_index("target_id").pt_root_id
    func = func[func.target_id.isin(root_of.index) & (func.gOSI > 0.25)]
    ori = pd.Series(func.pref_ori.to_numpy(), index=root_of[func.target_id].to_numpy())
    ee = synapses[synapses.pre_pt_root_id.isin(ori.index) & synapses.post_pt_root_id.isin(ori.index)
                  & (synapses.pre_pt_root_id != synapses.post_pt_root_id)]
    pairs = ee.groupby(["pre_pt_root_id", "post_pt_root_id"]).size().reset_index()
    d_conn = np.abs(ori[pairs.pre_pt_root_id].to_numpy() - ori[pairs.post_pt_root_id].to_numpy())
    d_conn = np.minimum(d_conn, np.pi - d_conn)
    rng = np.random.default_rng(0)
    shuffled = ori.to_numpy()[rng.integers(0, len(ori), size=(2, 200_000))]
    d_null = np.abs(shuffled[0] - shuffled[1])
    d_null = np.minimum(d_null, np.pi - d_null)
    # connected pairs are more similarly tuned than random pairs of the same cells: the mean
    # orientation difference is at least 3 degrees smaller (null mean is ~45 degrees)
    assert len(pairs) > 200
    assert np.degrees(d_null.mean() - d_conn.mean()) > 3.0, (d_conn.mean(), d_null.mean())


# ----------------------------------------------------------------------------- versions
def test_edits_change_roots_between_versions(ds):
    old = read(ds, "nucleus_detection_v0", 1300).set_index("id").pt_root_id
    new = read(ds, "nucleus_detection_v0", 1822).set_index("id").pt_root_id
    changed = (old != new) & (old > 0)
    assert 10 <= changed.sum() <= 0.1 * len(old)
    lineage = pq.read_table(ds / layout.LINEAGE_PARQUET).to_pandas()
    # every changed root is in the lineage, as a parent of the new one (possibly via steps)
    children = lineage.groupby("parent_root_id").child_root_id.apply(list).to_dict()
    for before, after in list(zip(old[changed], new[changed], strict=True))[:50]:
        frontier, seen = [before], set()
        while frontier:
            node = frontier.pop()
            seen.add(node)
            frontier.extend(children.get(node, []))
        assert after in seen


def test_every_listed_root_serves_a_cell_the_table_lists_with_it(ds):
    """A root's cell (roots.parquet nucleus_id: its skeleton and mesh) is one of the nuclei the
    nucleus table lists with that root, also for merged two-soma objects."""
    roots = pq.read_table(ds / layout.ROOTS_PARQUET).to_pandas().set_index("root_id")
    for version in (1300, 1822):
        nuc = read(ds, "nucleus_detection_v0", version)
        nuc = nuc[nuc.pt_root_id > 0]
        listed = nuc.groupby("pt_root_id").id.apply(set)
        served = roots.loc[listed.index, "nucleus_id"]
        wrong = [r for r, cell in served.items() if cell not in listed[r]]
        assert not wrong, f"v{version}: {len(wrong)} roots serve a cell not listed with them"
    assert (listed.apply(len) == 2).sum() >= 10, "the sample has two-soma objects"


# ----------------------------------------------------------------------------- cache
def test_generation_is_deterministic_and_cached(tmp_path):
    logs: list[str] = []
    a = ensure_sample(tmp_path / "a", scale=0.05, log=logs.append)
    b = ensure_sample(tmp_path / "b", scale=0.05, log=logs.append)
    c = ensure_sample(tmp_path / "c", scale=0.05, seed=1, log=logs.append)
    files = lambda d: json.loads((d / layout.MANIFEST).read_text())["files"]  # noqa: E731
    tables = [k for k in files(a) if k.endswith(".parquet")]
    assert len(tables) > 20
    assert {k: files(a)[k]["sha256"] for k in tables} == {k: files(b)[k]["sha256"] for k in tables}
    static = [k for k in files(a) if k.startswith(layout.STATIC_DIR + "/")]
    assert any(k.endswith(".shard") for k in static)  # the static meshes, byte-identical too
    assert {k: files(a)[k]["sha256"] for k in static} == {k: files(b)[k]["sha256"] for k in static}
    assert files(a)["v1300/synapses_pni_2.parquet"] != files(c)["v1300/synapses_pni_2.parquet"]
    logs.clear()
    assert ensure_sample(tmp_path / "a", scale=0.05, log=logs.append) == a
    assert "cached" in logs[0]


def test_corrupt_or_partial_cache_is_rebuilt(tmp_path):
    ds = ensure_sample(tmp_path, scale=0.05, log=lambda *_: None)
    target = ds / "v1300" / "nucleus_detection_v0.parquet"
    good = target.read_bytes()
    target.write_bytes(good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])  # flip one byte
    logs: list[str] = []
    ensure_sample(tmp_path, scale=0.05, log=logs.append)
    assert "corrupt" in logs[0] and target.read_bytes() == good
    (ds / layout.MANIFEST).unlink()  # as if generation had died before finishing
    logs.clear()
    ensure_sample(tmp_path, scale=0.05, log=logs.append)
    assert "partial" in logs[0] and (ds / layout.MANIFEST).exists()
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".") and p.suffix != ".lock"]
    assert not leftovers, "no temporary directories left behind"


@pytest.mark.parametrize("kwargs, message", [
    ({"datastack": "minnie65_private"}, "unknown datastack"),
    ({"scale": 0.0}, "scale"),
    ({"scale": 1000.0}, "scale"),
    ({"seed": -1}, "seed"),
])
def test_bad_parameters_are_refused_up_front(tmp_path, kwargs, message):
    with pytest.raises(SampleError, match=message):
        ensure_sample(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir()), "nothing written"


def test_a_sample_that_cannot_fit_is_refused_and_the_old_one_kept(tmp_path, monkeypatch):
    from offline_cave.generator import resources

    ds = ensure_sample(tmp_path, scale=0.05, log=lambda *_: None)
    manifest = (ds / layout.MANIFEST).read_bytes()
    need_memory, need_disk = resources.estimate_gb("minnie65_public", 0.06)
    monkeypatch.setattr(resources, "available_memory_gb", lambda: need_memory * 0.9)
    with pytest.raises(SampleError, match=r"needs about [\d.]+ GB of memory"):
        ensure_sample(tmp_path, scale=0.06, log=lambda *_: None)
    monkeypatch.setattr(resources, "available_memory_gb", lambda: None)  # unknown: not checked
    monkeypatch.setattr(resources, "free_disk_gb", lambda _: need_disk * 0.5)
    with pytest.raises(SampleError, match="GB of disk"):
        ensure_sample(tmp_path, scale=0.06, log=lambda *_: None)
    assert (ds / layout.MANIFEST).read_bytes() == manifest, "the existing sample is untouched"
    assert ensure_sample(tmp_path, scale=0.05, log=lambda *_: None) == ds  # cached: no check
    rebuilt = ensure_sample(tmp_path, scale=0.06, log=lambda *_: None, check_resources=False)
    assert json.loads((rebuilt / layout.MANIFEST).read_text())["scale"] == 0.06


def test_resource_estimates_cover_the_measured_runs():
    from offline_cave.generator import resources

    # bench_generate.py, 2026-11-28: minnie 1.97 GB peak / 1.03 GB disk at scale 1,
    # 17.8 GB / 13.2 GB at scale 10; the estimates must not be below what was measured
    # (2026-12-03, with the static meshes, imagery and bulk stages: 2.7 GB / 1.79 GB)
    assert resources.estimate_gb("minnie65_public", 1)[0] >= 2.7
    # 2026-12-03 RSS sampling: 2.8 GB at scale 1; at scale 2 the synapse builder alone
    # reached 2.76 GB before the run was stopped, >= 1.36 GB per unit of scale
    assert resources.estimate_gb("minnie65_public", 1)[0] >= 2.8
    assert resources.estimate_gb("minnie65_public", 2)[0] >= 2.76
    assert resources.per_scale_gb("minnie65_public")[0] >= 1.36
    assert resources.estimate_gb("minnie65_public", 1)[1] >= 1.79
    assert resources.estimate_gb("minnie65_public", 10)[0] >= 17.8
    assert resources.estimate_gb("minnie65_public", 10)[1] >= 13.2
    assert resources.estimate_gb("v1dd_public", 1)[1] >= 0.311
    # bench_scale.py 2026-12-04: scale 2 peaks at 3.86 GB (the tables stage), 3.91 GB on disk
    assert resources.estimate_gb("minnie65_public", 2)[0] >= 3.86
    assert resources.estimate_gb("minnie65_public", 2)[1] >= 3.91


# ----------------------------------------------------------------------------- v1dd_public
V1DD_VERSION = 1196


@pytest.fixture(scope="session")
def v1dd() -> Path:
    return ensure_sample(DATA, "v1dd_public", deep=False, log=lambda *_: None)


def test_v1dd_tables_and_vocabulary(v1dd):
    names = {p.stem for p in (v1dd / f"v{V1DD_VERSION}").glob("*.parquet")}
    assert {"nucleus_detection_v0", "synapses_v1dd", "neurons_soma_model",
            "cell_type_multifeature_v1", "proofreading_status_and_strategy",
            "functional_coregistration_manual_2", "nucleus_alternative_lookup"} <= names
    types = read(v1dd, "cell_type_multifeature_v1", V1DD_VERSION)
    assert set(types.cell_type) <= {"L2IT", "L3IT", "L4IT", "L5IT", "L5ET", "L5NP", "L6IT",
                                    "L6CT", "L6SP", "PTC", "DTC", "STC", "ITC"}
    assert set(types.classification_system) == {"excitatory", "inhibitory"}
    coreg = read(v1dd, "functional_coregistration_manual_2", V1DD_VERSION)
    assert {"column", "volume", "plane", "roi", "pt_root_id"} <= set(coreg.columns)
    assert "target_id" not in coreg.columns  # a bound-point table, not a reference table
    assert (coreg.residual == 0).all() and (coreg.score == 0).all()
    soma_model = read(v1dd, "neurons_soma_model", V1DD_VERSION)
    assert soma_model.pt_root_id.is_unique  # multi-soma objects excluded


def test_v1dd_frames_and_resolutions(v1dd):
    tables = json.loads((v1dd / layout.TABLES_JSON).read_text())
    assert tables["synapses_v1dd"]["voxel_resolution"] == [9.7, 9.7, 45.0]
    assert tables["nucleus_detection_v0"]["voxel_resolution"] == [9.0, 9.0, 45.0]
    nuc = read(v1dd, "nucleus_detection_v0", V1DD_VERSION)
    pos = nuc[["pt_position_x", "pt_position_y", "pt_position_z"]].to_numpy()
    depth = standard_transform.v1dd_transform("vx").apply(pos)[:, 1]
    assert depth.min() > -5 and 800 < depth.max() < 900  # pia to white matter
    syn = pq.read_table(v1dd / f"v{V1DD_VERSION}" / "synapses_v1dd.parquet",
                        columns=["post_pt_root_id", "post_pt_position_x", "post_pt_position_y",
                                 "post_pt_position_z"]).to_pandas()
    # synapses are stored in 9.7 nm voxels: converted to 9 nm voxels they land on the cells
    syn_depth = standard_transform.v1dd_transform("vx").apply(
        syn[["post_pt_position_x", "post_pt_position_y", "post_pt_position_z"]].to_numpy()
        * [9.7 / 9, 9.7 / 9, 1.0])[:, 1]
    assert syn_depth.min() > -5 and syn_depth.max() < 900


def test_v1dd_coregistration_matches_the_imaged_rois(v1dd):
    coreg = read(v1dd, "functional_coregistration_manual_2", V1DD_VERSION)
    imaged = pq.read_table(v1dd / "sessions" / "imaged_cells.parquet").to_pandas()
    keys = ["column", "volume", "plane", "roi"]
    merged = coreg.merge(imaged, on=keys, how="left", validate="many_to_one")
    assert merged.nucleus_id.notna().all()
    nuc = read(v1dd, "nucleus_detection_v0", V1DD_VERSION).set_index("id")
    # the matched EM cell is the nucleus the ROI was generated from
    assert (nuc.loc[merged.nucleus_id, "pt_position_x"].to_numpy()
            == merged.pt_position_x.to_numpy()).all()
    assert len(list((v1dd / "sessions").glob("*_filtered_*/*.nwb.zarr"))) >= 3


@pytest.mark.parametrize("name", ["minnie65_public", "v1dd_public"])
def test_the_manifest_lists_every_file_the_generator_wrote(name):
    """serve verifies what the manifest lists, so it must list every file: the sessions'
    own MANIFEST.json and ROI truth too (not only the NWB files)."""
    ds_dir = ensure_sample(DATA, name, deep=False, log=lambda *_: None)
    listed = set(json.loads((ds_dir / layout.MANIFEST).read_text())["files"])
    written = {p.relative_to(ds_dir).as_posix() for p in ds_dir.rglob("*") if p.is_file()
               and p.relative_to(ds_dir).parts[0] != layout.CACHE_DIR}
    assert written - {layout.MANIFEST} == listed
