"""Bulk exports of a materialization: download once, convert to Parquet once, scan out of core.

The public MICrONS release keeps whole tables as files in a bucket (the source
``minnie65_bulk`` of :mod:`connectomics_book.sources`), e.g. the synapse table of a version as
``v{N}/synapses_pni_2_v1_filtered_view.csv.gz`` (about 20 GB, no header row) beside
``v{N}/synapses_pni_2_v1_filtered_view_header.csv`` (one ``column,type`` line per column).

* :func:`download` fetches one file into the course cache with a progress bar and checks it
  against the size and the hashes the bucket announces (``Content-Length`` and Google Cloud
  Storage's ``x-goog-hash: crc32c=...,md5=...``); a later call reuses the checked copy.
* :func:`header_columns` reads a header file; :func:`csv_to_parquet` converts a CSV.gz export
  once into Parquet partitioned by presynaptic root, which DuckDB and Dask then scan column by
  column without loading the table.
* :data:`DEGREES_SQL`, :data:`TYPE_TO_TYPE_SQL` and :data:`SIZE_BY_LAYER_SQL` are the
  whole-connectome computations of the book's chapter in DuckDB; :func:`dask_degrees`,
  :func:`dask_type_to_type` and :func:`dask_size_by_layer` are the same with
  ``dask.dataframe``. Both return plain pandas frames, sorted, so they compare exactly.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from connectomics_book import download as _download
from connectomics_book import sources
from connectomics_book.constants import MATERIALIZATION_VERSION

SYNAPSE_VIEW = "synapses_pni_2_v1_filtered_view"
#: Parquet partitions: ``pre_root_bucket = pre_pt_root_id % N_PRE_BUCKETS``.
N_PRE_BUCKETS = 16
BUCKET_COLUMN = "pre_root_bucket"
_DUCK_TYPES = {"bigint": "BIGINT", "integer": "INTEGER", "smallint": "SMALLINT",
               "double precision": "DOUBLE", "real": "FLOAT", "boolean": "BOOLEAN",
               "character varying": "VARCHAR", "text": "VARCHAR",
               "timestamp without time zone": "TIMESTAMP"}


def download(name: str, version: int = MATERIALIZATION_VERSION,
             source: str = sources.MINNIE65_BULK.name, progress: bool = True) -> Path:
    """The local, checked copy of bulk file ``name`` of materialization ``version``.

    The file is ``<location>/v{version}/<name>`` where ``location`` is what the sources
    registry gives for ``source`` (the public bucket unless the sources file names another
    server or a directory). It is downloaded once into
    ``~/.cache/connectomics_book/<source>/<host>/v{version}/`` through a temporary file, with
    a progress bar, and kept only when its size matches ``Content-Length`` and its MD5 and
    CRC32C match the ``x-goog-hash`` header (where the server sends them); a later call
    returns the cached copy after checking its size against the server's.
    """
    where = sources.location(source)
    if not where:
        raise FileNotFoundError(f"no location for {source}: {sources.REGISTRY[source].how_to_get}")
    if not re.fullmatch(r"[A-Za-z0-9_.=/-]+", name) or ".." in name.split("/") \
            or name.startswith("/"):
        raise ValueError(f"not a bulk file name: {name!r}")
    if urlsplit(where).scheme not in ("http", "https"):
        path = Path(where) / f"v{version}" / name
        if not path.is_file():
            raise FileNotFoundError(f"no bulk file {path}")
        return path
    url = f"{where.rstrip('/')}/v{version}/{name}"
    folder = sources.cache_dir(source) / re.sub(r"[^A-Za-z0-9._-]", "_",
                                                urlsplit(where).netloc) / f"v{version}"
    path = folder / name
    record = path.with_name(f".{path.name}.checked.json")
    if path.is_file() and record.is_file():
        try:
            checked = json.loads(record.read_text())
        except ValueError:
            checked = {}
        stat = path.stat()
        if checked.get("bytes") == stat.st_size and checked.get("mtime_ns") == stat.st_mtime_ns:
            return path
    path.parent.mkdir(parents=True, exist_ok=True)
    _fetch(url, path, progress)
    stat = path.stat()
    record.write_text(json.dumps({"url": url, "bytes": stat.st_size,
                                  "mtime_ns": stat.st_mtime_ns}))
    return path


def _fetch(url: str, path: Path, progress: bool) -> None:
    """Stream ``url`` to ``path`` through a temporary file; check size and hashes."""
    # a public bucket: no token is sent (a CAVE token must not leave for a file server)
    response = _download.get(url, stream=True)
    size = int(response.headers.get("Content-Length", 0)) or None
    expected = parse_goog_hash(response.headers.get("x-goog-hash", ""))
    digests = [_crc32c_base64(v) if k == "crc32c" else _download.md5_base64(v)
               for k, v in expected.items()]
    _download.stream_to(response, path, url=url, size=size, digests=digests,
                        progress=progress)


def _crc32c_base64(expected: str) -> _download.Digest:
    """CRC32C written in base64 (``x-goog-hash: crc32c=``)."""
    import base64

    import google_crc32c

    return _download.Digest("crc32c", google_crc32c.Checksum,
                            lambda h: base64.b64encode(h.digest()).decode(), expected)


def parse_goog_hash(value: str) -> dict[str, str]:
    """``{"crc32c": ..., "md5": ...}`` from an ``x-goog-hash`` header (either may be missing)."""
    out = {}
    for part in value.split(","):
        key, sep, digest = part.strip().partition("=")
        if sep and key in ("crc32c", "md5"):
            out[key] = digest
    return out


def header_columns(header_path: str | os.PathLike) -> list[tuple[str, str]]:
    """(column, type) of each line of a ``*_header.csv`` file, in file order."""
    header = pd.read_csv(header_path, header=None, names=["column", "type"])
    return list(zip(header["column"], header["type"], strict=True))


def read_csv_sql(csv_path: str | os.PathLike, header_path: str | os.PathLike) -> str:
    """A DuckDB ``read_csv(...)`` of a header-less export, its columns named and typed."""
    columns = ", ".join(f"'{c}': '{_DUCK_TYPES.get(t, 'VARCHAR')}'"
                        for c, t in header_columns(header_path))
    return (f"read_csv('{_sql_path(csv_path)}', header = false, compression = 'gzip', "
            f"columns = {{{columns}}})")


def csv_to_parquet(csv_path: str | os.PathLike, header_path: str | os.PathLike,
                   out_dir: str | os.PathLike, memory_limit: str = "1GB",
                   threads: int = 2) -> Path:
    """Convert a synapse CSV.gz export once into Parquet partitioned by presynaptic root.

    Writes ``out_dir/pre_root_bucket=K/*.parquet`` (``K = pre_pt_root_id % 16``) with DuckDB
    under ``memory_limit`` (it streams the CSV rather than holding the table), then an
    ``_SUCCESS`` marker; when the marker is there already nothing is done. Rows keep the
    CSV's order within a partition (no sort: the conversion stays one streaming pass).
    """
    import duckdb

    out = Path(out_dir)
    if (out / "_SUCCESS").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"memory_limit": memory_limit, "threads": threads,
                                 "temp_directory": str(out.parent / ".duckdb_tmp")})
    try:
        con.execute(
            f"COPY (SELECT *, pre_pt_root_id % {N_PRE_BUCKETS} AS {BUCKET_COLUMN} "
            f"FROM {read_csv_sql(csv_path, header_path)}) "
            f"TO '{_sql_path(out)}' (FORMAT parquet, PARTITION_BY ({BUCKET_COLUMN}), "
            f"OVERWRITE_OR_IGNORE true)")
    finally:
        con.close()
    (out / "_SUCCESS").write_text("")
    return out


def parquet_glob(parquet_dir: str | os.PathLike) -> str:
    """The glob of a partitioned Parquet directory, for ``read_parquet`` (DuckDB)."""
    return f"{_sql_path(parquet_dir)}/*/*.parquet"


