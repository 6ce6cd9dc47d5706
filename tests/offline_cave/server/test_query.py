"""Unit tests of the filter -> DuckDB SQL translation and of the schema definitions."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from offline_cave.server.data import schemas
from offline_cave.server.data.query import (
    QueryBuilder,
    QueryError,
    Source,
    format_resolution,
    qstring,
)
from offline_cave.server.http import status_of
from tests.fixtures.sample_fixture import build_fixture


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory):
    return build_fixture(tmp_path_factory.mktemp("q"))


def src(fx, table: str, version: int = 1822, join: str | None = None) -> Source:
    path = Path(fx.ds_dir) / f"v{version}" / f"{table}.parquet"
    return Source(name=table, from_sql=f"read_parquet({qstring(str(path))})",
                  schema=pq.read_schema(path), voxel_resolution=(4.0, 4.0, 40.0),
                  join_column=join)


def run(fx, sources: list[Source], body: dict, **kw):
    built = QueryBuilder(sources, body, row_cap=kw.pop("row_cap", 1000), **kw).build()
    con = duckdb.connect()
    return built, con.sql(built.sql, params=built.params or None).to_arrow_table().to_pandas()


def frame(fx, table: str, version: int = 1822):
    return pq.read_table(Path(fx.ds_dir) / f"v{version}" / f"{table}.parquet").to_pandas()


def test_all_columns_in_stored_order(fx) -> None:
    built, df = run(fx, [src(fx, "synapses_pni_2")], {})
    assert list(df.columns) == list(frame(fx, "synapses_pni_2").columns)
    assert built.dataframe_resolution == (4.0, 4.0, 40.0)
    assert format_resolution(built.dataframe_resolution) == "4.0, 4.0, 40.0"


def test_string_values_are_parameters_not_sql(fx) -> None:
    evil = "x'); DROP TABLE t; --"
    built, df = run(fx, [src(fx, "aibs_metamodel_celltypes_v661")],
                    {"filter_in_dict": {"aibs_metamodel_celltypes_v661": {"cell_type": [evil]}},
                     "filter_regex_dict": {"aibs_metamodel_celltypes_v661":
                                           {"classification_system": "x'; DROP TABLE t; --"}}})
    assert evil not in built.sql and len(df) == 0
    with pytest.raises(QueryError, match="does not exist"):
        run(fx, [src(fx, "aibs_metamodel_celltypes_v661")],
            {"filter_equal_dict": {"aibs_metamodel_celltypes_v661": {'cell_type" OR 1=1 --': 1}}})


def test_coercions(fx) -> None:
    pr = frame(fx, "proofreading_status_and_strategy")
    _, df = run(fx, [src(fx, "proofreading_status_and_strategy")],
                {"filter_equal_dict": {"proofreading_status_and_strategy": {"status_axon": "t"}}})
    assert sorted(df.id) == sorted(pr[pr.status_axon].id)
    nuc = frame(fx, "nucleus_detection_v0")
    _, df = run(fx, [src(fx, "nucleus_detection_v0")],
                {"filter_in_dict": {"nucleus_detection_v0": {"id": [str(nuc.id[0])]}}})
    assert list(df.id) == [nuc.id[0]]
    _, df = run(fx, [src(fx, "nucleus_detection_v0")],
                {"filter_greater_dict": {"nucleus_detection_v0": {"created": "2020-01-01"}}})
    assert len(df) == len(nuc)
    for bad in ({"id": [2**63]}, {"id": [True]}, {"volume": ["x"]}, {"valid": ["maybe"]}):
        with pytest.raises(QueryError):
            run(fx, [src(fx, "nucleus_detection_v0")],
                {"filter_in_dict": {"nucleus_detection_v0": bad}})


def test_null_and_empty_lists(fx) -> None:
    nuc = frame(fx, "nucleus_detection_v0")
    _, df = run(fx, [src(fx, "nucleus_detection_v0")],
                {"filter_in_dict": {"nucleus_detection_v0": {"id": []}}})
    assert len(df) == 0
    _, df = run(fx, [src(fx, "nucleus_detection_v0")],
                {"filter_notin_dict": {"nucleus_detection_v0": {"id": []}}})
    assert len(df) == len(nuc)
    _, df = run(fx, [src(fx, "nucleus_detection_v0")],
                {"filter_equal_dict": {"nucleus_detection_v0": {"superceded_id": None}}})
    assert len(df) == len(nuc)


def test_spatial_bounds_min_inclusive_max_exclusive(fx) -> None:
    nuc = frame(fx, "nucleus_detection_v0")
    p = nuc[["pt_position_x", "pt_position_y", "pt_position_z"]].iloc[0].tolist()
    box = {"filter_spatial_dict": {"nucleus_detection_v0": {"pt_position": [p, [v + 1 for v in p]]}}}
    _, df = run(fx, [src(fx, "nucleus_detection_v0")], box)
    assert nuc.id[0] in set(df.id)
    box = {"filter_spatial_dict": {"nucleus_detection_v0": {"pt": [[v - 1 for v in p], p]}}}
    _, df = run(fx, [src(fx, "nucleus_detection_v0")], box)
    assert nuc.id[0] not in set(df.id)


def test_desired_resolution_scales_positions_only(fx) -> None:
    nuc = frame(fx, "nucleus_detection_v0")
    built, df = run(fx, [src(fx, "nucleus_detection_v0")], {"desired_resolution": [8, 8, 80]})
    np.testing.assert_allclose(df.pt_position_x, nuc.pt_position_x / 2)
    np.testing.assert_allclose(df.pt_position_z, nuc.pt_position_z / 2)
    assert df.pt_position_x.dtype == np.float64 and df.id.dtype == np.int64
    assert built.dataframe_resolution == (8.0, 8.0, 80.0)
    for bad in ([1, 1], [0, 1, 1], ["a", 1, 1], [float("inf"), 1, 1]):
        with pytest.raises(QueryError, match="desired_resolution"):
            run(fx, [src(fx, "nucleus_detection_v0")], {"desired_resolution": bad})


def test_join_suffixes_and_column_order(fx) -> None:
    ct = src(fx, "aibs_metamodel_celltypes_v661", join="target_id")
    nuc = src(fx, "nucleus_detection_v0", join="id")
    _, df = run(fx, [ct, nuc], {"suffix_map": {"aibs_metamodel_celltypes_v661": "",
                                               "nucleus_detection_v0": "_ref"}})
    assert list(df.columns[:4]) == ["id", "created", "superceded_id", "valid"]
    assert list(df.columns[-9:-6]) == ["pt_position_x", "pt_position_y", "pt_position_z"]
    assert (df.target_id == df.id_ref).all()
    _, df = run(fx, [ct, nuc], {"suffix_map": {"aibs_metamodel_celltypes_v661": "_ref",
                                               "nucleus_detection_v0": ""}})
    assert list(df.columns[:5]) == ["id", "created", "superceded_id", "valid", "volume"]
    assert (df.id == df.target_id).all()
    _, df = run(fx, [ct, nuc], {"select_column_map": {"aibs_metamodel_celltypes_v661": ["cell_type"],
                                                      "nucleus_detection_v0": ["id", "pt_position"]}})
    assert list(df.columns) == ["cell_type", "id", "pt_position_x", "pt_position_y",
                                "pt_position_z"]
    with pytest.raises(QueryError, match="suffixes must differ"):
        run(fx, [ct, nuc], {"suffixes": ["", ""]})
    with pytest.raises(QueryError, match="not part of this query"):
        run(fx, [ct, nuc], {"suffix_map": {"nope": "_x"}})


def test_filter_on_joined_table_column_is_forgiven(fx) -> None:
    ct = src(fx, "aibs_metamodel_celltypes_v661", join="target_id")
    nuc = src(fx, "nucleus_detection_v0", join="id")
    root = int(frame(fx, "nucleus_detection_v0").pt_root_id[0])
    _, df = run(fx, [ct, nuc], {"filter_in_dict": {"aibs_metamodel_celltypes_v661":
                                                   {"pt_root_id": [root]}}})
    assert set(df.pt_root_id) == {root}


def test_count_limit_cap_and_sample(fx) -> None:
    syn = frame(fx, "synapses_pni_2")
    built, df = run(fx, [src(fx, "synapses_pni_2")], {}, count_only=True)
    assert df["count"][0] == len(syn)
    built, df = run(fx, [src(fx, "synapses_pni_2")], {}, row_cap=10)
    assert len(df) == 11 and built.row_cap == 10  # one extra row tells the route to truncate
    built, df = run(fx, [src(fx, "synapses_pni_2")], {"limit": 3, "offset": 5}, row_cap=10)
    assert list(df.id) == list(syn.id[5:8])
    _, df = run(fx, [src(fx, "synapses_pni_2")], {}, random_sample=4)
    assert len(df) == 4


@pytest.mark.parametrize("body", [
    {"filter_in_dict": []}, {"filter_in_dict": {"synapses_pni_2": []}},
    {"filter_in_dict": {"synapses_pni_2": {"size": 5}}},
    {"filter_greater_dict": {"synapses_pni_2": {"pre_pt_position": 3}}},
    {"filter_regex_dict": {"synapses_pni_2": {"size": "1"}}},
    {"filter_spatial_dict": {"synapses_pni_2": {"size": [[0, 0, 0], [1, 1, 1]]}}},
    {"filter_spatial_dict": {"synapses_pni_2": {"ctr_pt_position": [[0, 0, "a"], [1, 1, 1]]}}},
    {"select_columns": "id"}, {"select_columns": []}, {"limit": 0}, {"offset": -1},
    {"limit": "ten"}, {"filter_equal_dict": {"synapses_pni_2": {"size": [1, 2]}}},
])
def test_malformed_bodies_raise_query_error(fx, body: dict) -> None:
    with pytest.raises(QueryError) as err:
        run(fx, [src(fx, "synapses_pni_2")], body)
    assert status_of(err.value) == 400 and err.value.message


def test_builtin_schemas_are_parseable_by_the_table_manager_rules() -> None:
    for name in schemas.known_schema_names():
        d = schemas.schema_definition(name)
        main = d["definitions"][d["$ref"].split("/")[-1]]
        for prop, spec in main["properties"].items():
            if "$ref" in spec:
                assert spec["$ref"] in ("#/definitions/BoundSpatialPoint",
                                        "#/definitions/SpatialPoint")
            else:
                assert "type" in spec, (name, prop)
            if spec.get("type") == "number":
                assert spec.get("format") == "float", (name, prop)


def test_schema_derived_from_columns(fx) -> None:
    schema = pq.read_schema(Path(fx.ds_dir) / "v1822" / "proofreading_status_and_strategy.parquet")
    fields = dict(schemas.fields_from_columns([(f.name, str(f.type)) for f in schema]))
    assert fields == {"pt": "bound", "valid_id": "integer", "status_dendrite": "boolean",
                      "status_axon": "boolean", "strategy_dendrite": "string",
                      "strategy_axon": "string"}
    syn = pq.read_schema(Path(fx.ds_dir) / "v1822" / "synapses_pni_2.parquet")
    fields = dict(schemas.fields_from_columns([(f.name, str(f.type)) for f in syn]))
    assert fields["ctr_pt"] == "spatial" and fields["pre_pt"] == "bound"


def test_fractional_bounds_on_integer_columns(fx) -> None:
    syn = frame(fx, "synapses_pni_2")
    cut = float(syn["size"].median()) + 0.5
    for kind, op in (("greater", "__gt__"), ("less", "__lt__"), ("greater_equal", "__ge__"),
                     ("less_equal", "__le__")):
        _, df = run(fx, [src(fx, "synapses_pni_2")],
                    {f"filter_{kind}_dict": {"synapses_pni_2": {"size": cut}}})
        assert sorted(df.id) == sorted(syn[getattr(syn["size"], op)(cut)].id), kind
    p = syn[["ctr_pt_position_x", "ctr_pt_position_y", "ctr_pt_position_z"]].iloc[0].values
    box = [[float(v) - 0.5 for v in p], [float(v) + 0.5 for v in p]]
    built, df = run(fx, [src(fx, "synapses_pni_2")],
                    {"filter_spatial_dict": {"synapses_pni_2": {"ctr_pt_position": box}}})
    assert syn.id[0] in set(df.id) and "DOUBLE" not in built.sql
