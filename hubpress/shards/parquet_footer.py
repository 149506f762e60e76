"""What a parquet file's footer says (rows, Hugging Face features), read without its data pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from hubpress.parsers import load_json


@dataclass(frozen=True, slots=True)
class ParquetFooter:
    num_rows: int
    features: dict[str, Any] | None  # the `huggingface` schema metadata's features, as datasets wrote them
    first_row: dict[str, Any] | None = None  # when asked for: the first row's columns, if it reads


def read_footer(fh: BinaryIO, first_row_columns: Sequence[str] = ()) -> ParquetFooter:
    """The footer; with `first_row_columns`, also the first row's values of those columns (read
    from the first row group's column chunks only: for text columns, no image bytes)."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(fh)
    meta = parquet.metadata
    raw = (meta.schema.to_arrow_schema().metadata or {}).get(b"huggingface")
    features = None
    if raw:
        doc = load_json(raw, "a parquet footer's huggingface metadata")
        features = doc.get("info", {}).get("features") if isinstance(doc, dict) else None
    first_row = None
    if first_row_columns and meta.num_row_groups:
        rows = parquet.read_row_group(0, columns=list(first_row_columns)).slice(0, 1).to_pylist()
        first_row = rows[0] if rows else None
    return ParquetFooter(num_rows=meta.num_rows, features=features, first_row=first_row)