def soma_table(cell_type_df: pd.DataFrame) -> pd.DataFrame:
    """(root_id, cell_type, layer) of every single-soma typed cell: the small table the
    whole-connectome queries join to.

    ``cell_type_df`` is the cell-type table queried with ``desired_resolution=[1, 1, 1]``
    (positions in nm); roots shared by several somata, and root 0, are dropped
    (:func:`~connectomics_book.selection.drop_multi_soma`), and the layer is the soma's,
    from layer bottoms estimated on these cells
    (:func:`~connectomics_book.selection.estimate_layer_bottoms`).
    """
    from connectomics_book.cortex import add_cortical_position
    from connectomics_book.selection import assign_layer, drop_multi_soma, estimate_layer_bottoms

    cells = add_cortical_position(drop_multi_soma(cell_type_df))
    bottoms = estimate_layer_bottoms(cells["depth_um"], cells["cell_type"])
    return pd.DataFrame({"root_id": cells["pt_root_id"].astype("int64").to_numpy(),
                         "cell_type": cells["cell_type"].astype(str).to_numpy(),
                         "layer": assign_layer(cells["depth_um"], bottoms).astype(str)})


#: In- and out-degree of every root: synapses and distinct partners. ``{syn}`` is a table.
DEGREES_SQL = """
WITH pairs AS (
    SELECT pre_pt_root_id, post_pt_root_id, count(*) AS n
    FROM {syn} GROUP BY pre_pt_root_id, post_pt_root_id),
outs AS (
    SELECT pre_pt_root_id AS root_id, sum(n)::BIGINT AS n_out, count(*) AS n_post_partners
    FROM pairs GROUP BY pre_pt_root_id),
ins AS (
    SELECT post_pt_root_id AS root_id, sum(n)::BIGINT AS n_in, count(*) AS n_pre_partners
    FROM pairs GROUP BY post_pt_root_id)
SELECT root_id,
       coalesce(n_out, 0) AS n_out, coalesce(n_in, 0) AS n_in,
       coalesce(n_post_partners, 0) AS n_post_partners,
       coalesce(n_pre_partners, 0) AS n_pre_partners
FROM outs FULL OUTER JOIN ins USING (root_id)
ORDER BY root_id
"""

