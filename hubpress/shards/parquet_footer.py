"""What a parquet file's footer says (rows, Hugging Face features), read without its data pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

from hubpress.parsers import load_json


@dataclass(frozen=True, slots=True)
class ParquetFooter:
    num_rows: int
    features: dict[str, Any] | None  # the `huggingface` schema metadata's features, as datasets wrote them


def read_footer(fh: BinaryIO) -> ParquetFooter:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(fh).metadata
    raw = (meta.schema.to_arrow_schema().metadata or {}).get(b"huggingface")
    features = None
    if raw:
        doc = load_json(raw, "a parquet footer's huggingface metadata")
        features = doc.get("info", {}).get("features") if isinstance(doc, dict) else None
    return ParquetFooter(num_rows=meta.num_rows, features=features)
