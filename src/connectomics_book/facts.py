"""Published facts about the two datasets, used by the Background chapter's figures.

Each constant names its source. Nothing here is queried from CAVE: these are the numbers a
figure needs before a student has a client, taken from the public documentation of the
datasets (MICrONS tutorial release manifests, the Allen Institute's SWDB databook and the
Allen mouse VISp reference layer depths).
"""

from __future__ import annotations

import datetime as _dt
from typing import NamedTuple


class Release(NamedTuple):
    """A public materialization of ``minnie65_public``."""

    version: int
    date: _dt.date
    long_term: bool  # a "major" version the maintainers keep available


#: Public MICrONS materializations and their snapshot dates (UTC), from the release
#: manifests of the MICrONS tutorial (``tutorial_book/release_manifests/version-*.ipynb``).
MICRONS_RELEASES: tuple[Release, ...] = (
    Release(117, _dt.date(2021, 6, 11), True),
    Release(343, _dt.date(2022, 2, 24), False),
    Release(661, _dt.date(2023, 4, 6), False),
    Release(795, _dt.date(2023, 8, 23), False),
    Release(943, _dt.date(2024, 1, 22), True),
    Release(1078, _dt.date(2024, 6, 5), False),
    Release(1181, _dt.date(2024, 9, 16), False),
    Release(1300, _dt.date(2025, 1, 13), True),
    Release(1412, _dt.date(2025, 4, 29), False),
    Release(1507, _dt.date(2025, 7, 31), False),
    Release(1621, _dt.date(2025, 11, 25), False),
    Release(1718, _dt.date(2026, 3, 7), False),
    Release(1822, _dt.date(2026, 6, 27), False),
)


class Layer(NamedTuple):
    """A cortical layer as a depth band below the pia, in µm."""

    name: str
    top_um: float
    bottom_um: float


#: Reference layer depths of mouse VISp (µm from pia), from the Allen Institute's
#: ``neuron_morphology`` package (``DEFAULT_MOUSE_ME_MET_REFERENCE_LAYER_DEPTHS``). MICrONS
#: cortex is somewhat thinner; the datasets publish no boundaries of their own.
VISP_REFERENCE_LAYERS: tuple[Layer, ...] = (
    Layer("L1", 0.0, 115.0),
    Layer("L2/3", 115.0, 333.0),
    Layer("L4", 333.0, 454.0),
    Layer("L5", 454.0, 688.0),
    Layer("L6a", 688.0, 883.0),
    Layer("L6b", 883.0, 923.0),
)

#: Voxel size of annotation positions in nm (x, y, z).
MICRONS_VOXEL_NM = (4.0, 4.0, 40.0)
V1DD_VOXEL_NM = (9.0, 9.0, 45.0)

#: Approximate extents of the two volumes in mm (x = medio-lateral, y = depth, z = section axis).
#: MICrONS: 1.4 x 0.87 x 0.84 mm (tutorial Background page); V1DD: ~0.8 x 0.8 mm of V1
#: from pia to white matter (SWDB databook).
MICRONS_EXTENT_MM = (1.4, 0.87, 0.84)

#: V1DD two-photon imaging design (SWDB databook): five 400 x 400 µm columns -- a 2 x 2 grid
#: and a central column overlapping a quarter of each -- each imaged as stacked volumes of
#: 6 planes, 16 µm apart, 6 Hz per plane.
V1DD_COLUMN_SIZE_UM = 400.0
V1DD_PLANES_PER_VOLUME = 6
V1DD_PLANE_SPACING_UM = 16.0
V1DD_PLANE_RATE_HZ = 6.0
#: Depths (µm) of the six planes of the imaging volumes whose depths are documented.
V1DD_VOLUME_PLANE_DEPTHS_UM: dict[int, tuple[int, ...]] = {
    1: (130, 114, 98, 82, 66, 50),
    2: (226, 210, 194, 178, 162, 146),
    3: (322, 306, 290, 274, 258, 242),
    5: (514, 498, 482, 466, 450, 434),
}


def v1dd_column_origins_um() -> dict[str, tuple[float, float]]:
    """Lower-left corners (µm) of the five V1DD imaging columns in a top-down view.

    The four outer columns tile a 2 x 2 grid; the central one is shifted by half a column in
    both directions, so it overlaps a quarter of each. Column numbers differ between sources,
    so the columns are named by position.
    """
    size = V1DD_COLUMN_SIZE_UM
    return {
        "lower left": (0.0, 0.0),
        "lower right": (size, 0.0),
        "upper left": (0.0, size),
        "upper right": (size, size),
        "centre": (size / 2, size / 2),
    }
