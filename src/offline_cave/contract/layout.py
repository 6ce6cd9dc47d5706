"""On-disk layout of a generated sample datastack: the contract between generator and server.

Data flows one way: parameters -> generator (``offline_cave.generator.pipeline``) -> files described here
-> server (``offline_cave.server``) -> caveclient / cloud-volume. The generator never knows
about HTTP; the server never invents data (it may *derive* presentation artefacts such as
meshes from the stored skeletons, and caches them under ``cache/``).

One directory per datastack, ``<data_dir>/<datastack>/``::

    MANIFEST.json                 written LAST; its presence + matching hashes = complete sample
    datastack.json                info-service dict pieces (see DATASTACK_KEYS)
    versions.json                 list of version records (see VERSION_KEYS)
    tables.json                   {table_name: table metadata} (see TABLE_KEYS)
    views.json                    {view_name: view metadata} (see VIEW_KEYS)
    v{N}/{table}.parquet          one file per table per *materialized* version N
    v{N}/{view}.parquet           views are materialized like tables
    v{N}/{synapse_table}.by_pre.parquet   the same synapse rows sorted by pre_pt_root_id (the
                                  main file is sorted by post_pt_root_id): outputs of a neuron
                                  read a few row groups too
    segments/pieces.parquet       supervoxel_id -> piece_id (sorted by supervoxel_id)
    segments/roots.parquet        root history (see ROOTS_COLUMNS)
    segments/root_pieces.parquet  root_id -> piece_id membership (see ROOT_PIECES_COLUMNS)
    segments/lineage.parquet      edit DAG edges (see LINEAGE_COLUMNS)
    segments/operations.parquet   the operation log: one row per edited edge of each edit
                                  (see OPERATION_COLUMNS)
    segments/users.parquet        the (synthetic) proofreaders named by the log (USER_COLUMNS)
    skeletons/skeletons.parquet   one row per skeleton vertex (see SKELETON_COLUMNS)
    skeletons/cells.parquet       per-cell skeleton summary (see SKELETON_CELL_COLUMNS)
    level2/nodes.parquet          level-2 nodes and their cache attributes, sorted by
                                  nucleus_id then l2_id (a cell's nodes are one or two row
                                  groups; see LEVEL2_NODE_COLUMNS); only the cells of
                                  level2/cells
    level2/edges.parquet          level-2 chunk graph edges, sorted by nucleus_id
                                  (see LEVEL2_EDGE_COLUMNS)
    level2/vertices.parquet       level-2 id of every skeleton vertex of those cells, in the
                                  order of skeletons.parquet (see LEVEL2_VERTEX_COLUMNS)
    level2/supervoxels.parquet    supervoxel_id -> l2_id of the supervoxels inside those
                                  nodes (sorted by supervoxel_id); any other supervoxel is a
                                  level-2 node of its own, id = its id with layer 2
    level2/cells.parquet          nucleus ids of the cells with level-2 data
    imagery/imagery.json          the EM-like image and supervoxel region (minnie65 only; see
                                  generator/imagery.py): resolution, chunk sizes, encodings, box
    imagery/em/<key>/<chunk>      its JPEG image chunks (precomputed, <key> = 8_8_40)
    imagery/ws/<key>/<chunk>.gz   its supervoxel chunks, raw uint64, gzipped
    static/seg_m{N}/info          a flat segmentation of version N (minnie65: 943, 1300) with
    static/seg_m{N}/mesh/info     its static multi-resolution meshes (neuroglancer_multilod_draco)
    static/seg_m{N}/mesh/*.shard  sharded, keyed by the root ids at version N
                                  (generator/static_meshes.py)
    cells.parquet                 generator ground truth per nucleus (see CELL_COLUMNS); the
                                  server does not serve it, tests use it to check recovery
    bulk/v{N}/...                 the bulk exports of version N as the public release ships
                                  them (CSV.gz without a header row + a ``_header.csv`` of
                                  (column, type)), and the synapse view as Parquet partitioned
                                  by presynaptic root (``generator/bulk.py``)
    bulk/index.json               every bulk file with its size, MD5 and CRC32C (base64, as
                                  Google Cloud Storage announces them in ``x-goog-hash``)
    cache/                        server-side derived artefacts (meshes); never in MANIFEST

Beside the datastack directories, ``<data_dir>/`` holds ``.<datastack>.lock`` (one build at a
time), ``.<datastack>.verified.json`` (which files ``serve`` has hashed, keyed by their stat;
see ``contract.files.verify_files``) and, only while a build runs, ``.<datastack>.tmp-*`` and
``.<datastack>.old-*`` (``contract.files.building_dir`` / ``swap_in``).

Conventions
-----------
* Annotation positions (``*_position_x/_y/_z``) are int64 voxels at the table's
  ``voxel_resolution`` (minnie65: 4x4x40 nm). Parquet tables store positions already split
  into ``<col>_x, <col>_y, <col>_z`` columns, adjacent and in that order, exactly as the
  materialization service streams them.
* Column order in each parquet file is the order the real service returns.
* Ids are int64. Root ids have ``id >> 56 == N_LAYERS`` (12); supervoxel ids have
  ``id >> 56 == 1``. ``0`` means "no segment".
* ``created`` columns are ``timestamp[us, tz=UTC]``.
* Skeleton vertices are in nm (the same physical frame as mesh vertices); radius in nm.
  Compartment codes follow SWC: 1 soma, 2 axon, 3 basal dendrite, 4 apical dendrite.
* Times in JSON are naive UTC ISO strings ``YYYY-MM-DDTHH:MM:SS.ffffff`` (what caveclient
  parses); times in parquet segment tables are float unix seconds (what the chunkedgraph
  endpoints speak).
* Pieces: the atomic units of segmentation that proofreading edits move between roots. Every
  supervoxel belongs to exactly one piece forever; a root is a set of pieces valid in the
  half-open interval [created, expired). The root of a supervoxel at time t is the root that
  contains its piece and satisfies created <= t < expired.
"""