#: Synapses between the cell types of somata, ``{cells}`` = (root_id, cell_type, layer).
TYPE_TO_TYPE_SQL = """
SELECT pre.cell_type AS pre_type, post.cell_type AS post_type,
       count(*) AS n_syn, count(DISTINCT (s.pre_pt_root_id, s.post_pt_root_id)) AS n_pairs
FROM {syn} s
JOIN {cells} pre ON s.pre_pt_root_id = pre.root_id
JOIN {cells} post ON s.post_pt_root_id = post.root_id
GROUP BY pre_type, post_type
ORDER BY pre_type, post_type
"""

#: Synapse size (voxels) by the layer of the postsynaptic soma.
SIZE_BY_LAYER_SQL = """
SELECT post.layer AS layer, count(*) AS n_syn, sum(s.size)::BIGINT AS sum_size,
       median(s.size) AS median_size,
       quantile_cont(s.size, 0.25) AS q25_size, quantile_cont(s.size, 0.75) AS q75_size
FROM {syn} s JOIN {cells} post ON s.post_pt_root_id = post.root_id
GROUP BY layer
ORDER BY layer
"""


def read_dask(parquet_dir: str | os.PathLike,
              columns=("pre_pt_root_id", "post_pt_root_id", "size")):
    """The partitioned synapse Parquet as a dask dataframe: one partition per file.

    Each file holds one bucket of presynaptic roots, so all synapses of a presynaptic root,
    and so all of a (pre, post) pair, are in one partition: the functions below count pairs
    inside each partition and need no shuffle between workers.
    """
    import dask.dataframe as dd

    return dd.read_parquet(str(parquet_dir), columns=list(columns), split_row_groups=False)


