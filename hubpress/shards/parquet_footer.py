"""What a parquet file's footer says (rows, Hugging Face features), read without its data pages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, BinaryIO


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
        features = json.loads(raw).get("info", {}).get("features")
    return ParquetFooter(num_rows=meta.num_rows, features=features)
