"""The bulk exports of a materialization, as the public release ships them (``bulk/v{N}/``).

Whole-connectome questions are answered from files, not from per-neuron queries, and the
public MICrONS release has them: every table of a materialization as a header-less
``{table}_merged.csv.gz`` with a ``{table}_merged_header.csv`` that lists (column, type), and
the synapse table as ``synapses_pni_2_v1_filtered_view.csv.gz`` (about 20 GB, 337 million
rows) with its ``synapses_pni_2_v1_filtered_view_header.csv`` (datasets-facts §1.2, from the
MICrONS tutorial's ``static-repositories`` page, which reads them with
``pd.read_csv(..., header=None)`` and the header's ``column`` list), and the neuron-to-neuron
edge list ``connections_with_nuclei`` (datasets-facts §2.8: ``pre_pt_root_id,
post_pt_root_id, n_syn, sum_size, pre_nuc_id, post_nuc_id``, a nucleus id only when the root
has exactly one nucleus; the v1300 export is about 3.0 GB).

This stage writes, for the first materialized version of a MICrONS-kind datastack (the
course's pinned version), from the Parquet tables already on disk:

* ``synapses_pni_2_v1_filtered_view.csv.gz`` + ``_header.csv``: every row of the synapse
  table (the real view has the table's 337,312,429 rows, so nothing is filtered out here),
  sorted by presynaptic root (the real dump's row order is not documented), in the column order of the real v1412 dump (``id``, the ``pre``, ``ctr``
  and ``post`` positions in 4 x 4 x 40 nm voxels, ``size`` in voxels, then the supervoxel
  and root ids of pre and post); the header's type names are PostgreSQL's (*assumed*: the
  column list of the real header is known, its type spellings are not);
* ``connections_with_nuclei.csv.gz`` + ``connections_with_nuclei_header.csv``: one row per
  (pre root, post root) pair with ``n_syn`` and ``sum_size`` (the header's file name follows
  the synapse view's, *assumed*);
* ``nucleus_detection_v0_merged.csv.gz`` + ``_merged_header.csv``: the nucleus table with
  its segmentation columns (the annotation and segmentation tables merged, hence the name),
  columns as the sample's table stores them;
* ``synapses_pni_2_v1_filtered_view_by_pre/pre_root_bucket=K/part-0.parquet``: the same
  synapse rows as Parquet, hive-partitioned by ``pre_pt_root_id % 16`` and sorted by
  ``pre_pt_root_id`` inside each file, so a scan reads only the columns it needs and a
  lookup of one presynaptic root reads one partition (no public counterpart: it is what the
  book's page makes from the CSV once, ``connectomics_book.bulk.csv_to_parquet``).

CSV values are written as PostgreSQL's ``COPY ... CSV`` writes them: booleans ``t``/``f``,
NULL as an empty field, timestamps ``YYYY-MM-DD HH:MM:SS.ffffff``. ``bulk/index.json`` lists
every file with its size, MD5 and CRC32C (base64), the hashes Google Cloud Storage announces
in its ``x-goog-hash`` response header; the server sends them the same way.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from offline_cave.contract import layout
from offline_cave.contract.files import file_entry
from offline_cave.contract.params import DatastackParams

SYNAPSE_VIEW = "synapses_pni_2_v1_filtered_view"
CONNECTIONS = "connections_with_nuclei"
NUCLEUS_TABLE = "nucleus_detection_v0"
N_PRE_BUCKETS = 16
BUCKET_COLUMN = "pre_root_bucket"
PARQUET_DIR = f"{SYNAPSE_VIEW}_by_pre"

#: The synapse view's columns in the order of the real dump, with PostgreSQL type names.
SYNAPSE_VIEW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "bigint"),
    *((f"{p}_position_{a}", "integer") for p in ("pre_pt", "ctr_pt", "post_pt") for a in "xyz"),
    ("size", "integer"),
    ("pre_pt_supervoxel_id", "bigint"), ("pre_pt_root_id", "bigint"),
    ("post_pt_supervoxel_id", "bigint"), ("post_pt_root_id", "bigint"),
)
CONNECTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("pre_pt_root_id", "bigint"), ("post_pt_root_id", "bigint"), ("n_syn", "bigint"),
    ("sum_size", "bigint"), ("pre_nuc_id", "bigint"), ("post_nuc_id", "bigint"),
)
_PG_TYPES = {"BIGINT": "bigint", "INTEGER": "integer", "DOUBLE": "double precision",
             "FLOAT": "real", "BOOLEAN": "boolean", "VARCHAR": "character varying",
             "TIMESTAMP WITH TIME ZONE": "timestamp without time zone",
             "TIMESTAMP": "timestamp without time zone"}


def applies(params: DatastackParams) -> bool:
    """Whether the datastack gets bulk exports (the MICrONS release's files)."""
    return params.kind == "minnie"


def export_version(params: DatastackParams) -> int:
    """The version whose exports are written: the first materialized one (the course pin)."""
    return params.materialized_versions[0]


def write_bulk(out, params: DatastackParams, log=print) -> dict:
    """Write the bulk exports of :func:`export_version` into ``out``; returns their index.

    One pass over the synapse table's copy sorted by presynaptic root
    (``{synapse_table}.by_pre.parquet``), a row group at a time, writes both the CSV and the
    16 Parquet partitions (each stays sorted by pre root), so memory stays at one row group
    whatever the scale; CSV text comes from Arrow's writer and is gzipped at level 1 (fast;
    about 10 % larger than level 6).
    """
    import duckdb
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from offline_cave.generator.writer import PARQUET_OPTIONS, ROW_GROUP_SIZE

    version = export_version(params)
    vdir = out.target / f"v{version}"
    rel_dir = f"{layout.BULK_DIR}/v{version}"
    (out.target / rel_dir).mkdir(parents=True, exist_ok=True)
    by_pre = vdir / f"{params.synapse_table}{layout.BY_PRE_SUFFIX}.parquet"
    syn_src = _sql_path(by_pre)
    nuc_src = _sql_path(vdir / f"{NUCLEUS_TABLE}.parquet")
    files: list[str] = []
    cols = [c for c, _ in SYNAPSE_VIEW_COLUMNS]

    # the synapse view: CSV and Parquet partitions in one streaming pass
    stem = f"{rel_dir}/{SYNAPSE_VIEW}"
    parts = {k: f"{rel_dir}/{PARQUET_DIR}/{BUCKET_COLUMN}={k}/part-0.parquet"
             for k in range(N_PRE_BUCKETS)}
    writers = {}
    source = pq.ParquetFile(by_pre)
    with _GzipCsv(out.target / f"{stem}.csv.gz") as csv:
        for group in range(source.num_row_groups):
            batch = source.read_row_group(group, columns=cols)
            csv.write(batch)
            bucket = pc.bit_wise_and(batch["pre_pt_root_id"], N_PRE_BUCKETS - 1)
            for k in range(N_PRE_BUCKETS):
                piece = batch.filter(pc.equal(bucket, k))
                if piece.num_rows == 0:
                    continue
                if k not in writers:
                    path = out.target / parts[k]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    writers[k] = pq.ParquetWriter(path, piece.schema, **PARQUET_OPTIONS)
                writers[k].write_table(piece, row_group_size=ROW_GROUP_SIZE)
    for w in writers.values():
        w.close()
    files += _finish_csv(out, stem, SYNAPSE_VIEW_COLUMNS, "_header.csv")
    for k in sorted(writers):
        out.entries[parts[k]] = file_entry(out.target / parts[k])
        files.append(parts[k])

    con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB",
                                 "preserve_insertion_order": True})
    con.execute("SET enable_progress_bar = false")
    try:
        nuc_cols = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{nuc_src}')").fetchall()
        stem = f"{rel_dir}/{NUCLEUS_TABLE}_merged"
        _write_query_csv(con, out.target / f"{stem}.csv.gz",
                         f"SELECT {', '.join(_pg_value(n, t) for n, t, *_ in nuc_cols)} "
                         f"FROM read_parquet('{nuc_src}') ORDER BY id")
        files += _finish_csv(out, stem, tuple((n, _PG_TYPES.get(t, t.lower()))
                                              for n, t, *_ in nuc_cols), "_header.csv")
        single = (f"SELECT pt_root_id AS root, min(id) AS nuc FROM read_parquet('{nuc_src}') "
                  f"WHERE pt_root_id <> 0 GROUP BY pt_root_id HAVING count(*) = 1")
        stem = f"{rel_dir}/{CONNECTIONS}"
        _write_query_csv(con, out.target / f"{stem}.csv.gz",
                         f"WITH single AS ({single}), pairs AS ("
                         f"SELECT pre_pt_root_id, post_pt_root_id, count(*) AS n_syn, "
                         f"sum(size) AS sum_size FROM read_parquet('{syn_src}') "
                         f"GROUP BY pre_pt_root_id, post_pt_root_id) "
                         f"SELECT p.*, a.nuc AS pre_nuc_id, b.nuc AS post_nuc_id FROM pairs p "
                         f"LEFT JOIN single a ON a.root = p.pre_pt_root_id "
                         f"LEFT JOIN single b ON b.root = p.post_pt_root_id "
                         f"ORDER BY pre_pt_root_id, post_pt_root_id")
        files += _finish_csv(out, stem, CONNECTION_COLUMNS, "_header.csv")
    finally:
        con.close()
    index = {"version": version, "datastack": params.name,
             "files": {rel.removeprefix(f"{layout.BULK_DIR}/"): _hashes(out.target / rel)
                       for rel in files}}
    out.put(layout.BULK_INDEX, index)
    total = sum(f["bytes"] for f in index["files"].values())
    log(f"  bulk exports: {len(files)} files, {total / 1e6:.0f} MB")
    return index