def _pairs(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby(["pre_pt_root_id", "post_pt_root_id"]).size().rename("n").reset_index()


def _partition_degrees(df: pd.DataFrame) -> pd.DataFrame:
    pairs = _pairs(df)
    outs = pairs.groupby("pre_pt_root_id")["n"].agg(["sum", "count"])
    ins = pairs.groupby("post_pt_root_id")["n"].agg(["sum", "count"])
    return pd.concat([outs.set_axis(["n_out", "n_post_partners"], axis=1),
                      ins.set_axis(["n_in", "n_pre_partners"], axis=1)], axis=1) \
        .fillna(0).astype("int64").rename_axis("root_id").reset_index()


def dask_degrees(syn) -> pd.DataFrame:
    """:data:`DEGREES_SQL` with ``dask.dataframe`` (``syn`` from :func:`read_dask`)."""
    meta = pd.DataFrame({c: pd.Series(dtype="int64") for c in
                         ("root_id", "n_out", "n_post_partners", "n_in", "n_pre_partners")})
    parts = syn.map_partitions(_partition_degrees, meta=meta).compute()
    # a post root has inputs in many partitions: add them up (outputs are in one)
    out = parts.groupby("root_id").sum().reset_index()
    return out[["root_id", "n_out", "n_in", "n_post_partners", "n_pre_partners"]] \
        .sort_values("root_id", ignore_index=True)


def _partition_types(df: pd.DataFrame, types: pd.Series) -> pd.DataFrame:
    pairs = _pairs(df).assign(pre_type=lambda d: d["pre_pt_root_id"].map(types),
                              post_type=lambda d: d["post_pt_root_id"].map(types))
    pairs = pairs.dropna(subset=["pre_type", "post_type"])
    return pairs.groupby(["pre_type", "post_type"])["n"] \
        .agg(n_syn="sum", n_pairs="count").reset_index()


def dask_type_to_type(syn, cells: pd.DataFrame) -> pd.DataFrame:
    """:data:`TYPE_TO_TYPE_SQL` with ``dask.dataframe`` (``cells`` a small pandas frame)."""
    types = cells.set_index("root_id")["cell_type"]
    meta = pd.DataFrame({"pre_type": pd.Series(dtype=object),
                         "post_type": pd.Series(dtype=object),
                         "n_syn": pd.Series(dtype="int64"), "n_pairs": pd.Series(dtype="int64")})
    parts = syn.map_partitions(_partition_types, types, meta=meta).compute()
    out = parts.groupby(["pre_type", "post_type"])[["n_syn", "n_pairs"]].sum()
    return out.reset_index().sort_values(["pre_type", "post_type"], ignore_index=True)


def _partition_layers(df: pd.DataFrame, layers: pd.Series) -> pd.DataFrame:
    layer = df["post_pt_root_id"].map(layers)
    return df["size"].groupby(layer).agg(["count", "sum"]).rename_axis("layer").reset_index()


def dask_size_by_layer(syn, cells: pd.DataFrame) -> pd.DataFrame:
    """Counts and summed size of :data:`SIZE_BY_LAYER_SQL` with ``dask.dataframe``.

    (Exact quantiles need a sort of every size; ``dask`` gives approximate ones, so only the
    counts and sums are computed here, and those match DuckDB exactly.)
    """
    layers = cells.set_index("root_id")["layer"].astype(str)
    meta = pd.DataFrame({"layer": pd.Series(dtype=object), "count": pd.Series(dtype="int64"),
                         "sum": pd.Series(dtype="int64")})
    parts = syn.map_partitions(_partition_layers, layers, meta=meta).compute()
    out = parts.groupby("layer")[["count", "sum"]].sum().astype("int64")
    out = out.set_axis(["n_syn", "sum_size"], axis=1)
    return out.reset_index().sort_values("layer", ignore_index=True)


def _sql_path(path: str | os.PathLike) -> str:
    return str(path).replace("'", "''")
