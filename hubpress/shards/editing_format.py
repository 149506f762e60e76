"""The qflux editing schema as the plain values `datasets` derives from its Features: the Arrow
schema with its `huggingface` metadata, the parquet writer options, the features' dict and their
YAML form for the card.

They are held here as data, not computed, so a changed night that builds a few shards writes them,
stages their card and checks their footers without importing `datasets` (0.6-0.9 s, pandas
included; docs/performance.md). The values are the ones datasets 5.x computes for
`hubpress.shards.editing.editing_features()`; tests/shards/test_editing_format.py holds them to
what the installed datasets computes, so a datasets release that changes them fails there, not in
a published shard. Pinning them also keeps the shard key's promise (hubpress.shards.keys): a
shard's bytes depend on its plan and the shard format, not on the installed datasets version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

IMAGE = {"_type": "Image"}

# Features.to_dict() of the editing features (what a shard's footer must carry).
FEATURES_DICT: dict[str, Any] = {
    "id": {"dtype": "string", "_type": "Value"},
    "control_images": {"feature": IMAGE, "_type": "List"},
    "control_mask": IMAGE,
    "target_image": IMAGE,
    "prompt": {"dtype": "string", "_type": "Value"},
}

# Features._to_yaml_list(): the card's dataset_info.features.
FEATURES_YAML: list[dict[str, Any]] = [
    {"name": "id", "dtype": "string"},
    {"name": "control_images", "list": "image"},
    {"name": "control_mask", "dtype": "image"},
    {"name": "target_image", "dtype": "image"},
    {"name": "prompt", "dtype": "string"},
]

_MEDIA_LEAVES = [
    f"{column}.{leaf}"
    for column in ("control_images.list.element", "control_mask", "target_image")
    for leaf in ("bytes", "path")
]


def writer_options() -> dict[str, Any]:
    """hubpress.shards.parquet.writer_options(editing_features()), as datasets computes it: media
    leaves uncompressed, PLAIN and without statistics; `id` and `prompt` snappy and
    dictionary-encoded; content-defined chunking with datasets' default options; a page index."""
    return {
        "use_content_defined_chunking": {
            "min_chunk_size": 262144,
            "max_chunk_size": 1048576,
            "norm_level": 0,
        },
        "write_page_index": True,
        "compression": {"id": "snappy", **dict.fromkeys(_MEDIA_LEAVES, "none"), "prompt": "snappy"},
        "use_dictionary": ["id", "prompt"],
        "column_encoding": dict.fromkeys(_MEDIA_LEAVES, "PLAIN"),
        "write_statistics": ["id", "prompt"],
    }


@cache
def arrow_schema() -> pa.Schema:
    """editing_features().arrow_schema: datasets' Image storage type (struct of bytes and path)
    and the `huggingface` metadata key, byte for byte as datasets writes it."""
    import pyarrow as pa

    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    metadata = json.dumps({"info": {"features": FEATURES_DICT}})
    return pa.schema(
        [
            ("id", pa.string()),
            ("control_images", pa.list_(image)),
            ("control_mask", image),
            ("target_image", image),
            ("prompt", pa.string()),
        ],
        metadata={"huggingface": metadata},
    )


@dataclass(frozen=True)
class EditingParquet:
    """What hubpress.shards.parquet.ShardWriter reads from a Features object (its `arrow_schema`),
    for the editing schema, without datasets."""

    @property
    def arrow_schema(self) -> pa.Schema:
        return arrow_schema()


EDITING_PARQUET = EditingParquet()


def dataset_info_yaml_dict(splits: Iterable[tuple[str, int, int]], download_size: int) -> dict[str, Any]:
    """DatasetInfo(features=editing_features(), splits=..., download_size=..., dataset_size=...)
    ._to_yaml_dict() for `splits` given as (name, num_bytes, num_examples), in order."""
    splits = list(splits)
    return {
        "features": [dict(feature) for feature in FEATURES_YAML],
        "splits": [{"name": n, "num_bytes": b, "num_examples": e} for n, b, e in splits],
        "download_size": download_size,
        "dataset_size": sum(b for _, b, _ in splits),
    }
