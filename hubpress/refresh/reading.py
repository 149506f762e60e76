"""Read every backend of a refresh: one backend's rows, or several mixed by hubpress.refresh.mix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hubpress.errors import ConfigError
from hubpress.refresh.config import HuggingfaceBackend, LocalBackend, RefreshConfig
from hubpress.refresh.local import read_local
from hubpress.refresh.mix import DEFAULT_STOPPING, Stopping, mix_counts, mix_plan
from hubpress.refresh.row_facts import RowFacts
from hubpress.refresh.rows import (
    RefreshReport,
)
from hubpress.refresh.upstream import BackendRead, read_huggingface


def read_backend(
    cfg: HuggingfaceBackend | LocalBackend,
    token: str | None = None,
    endpoint: str | None = None,
    row_facts: RowFacts | None = None,
) -> BackendRead:
    if isinstance(cfg, LocalBackend):
        return read_local(cfg)
    return read_huggingface(cfg, token, endpoint, row_facts=row_facts)


def output_features(cfg: HuggingfaceBackend | LocalBackend, with_backend_id: bool = False) -> Any:
    """datasets.Features of the rows a backend yields (audio as a bytes/path struct: encoding an
    Audio feature needs torchcodec, so cast the column to Audio(decode=False) afterwards)."""
    from datasets import Features, Image, List, Value, Video

    media_struct = {"bytes": Value("binary"), "path": Value("string")}
    if isinstance(cfg, HuggingfaceBackend) and cfg.editing is not None:
        spec: dict[str, Any] = {
            "id": Value("string"),
            "control_images": List(Image()),
            "control_mask": Image(),
            "target_image": Image(),
            "prompt": Value("string"),
            "source_index": Value("int64"),
        }
    else:
        spec = {"captions": List(Value("string")), "source_index": Value("int64")}
        if cfg.dataset_type == "image":
            spec |= {"image": Image(), "width": Value("int32"), "height": Value("int32")}
        elif cfg.dataset_type == "video":
            spec |= {
                "video": Video(decode=False),
                "width": Value("int32"),
                "height": Value("int32"),
                "num_frames": Value("int32"),
                "fps": Value("float32"),
            }
        else:
            spec |= {"audio": media_struct, "lyrics": Value("string")}
    if with_backend_id:
        spec["backend_id"] = Value("string")
    return Features(spec)


@dataclass
class MixedRead:
    dataset: Any  # datasets.Dataset, on disk (Arrow), in the mixed order
    reports: dict[str, RefreshReport]
    revisions: dict[str, str | None]
    indexes: dict[str, dict[str, int]]
    cache_reused: dict[str, bool | None] = field(default_factory=dict)


def read_mixed(
    config: RefreshConfig,
    seed: int,
    token: str | None = None,
    endpoint: str | None = None,
    stopping: Stopping = DEFAULT_STOPPING,
) -> MixedRead:
    """Every backend read into an Arrow-backed Dataset (bounded memory), then mixed by mix_plan."""
    from datasets import Dataset, concatenate_datasets

    kinds = {("editing" if getattr(b, "editing", None) else b.dataset_type) for b in config.backends}
    if len(kinds) > 1:
        raise ConfigError(f"backends of different kinds cannot be mixed into one dataset: {sorted(kinds)}")
    reads = [read_backend(b, token, endpoint) for b in config.backends]  # every error before any rows
    features = output_features(config.backends[0], with_backend_id=True)
    parts = []
    for read in reads:
        backend_id = read.backend.id

        def tagged(read: BackendRead = read, backend_id: str = backend_id) -> Iterator[dict[str, Any]]:
            for row in read.rows():
                yield {**row, "backend_id": backend_id}

        # A fresh fingerprint each time: a cached Arrow file would skip the generator, and with it
        # the report and the index that reading fills in.
        parts.append(Dataset.from_generator(tagged, features=features, fingerprint=uuid.uuid4().hex))
    sizes = {r.backend.id: len(p) for r, p in zip(reads, parts, strict=True)}
    plan = mix_plan(sizes, config.probabilities(), seed, stopping)
    counted = mix_counts(plan, sizes)
    for read in reads:  # an opt-in rule's left-out and repeated rows are counted in the report
        counts = counted[read.backend.id]
        read.report.left_out_by_mixing = counts["left_out"]
        read.report.repeated_by_mixing = counts["repeated"]
    offsets, total = {}, 0
    for read, part in zip(reads, parts, strict=True):
        offsets[read.backend.id] = total
        total += len(part)
    combined = concatenate_datasets(parts)
    mixed = combined.select([offsets[b] + i for b, i in plan])
    return MixedRead(
        dataset=mixed,
        reports={r.backend.id: r.report for r in reads},
        revisions={r.backend.id: r.revision_sha for r in reads},
        indexes={r.backend.id: r.index() for r in reads},
        cache_reused={r.backend.id: r.cache_reused for r in reads},
    )