from __future__ import annotations

import logging
from pathlib import Path

GENERATOR_VERSION = "0.1.0"
"""Bumped whenever the generator's output for the same parameters changes (part of the cache key)."""

N_LAYERS = 12
ROOT_LAYER_SHIFT = 56

MANIFEST = "MANIFEST.json"
DATASTACK_JSON = "datastack.json"
VERSIONS_JSON = "versions.json"
TABLES_JSON = "tables.json"
VIEWS_JSON = "views.json"
CELLS_PARQUET = "cells.parquet"
SEGMENTS_DIR = "segments"
PIECES_PARQUET = "segments/pieces.parquet"
ROOTS_PARQUET = "segments/roots.parquet"
ROOT_PIECES_PARQUET = "segments/root_pieces.parquet"
LINEAGE_PARQUET = "segments/lineage.parquet"
OPERATIONS_PARQUET = "segments/operations.parquet"
USERS_PARQUET = "segments/users.parquet"
SKELETONS_PARQUET = "skeletons/skeletons.parquet"
SKELETON_CELLS_PARQUET = "skeletons/cells.parquet"
LEVEL2_NODES_PARQUET = "level2/nodes.parquet"
LEVEL2_EDGES_PARQUET = "level2/edges.parquet"
LEVEL2_VERTICES_PARQUET = "level2/vertices.parquet"
LEVEL2_SUPERVOXELS_PARQUET = "level2/supervoxels.parquet"
LEVEL2_CELLS_PARQUET = "level2/cells.parquet"
CACHE_DIR = "cache"
IMAGERY_JSON = "imagery/imagery.json"
IMAGERY_EM_DIR = "imagery/em"
IMAGERY_WS_DIR = "imagery/ws"
STATIC_DIR = "static"


def static_segmentation_dir(version: int) -> str:
    """The directory of the flat segmentation of ``version`` (``static/seg_m1300``)."""
    return f"{STATIC_DIR}/seg_m{int(version)}"
BY_PRE_SUFFIX = ".by_pre"  # v{N}/{synapse_table}.by_pre.parquet
BULK_DIR = "bulk"  # bulk/v{N}/<export files>, served read-only (generator/bulk.py)
BULK_INDEX = "bulk/index.json"  # {"files": {"v{N}/<name>": {bytes, md5, crc32c}}, ...}

# MANIFEST.json keys: generator_version, datastack, seed, scale, params_hash, created (ISO),
# elapsed_s, files: {relative_path: {"sha256": hex, "bytes": int}}
MANIFEST_KEYS = ("generator_version", "datastack", "seed", "scale", "params_hash", "created",
                 "elapsed_s", "files")

# datastack.json: everything the info service needs that is not server-specific. The server
# fills in local_server and rewrites the http(s) sources to itself.
DATASTACK_KEYS = (
    "name", "description", "aligned_volume",  # aligned_volume: {id, name, display_name, description}
    "synapse_table", "soma_table", "viewer_resolution", "viewer_site",
    "pcg_table_name",  # chunkedgraph table id, e.g. "minnie3_v1"
    "segmentation_bounds_vx",  # [[x0,y0,z0],[x1,y1,z1]] in viewer voxels
    "base_resolution",  # segmentation base resolution nm, e.g. [8, 8, 40]
    "chunk_size",  # chunkedgraph layer-2 chunk size in base voxels, e.g. [256, 256, 512]
    "chunk_offset_vx",  # supervoxel chunk grid origin in base voxels
    "public_local_server",  # the real service URL (documentation only)
)

# versions.json: list of dicts, newest last. "materialized" True means v{N}/ exists.
VERSION_KEYS = ("version", "time_stamp", "expires_on", "valid", "status", "is_merged",
                "materialized")

# tables.json: {name: {...}}; keys mirror materialize table metadata
TABLE_KEYS = (
    "table_name", "schema", "schema_type", "reference_table", "description", "notice_text",
    "voxel_resolution",  # [x, y, z] nm; the server splits it into voxel_resolution_x/_y/_z
    "created", "introduced", "removed",  # introduced/removed: version numbers (removed None)
    "columns",  # [[name, arrow_type_string], ...] in the order stored in parquet
    "row_counts",  # {version: n_rows}
)

