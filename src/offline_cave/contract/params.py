"""Parameters of the synthetic datastacks, calibrated to the public MICrONS / V1DD numbers.

Every number here cites where it comes from: "datasets-facts §x.y" is section x.y of the
repository's ``docs/datasets-facts.md``, which cites the MICrONS tutorials, SWDB databook and
papers. Numbers marked *assumed* are priors chosen
where the public record has none; they are documented as such in ``offline_cave/README.md``.

Frames
------
* cortical frame: micrometres, x lateral, y = depth below pia, z; produced from voxels by
  ``standard_transform.minnie_transform("vx")`` (rotate 5 deg about z, pia to y=0, nm->um).
* voxel frame: the datastack's annotation voxels (minnie65: 4 x 4 x 40 nm).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

# --- cell-type vocabularies (exact strings; datasets-facts §2.3) -------------------------------
EXC_TYPES = ("23P", "4P", "5P-IT", "5P-ET", "5P-NP", "6P-IT", "6P-CT")
INH_TYPES = ("BC", "MC", "BPC", "NGC")
GLIA_TYPES = ("astrocyte", "oligo", "microglia", "OPC", "pericyte")
CLASS_OF = {**{t: "excitatory_neuron" for t in EXC_TYPES},
            **{t: "inhibitory_neuron" for t in INH_TYPES},
            **{t: "nonneuron" for t in GLIA_TYPES}}

# share of each type within its class (datasets-facts §2.3, v1718 soma model, multi-soma dropped)
EXC_SHARES = {"23P": 0.308, "4P": 0.231, "5P-IT": 0.124, "5P-ET": 0.034, "5P-NP": 0.015,
              "6P-IT": 0.182, "6P-CT": 0.106}
INH_SHARES = {"BC": 0.422, "MC": 0.310, "BPC": 0.189, "NGC": 0.079}
GLIA_SHARES = {"astrocyte": 0.380, "oligo": 0.368, "microglia": 0.128, "OPC": 0.078,
               "pericyte": 0.045}
# class shares of typed nuclei: 70.6 % E, 8.7 % I, 20.7 % non-neuronal (datasets-facts §2.3)
CLASS_SHARES = {"excitatory_neuron": 0.706, "inhibitory_neuron": 0.087, "nonneuron": 0.207}

# m-type vocabulary (datasets-facts §2.3), mapped from the coarse type and the sublayer
MTYPES_EXC = ("L2a", "L2b", "L3a", "L3b", "L3c", "L4a", "L4b", "L4c", "L5a", "L5b", "L5ET",
              "L5NP", "L6a", "L6b", "L6c", "L6CT", "L6wm")
MTYPES_INH = ("PTC", "DTC", "STC", "ITC")
INH_MTYPE_OF = {"BC": "PTC", "MC": "DTC", "NGC": "STC", "BPC": "ITC"}

# Layer boundaries in um from pia: the Allen mouse VISp reference scaled by 0.9, because
# minnie65 cortex is thinner than the reference (datasets-facts §3.2; the 0.9 is *assumed*).
LAYER_BOUNDS_UM = {"L1": (0.0, 104.0), "L2/3": (104.0, 300.0), "L4": (300.0, 409.0),
                   "L5": (409.0, 619.0), "L6": (619.0, 831.0), "WM": (831.0, 1e9)}
LAYERS = ("L1", "L2/3", "L4", "L5", "L6", "WM")

# Depth bands (um) where each excitatory type's somata sit (from the layer bounds).
EXC_DEPTH_BANDS = {"23P": (110.0, 300.0), "4P": (300.0, 409.0), "5P-IT": (409.0, 600.0),
                   "5P-ET": (450.0, 619.0), "5P-NP": (470.0, 619.0), "6P-IT": (619.0, 820.0),
                   "6P-CT": (640.0, 831.0)}
# relative inhibitory density per layer and type (*assumed*: PV/SST densest in L4-L5,
# VIP in L2/3, L1 almost only NGC; datasets-facts §3.3)
INH_LAYER_WEIGHTS = {
    "L1": {"BC": 0.0, "MC": 0.0, "BPC": 0.05, "NGC": 1.0},
    "L2/3": {"BC": 0.35, "MC": 0.25, "BPC": 0.38, "NGC": 0.02},
    "L4": {"BC": 0.50, "MC": 0.33, "BPC": 0.15, "NGC": 0.02},
    "L5": {"BC": 0.50, "MC": 0.42, "BPC": 0.07, "NGC": 0.01},
    "L6": {"BC": 0.48, "MC": 0.42, "BPC": 0.09, "NGC": 0.01},
}

# nucleus volume (um^3) lognormal medians by class (datasets-facts §3.4); sd of ln assumed 0.25
NUCLEUS_VOLUME_MEDIAN = {"excitatory_neuron": 275.0, "inhibitory_neuron": 300.0,
                         "astrocyte": 160.0, "oligo": 95.0, "microglia": 70.0, "OPC": 120.0,
                         "pericyte": 60.0}
#: Soma radius (um) of the grown neurons, drawn uniformly in the range: pyramidal cells 5-7,
#: interneurons 4-6 (somata ~10-14 um across in mouse visual cortex; *assumed* ranges). The
#: population keeps somata apart by the upper bounds (``population.separate_somata``).
SOMA_RADIUS_UM = {"excitatory_neuron": (5.0, 7.0), "inhibitory_neuron": (4.0, 6.0)}


@dataclass(frozen=True)
class DatastackParams:
    """Everything the generator needs for one datastack; its hash is part of the cache key."""

    name: str = "minnie65_public"
    aligned_volume: str = "minnie65_phase3"
    aligned_volume_id: int = 1
    aligned_volume_display: str = "Minnie65"
    description: str = ("This is the publicly released version of the minnie65 volume and "
                        "segmentation. ")
    voxel_resolution: tuple[float, float, float] = (4.0, 4.0, 40.0)
    base_resolution: tuple[int, int, int] = (8, 8, 40)
    chunk_size: tuple[int, int, int] = (256, 256, 512)
    # supervoxel chunk grid origin in base (8x8x40) voxels (datasets-facts §1.4)
    chunk_offset_vx: tuple[int, int, int] = (26385, 30308, 14850)
    transform: str = "minnie65"  # standard_transform dataset name
    pcg_table_name: str = "minnie3_v1"
    synapse_table: str = "synapses_pni_2"
    soma_table: str = "nucleus_detection_v0"
    viewer_site: str = "https://spelunker.cave-explorer.org/"
    public_local_server: str = "https://minnie.microns-daf.com"
    # the slab, in the cortical frame (um): x lateral, depth 0..depth_max (pia..white matter),
    # z. Centred in the real volume (real nuclei span cortical x ~224-1550, z ~594-1111 um).
    slab_center_x_um: float = 800.0
    slab_center_z_um: float = 860.0
    slab_width_x_um: float = 300.0  # multiplied by scale**0.6
    slab_width_z_um: float = 240.0  # multiplied by scale**0.4
    depth_max_um: float = 880.0
    # nuclei per mm^3 (datasets-facts §3.1: ~1.4e5 neurons, ~1.7e5 typed cells /mm^3; detected
    # nuclei incl. small false positives ~2e5)
    nucleus_density_per_mm3: float = 1.9e5
    # Materialization: versions that get parquet files; the rest are listed (real dates)
    materialized_versions: tuple[int, ...] = (1300, 1822)
    # fraction of nuclei whose centroid misses the segmentation (pt_root_id 0), datasets-facts §2.2
    # (8,388 alternative points of 144,120 = 5.8 %)
    frac_root_zero: float = 0.058
    # fraction of neurons merged pairwise into one root (multi-soma objects), datasets-facts §5
    frac_multi_soma: float = 0.01
    # Synapses. Real dendrites carry ~1-2 inputs/um; the sample keeps a fraction of them so that
    # the default sample stays at a few million synapses (documented in the README).
    synapse_keep_fraction: float = 0.085
    synapse_ln_mean: float = 7.94  # datasets-facts §3.6
    synapse_ln_sd: float = 1.17
    # share of proofread-axon neurons: real proofreading concentrates around the V1 column, which
    # the slab imitates, so the share is higher than volume-wide 2.6 % (*assumed*)
    frac_proofread_axon: float = 0.06
    # share of excitatory neurons that are co-registered to 2P imaging (~15k of ~64k E cells
    # volume-wide, datasets-facts §2.5; the slab sits in the imaged region, *assumed* 0.3)
    frac_coregistered: float = 0.3
    # neurons besides the proofread ones that get level-2 chunk graph and cache data (design
    # choice for CI: level-2 data for every skeleton would double the build)
    level2_other_cells: int = 100
    # versions with a flat segmentation and static multi-resolution meshes (datasets-facts
    # §1.1: seg_m943 and seg_m1300; V1DD has none), written for the cells with level-2 data
    static_mesh_versions: tuple[int, ...] = (943, 1300)
    # functional like-to-like: multiplicative weight 1 + a*cos(2*dtheta) for E->E. Ding et al.
    # 2025 (Nature 640:459) find it beyond axon-dendrite proximity but no numeric effect size
    # was retrieved (datasets-facts §3.9 ⚠; its proposal: 1.2-1.5x top vs bottom quartile).
    # a = 0.25 gives ~1.7x synapses per proximity for tuned pairs (gOSI > 0.25) within 22.5
    # vs beyond 67.5 deg (the planted ratio tests/offline_cave/generator/test_function.py
    # computes); *assumed*
    like_to_like_strength: float = 0.25
    # share of excitatory cells whose preferred orientation follows a smooth spatial field
    # (wavelength FIELD_WAVELENGTH_UM in population.py): nearby neurons in mouse V1 are more
    # similarly tuned than distant ones (Ringach et al. 2016, Nat Commun 7:12270, Fig. 2b),
    # which makes tuning similarity covary with axon-dendrite proximity (*assumed* share)
    orientation_field_share: float = 0.0
    # which table builders and versions this datastack uses: "minnie" or "v1dd"
    kind: str = "minnie"
    # synapse positions' voxel size when it differs from the other tables (V1DD documents
    # its synapse table at 9.7 x 9.7 x 45 nm)
    synapse_voxel_resolution: tuple[float, float, float] = (4.0, 4.0, 40.0)
    # proofreading edits after the last materialized version run until this date (so that
    # live queries "now" see roots newer than the newest version, as on the real service)
    edits_until: str = "2026-10-15T00:00:00"
    extra: dict = field(default_factory=dict)

    @property
    def versions(self) -> tuple[tuple[int, str, bool], ...]:
        """(version, time_stamp, listed as non-expired) of every public version."""
        return MINNIE_VERSIONS if self.kind == "minnie" else V1DD_VERSIONS

    def timestamp_of(self, version: int) -> str:
        for v, stamp, _ in self.versions:
            if v == version:
                return stamp
        raise KeyError(f"{self.name} has no version {version}")

    def params_hash(self, seed: int, scale: float) -> str:
        blob = json.dumps({"params": asdict(self), "seed": seed, "scale": scale},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]



# Public MICrONS materialization versions with their real timestamps (datasets-facts §1.2).
# (version, time_stamp, expires_on or None, listed as non-expired by the real service in 2026)
MINNIE_VERSIONS = (
    (117, "2021-06-11T08:10:00.215114", True),
    (343, "2022-02-24T08:10:00.184668", False),
    (661, "2023-04-06T20:17:09.199182", False),
    (795, "2023-08-23T08:10:01.404268", False),
    (943, "2024-01-22T08:10:01.497934", True),
    (1078, "2024-06-05T10:10:01.203215", False),
    (1181, "2024-09-16T10:10:01.121167", False),
    (1300, "2025-01-13T10:10:01.286229", True),
    (1412, "2025-04-29T10:10:01.200893", False),
    (1507, "2025-07-31T08:10:01.117494", True),
    (1621, "2025-11-25T08:10:01.094430", True),
    (1718, "2026-03-07T08:10:01.190228", True),
    (1822, "2026-06-27T14:05:22.813147", True),
)

# V1DD: only version 1196 is documented ("current as of summer 2025", datasets-facts §1.5); its
# exact timestamp is not public, so this one is *invented* in the format of the real ones.
V1DD_VERSIONS = ((1196, "2025-06-26T08:10:01.154212", True),)

MINNIE = DatastackParams(orientation_field_share=0.8)

V1DD = DatastackParams(
    name="v1dd_public",
    aligned_volume="v1dd",
    aligned_volume_id=2,
    aligned_volume_display="V1DD",
    description="The V1 Deep Dive (V1DD) EM volume and segmentation, public release. ",
    voxel_resolution=(9.0, 9.0, 45.0),
    base_resolution=(9, 9, 45),
    chunk_size=(256, 256, 512),
    chunk_offset_vx=(0, 0, 0),
    transform="v1dd",
    pcg_table_name="v1dd_public",
    synapse_table="synapses_v1dd",
    soma_table="nucleus_detection_v0",
    viewer_site="https://spelunker.cave-explorer.org/",
    public_local_server="https://api.em.brain.allentech.org",
    # the V1DD pia point of standard_transform 2.0 sits at cortical x ~760, z ~405 um
    slab_center_x_um=760.0,
    slab_center_z_um=420.0,
    slab_width_x_um=200.0,
    slab_width_z_um=200.0,
    materialized_versions=(1196,),
    static_mesh_versions=(),
    kind="v1dd",
    synapse_voxel_resolution=(9.7, 9.7, 45.0),
    # V1DD proofreading: 3,335 rows of 88,030 soma-model neurons (datasets-facts §2.10)
    frac_proofread_axon=0.04,
    frac_coregistered=0.0,  # V1DD co-registration comes from the imaged columns instead
)

DATASTACKS: dict[str, DatastackParams] = {MINNIE.name: MINNIE, V1DD.name: V1DD}

# V1DD two-photon imaging (datasets-facts §4.1): 5 volumes of 6 planes 16 um apart; plane depths
V1DD_PLANE_DEPTHS_UM = {
    1: (50, 66, 82, 98, 114, 130), 2: (146, 162, 178, 194, 210, 226),
    3: (242, 258, 274, 290, 306, 322), 4: (338, 354, 370, 386, 402, 418),
    5: (434, 450, 466, 482, 498, 514),
}
# sessions in the sample: (column, volume): upper L2/3, datasets-facts example session (column 2,
# volume 3) and the central column's deepest volume (L5), so surround suppression can be compared by layer
V1DD_SESSIONS = ((1, 2), (2, 3), (5, 5))
# V1DD cell-type vocabulary of cell_type_multifeature_v1 (datasets-facts §2.10)
V1DD_TYPE_OF = {"4P": "L4IT", "5P-IT": "L5IT", "5P-ET": "L5ET", "5P-NP": "L5NP",
                "6P-CT": "L6CT", "BC": "PTC", "MC": "DTC", "NGC": "STC", "BPC": "ITC"}
