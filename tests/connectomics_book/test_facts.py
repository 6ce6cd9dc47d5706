"""The published facts the Background chapter plots are consistent with the pins."""

from __future__ import annotations

from connectomics_book import constants, facts


def test_pinned_version_is_a_long_term_public_release():
    pinned = [r for r in facts.MICRONS_RELEASES if r.version == constants.MATERIALIZATION_VERSION]
    assert len(pinned) == 1 and pinned[0].long_term


def test_releases_are_in_order():
    versions = [r.version for r in facts.MICRONS_RELEASES]
    dates = [r.date for r in facts.MICRONS_RELEASES]
    assert versions == sorted(set(versions)) and dates == sorted(set(dates))
    assert max(dates) <= constants.AS_OF


def test_layers_tile_the_cortex_from_the_pia():
    layers = facts.VISP_REFERENCE_LAYERS
    assert layers[0].top_um == 0
    assert all(a.bottom_um == b.top_um for a, b in zip(layers, layers[1:], strict=False))
    assert all(layer.bottom_um > layer.top_um for layer in layers)


def test_v1dd_planes_are_16_um_apart_and_columns_tile_800_um():
    for depths in facts.V1DD_VOLUME_PLANE_DEPTHS_UM.values():
        assert len(depths) == facts.V1DD_PLANES_PER_VOLUME
        assert {a - b for a, b in zip(depths, depths[1:], strict=False)} == {
            facts.V1DD_PLANE_SPACING_UM
        }
    origins = facts.v1dd_column_origins_um()
    size = facts.V1DD_COLUMN_SIZE_UM
    assert max(x for x, _ in origins.values()) + size == 2 * size
    assert origins["centre"] == (size / 2, size / 2)