# views.json: {name: {"description", "live_compatible", "voxel_resolution", "notice_text",
#                     "columns": [[name, type]], "introduced"}}
VIEW_KEYS = ("description", "live_compatible", "voxel_resolution", "notice_text", "columns",
             "introduced")

PIECES_COLUMNS = ("supervoxel_id", "piece_id")
ROOTS_COLUMNS = (
    "root_id",  # int64
    "created",  # float64 unix s
    "expired",  # float64 unix s; +inf while the root is current
    "operation_id",  # int64 edit that created it; 0 for roots that predate the sample's edits
    "nucleus_id",  # int64 nucleus of the cell this root carries (0 for fragments)
)
ROOT_PIECES_COLUMNS = ("root_id", "piece_id")
LINEAGE_COLUMNS = ("parent_root_id", "child_root_id", "operation_id", "timestamp")
OPERATION_COLUMNS = (
    # one row per supervoxel edge an edit added (merge) or removed (split), sorted by
    # operation_id; every edit of the lineage has at least one row
    "operation_id",  # int64, as in LINEAGE_COLUMNS
    "timestamp",  # float64 unix s, the time of the edit (= the lineage timestamp)
    "user_id",  # int64, a row of USER_COLUMNS
    "is_merge",  # bool
    "source_supervoxel_id", "sink_supervoxel_id",  # int64 (0 only if a side has no point)
    "source_x", "source_y", "source_z",  # int64, the point the user placed, in segmentation
    "sink_x", "sink_y", "sink_z",  # base voxels (DATASTACK_KEYS base_resolution)
)
USER_COLUMNS = ("user_id", "user_name", "user_affiliation")  # int64, string, string
SKELETON_COLUMNS = (
    "nucleus_id",  # int64, the cell; sorted by nucleus_id then node
    "node",  # int32, 0 = root (soma)
    "parent",  # int32, -1 for the root
    "x", "y", "z",  # float32 nm
    "radius",  # float32 nm
    "compartment",  # int8 (1 soma, 2 axon, 3 basal, 4 apical)
)
LEVEL2_NODE_COLUMNS = (
    "l2_id",  # int64, layer 2 (id >> 56 == 2)
    "nucleus_id", "piece_id",  # the skeletonized cell and the segmentation piece it is in
    "rep_coord_x", "rep_coord_y", "rep_coord_z",  # float64 nm (l2cache rep_coord_nm)
    "size_nm3", "area_nm2", "max_dt_nm", "mean_dt_nm",  # float32, as are pca and pca_val
    # pca: 3 principal axes (rows, decreasing variance) x (x, y, z); pca_val: their variances
    *(f"pca_{i}_{a}" for i in range(3) for a in "xyz"),
    "pca_val_0", "pca_val_1", "pca_val_2",
    # chunk_intersect_count: [[x, y, z] bottom faces, [x, y, z] top faces], int32
    *(f"chunk_intersect_count_{i}" for i in range(6)),
)
LEVEL2_EDGE_COLUMNS = ("nucleus_id", "l2_id_a", "l2_id_b", "piece_id_a", "piece_id_b")
LEVEL2_VERTEX_COLUMNS = ("nucleus_id", "node", "l2_id")
LEVEL2_SUPERVOXEL_COLUMNS = ("supervoxel_id", "l2_id")
LEVEL2_LAYER = 2
SKELETON_CELL_COLUMNS = ("nucleus_id", "cell_type", "n_vertices", "soma_radius_nm",
                         "axon_length_um", "dendrite_length_um")
CELL_COLUMNS = (
    "nucleus_id", "cell_class",  # excitatory_neuron / inhibitory_neuron / nonneuron
    "cell_type", "mtype", "layer", "depth_um", "x_um", "y_um", "z_um",  # cortical frame
    "pt_x", "pt_y", "pt_z",  # voxels
    "pref_ori_rad", "osi",  # latent tuning (excitatory cells), NaN otherwise
    "proofread_axon", "coregistered",
)


def datastack_dir(data_dir: str | Path, datastack: str) -> Path:
    return Path(data_dir) / datastack


def verified_stamp(ds_dir: Path) -> Path:
    """The file recording which files of ``ds_dir`` were hashed and matched the manifest."""
    return Path(ds_dir).parent / f".{Path(ds_dir).name}.verified.json"


def version_dir(ds_dir: Path, version: int) -> Path:
    return ds_dir / f"v{int(version)}"


_log = logging.getLogger("offline_cave")


def find_datastacks(data_dir: Path) -> list[Path]:
    """Complete sample directories (MANIFEST.json present) under ``data_dir``, sorted."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    out = []
    for child in sorted(data_dir.iterdir()):
        if not child.is_dir():
            continue
        if (child / MANIFEST).exists() and (child / DATASTACK_JSON).exists():
            out.append(child)
        elif (child / DATASTACK_JSON).exists():
            _log.warning("skipping %s: no %s (incomplete sample)", child, MANIFEST)
    return out
