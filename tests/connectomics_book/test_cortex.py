"""connectomics_book.cortex: cortical frame (standard_transform) and layer lines."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # this test process only; pages keep their inline backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from standard_transform import minnie_transform, v1dd_transform  # noqa: E402

from connectomics_book.constants import DATASTACK, V1DD_DATASTACK  # noqa: E402
from connectomics_book.cortex import (  # noqa: E402
    add_cortical_position,
    cortical_transform,
    depth_um,
    draw_layers,
    to_cortical_um,
)

#: The pia point of standard_transform's minnie65 frame (its own definition, in nm).
MINNIE_PIA_NM = np.array([183013, 83535, 21480]) * [4, 4, 45]


def test_matches_standard_transform():
    points = np.array([[700_000.0, 500_000.0, 800_000.0], [900_000.0, 1_000_000.0, 700_000.0]])
    np.testing.assert_allclose(to_cortical_um(points), minnie_transform().apply(points))
    np.testing.assert_allclose(
        to_cortical_um(points, V1DD_DATASTACK), v1dd_transform().apply(points)
    )


def test_depth_is_zero_at_the_pia_and_grows_downwards():
    assert depth_um([MINNIE_PIA_NM])[0] == pytest.approx(0.0, abs=1e-6)
    deeper = MINNIE_PIA_NM + [0, 100_000, 0]  # 100 um further along the volume's y axis
    assert depth_um([deeper])[0] == pytest.approx(100 * np.cos(np.radians(5)), rel=1e-3)


def test_voxels_and_columns_of_lists_are_accepted():
    voxels = np.array([[175_000, 120_000, 21_000], [180_000, 200_000, 22_000]])
    np.testing.assert_allclose(
        to_cortical_um(voxels, resolution="vx"), to_cortical_um(voxels * [4, 4, 40])
    )
    column = pd.Series([list(v * [4, 4, 40]) for v in voxels])
    np.testing.assert_allclose(to_cortical_um(column), to_cortical_um(voxels * [4, 4, 40]))
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        to_cortical_um(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="no cortical transform"):
        cortical_transform("flywire_fafb_public")


def test_add_cortical_position_adds_columns_and_keeps_the_input():
    df = pd.DataFrame({"pt_position": [list(MINNIE_PIA_NM), list(MINNIE_PIA_NM + [0, 50_000, 0])]})
    out = add_cortical_position(df)
    assert list(df.columns) == ["pt_position"]
    assert {"x_um", "depth_um", "z_um"} <= set(out.columns)
    assert out["depth_um"].iloc[0] == pytest.approx(0.0, abs=1e-6)
    assert out["depth_um"].iloc[1] > 49
    pre = add_cortical_position(df, prefix="pre_")
    assert "pre_depth_um" in pre.columns
    empty = add_cortical_position(df.iloc[:0])
    assert len(empty) == 0 and "depth_um" in empty.columns
    assert add_cortical_position(df, datastack=DATASTACK)["x_um"].notna().all()


def test_draw_layers_draws_the_pia_and_every_bottom():
    bottoms = pd.Series({"L1": 100.0, "L2/3": 300.0, "L4": 400.0, "L5": 600.0, "L6": 850.0})
    fig, ax = plt.subplots()
    draw_layers(ax, bottoms)
    ys = sorted(line.get_ydata()[0] for line in ax.get_lines())
    assert ys == [0.0, 100.0, 300.0, 400.0, 600.0, 850.0]
    assert [t.get_text() for t in ax.texts] == list(bottoms.index)
    assert ax.texts[0].get_position()[1] == pytest.approx(50.0)
    with pytest.raises(ValueError, match="increase"):
        draw_layers(ax, bottoms.iloc[::-1])
    plt.close(fig)