class _GzipCsv:
    """A header-less CSV.gz written batch by batch (Arrow's CSV text, zlib level 1, a gzip
    header without a time stamp, so the same rows give the same bytes)."""

    def __init__(self, path: Path) -> None:
        import zlib

        self.fh = open(path, "wb")  # noqa: SIM115 (closed in __exit__)
        self.z = zlib.compressobj(1, zlib.DEFLATED, 31)

    def write(self, batch) -> None:
        import io

        import pyarrow.csv as pa_csv

        buf = io.BytesIO()
        pa_csv.write_csv(batch, buf, pa_csv.WriteOptions(include_header=False,
                                                         quoting_style="needed"))
        self.fh.write(self.z.compress(buf.getvalue()))

    def __enter__(self) -> _GzipCsv:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.fh.write(self.z.flush())
        finally:
            self.fh.close()


def _write_query_csv(con, path: Path, query: str) -> None:
    with _GzipCsv(path) as csv:
        for batch in con.sql(query).to_arrow_reader(ROWS_PER_BATCH):
            csv.write(batch)


ROWS_PER_BATCH = 262_144


def _finish_csv(out, stem: str, columns, header_suffix: str) -> list[str]:
    """Write ``stem + header_suffix`` (column,type rows); record both files' entries."""
    data_rel, header_rel = f"{stem}.csv.gz", f"{stem}{header_suffix}"
    (out.target / header_rel).write_text("".join(f"{c},{t}\n" for c, t in columns))
    for rel in (data_rel, header_rel):
        out.entries[rel] = file_entry(out.target / rel)
    return [data_rel, header_rel]


def _pg_value(name: str, duck_type: str) -> str:
    """A column as PostgreSQL's CSV writer spells it (booleans t/f, timestamps with a space)."""
    q = f'"{name}"'
    if duck_type == "BOOLEAN":
        return f"CASE WHEN {q} THEN 't' WHEN NOT {q} THEN 'f' END AS {q}"
    if duck_type.startswith("TIMESTAMP"):
        return f"strftime({q}::TIMESTAMP, '%Y-%m-%d %H:%M:%S.%f') AS {q}"
    return q


def _hashes(path: Path) -> dict:
    """Size, MD5 and CRC32C (base64 of the big-endian digest, as in ``x-goog-hash``)."""
    import google_crc32c

    md5, crc = hashlib.md5(usedforsecurity=False), google_crc32c.Checksum()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            md5.update(chunk)
            crc.update(chunk)
    return {"bytes": path.stat().st_size, "md5": base64.b64encode(md5.digest()).decode(),
            "crc32c": base64.b64encode(crc.digest()).decode()}


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
