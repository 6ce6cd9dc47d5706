"""The Parquet/JSON writer of a sample: writes each file as soon as it is built, records hashes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from offline_cave.contract.files import file_entry
from offline_cave.generator.cache import SampleError

PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "write_statistics": True}
ROW_GROUP_SIZE = 131_072
# float columns of skeletons compress far better split by byte stream
_FLOAT_ENCODED = {"x", "y", "z", "radius"}


class Writer:
    """Writes files of a sample into a directory as soon as they are built; records hashes."""

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        self.entries: dict[str, dict] = {}

    def put(self, rel: str, payload) -> tuple[pa.Schema | None, int]:
        """Write a table (Arrow, pandas, or an iterator of Arrow chunks) or a JSON payload.

        Returns the table's schema and row count (``None, 0`` for JSON).
        """
        path = self.target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        schema, n_rows = None, 0
        if isinstance(payload, (dict, list)):
            path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
        else:
            if isinstance(payload, pd.DataFrame):
                payload = pa.Table.from_pandas(payload, preserve_index=False)
            chunks = [payload] if isinstance(payload, pa.Table) else payload
            writer = None
            for chunk in chunks:
                if writer is None:
                    schema = chunk.schema
                    encoded = {c: "BYTE_STREAM_SPLIT" for c in schema.names
                               if c in _FLOAT_ENCODED and rel.startswith("skeletons/")}
                    writer = pq.ParquetWriter(
                        path, schema, use_dictionary=[c for c in schema.names if c not in encoded],
                        column_encoding=encoded or None, **PARQUET_OPTIONS)
                writer.write_table(chunk, row_group_size=ROW_GROUP_SIZE)
                n_rows += chunk.num_rows
            if writer is None:
                raise SampleError(f"no rows for {rel}")
            writer.close()
        self.entries[rel] = file_entry(path)
        return schema, n_rows

    def put_bytes(self, rel: str, data: bytes) -> None:
        """Write an opaque file (an image or segmentation chunk)."""
        path = self.target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.entries[rel] = file_entry(path)
