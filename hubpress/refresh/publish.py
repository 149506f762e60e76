"""Turn a refresh's rows into a staged, publishable dataset: parquet shards, card, manifest, index
and a SimpleTuner dataloader entry, all staged under a fingerprint of (upstream shas, config, seed).

The flow (hubpress/flows/refresh_dataset.py) calls, in order:

1. `hubpress.refresh.lineage.upstream_revisions` and `unchanged_manifest`: when the target's
   manifest.json records the same revisions and configuration, the run stops there.
2. `reuse_refresh_stage` or `build_refresh`: rows are read (streaming when configured), written
   as parquet with the Hugging Face features metadata (so `load_dataset` decodes the images), and
   staged with manifest.json, the index, the dataloader entry and the card's facts
   (hubpress.refresh.card).
3. The shared publisher (`hubpress.targets.publish.publish_files`) plans and makes one commit;
   `render_refresh_card` merges the card with the target's current README; `verify_refresh`
   checks the commit.

Everything written is a pure function of its inputs (no timestamps), so an unchanged refresh
stages identical bytes and the same seed always gives the same mixed dataset.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from hubpress.errors import ConfigError
from hubpress.refresh import simpletuner
from hubpress.refresh.card import (
    DATALOADER_FILE,
    INDEX_FILE,
    build_manifest,
    card_facts,
    dataloader_entry,
    is_editing,
    simpletuner_index,
)
from hubpress.refresh.config import RefreshConfig
from hubpress.refresh.lineage import SPLIT, RefreshOptions
from hubpress.refresh.reading import output_features, read_backend, read_mixed
from hubpress.refresh.rows import RefreshReport
from hubpress.shards.boundaries import ShardBounds, cut_rows
from hubpress.shards.parquet import write_shards
from hubpress.shards.sizes import DEFAULT_ROW_GROUP_ROWS
from hubpress.shards.staging import PRIVATE_PREFIX, Staging, json_bytes
from hubpress.shards.verify import verify_dataset_revision
from hubpress.targets.plan import StagedFile
from hubpress.targets.publish import MANIFEST

CARD_FACTS = f"{PRIVATE_PREFIX}refresh_card.json"  # staged beside the files, never published


_COLUMN_ORDER = ("image", "video", "audio", "width", "height", "num_frames", "fps", "lyrics")


def published_features(config: RefreshConfig) -> Any:
    """The published columns: media first, then captions, size, source_index (and backend_id and
    collection when several backends are mixed); the editing schema when an `editing` mapping is
    used (with collection when mixed)."""
    from datasets import Audio, Features, Value

    from hubpress.shards.editing import editing_features

    mixed = len(config.backends) > 1
    if is_editing(config):
        # A copy: editing_features() is cached and shared with publish-dataset's shard writer.
        features = Features(dict(editing_features()))
        if mixed:
            features[simpletuner.COLLECTION_COLUMN] = Value("string")
            features[simpletuner.MEMBERSHIP_COLUMN] = _membership_feature(config)
        return features
    raw = output_features(config.backends[0], with_backend_id=mixed)
    if "audio" in raw:
        raw["audio"] = Audio(decode=False)  # same storage as the bytes/path struct, decoded by datasets
    captions = simpletuner.caption_columns(config)
    for name in captions:  # plain strings, as SimpleTuner reads them (hubpress.refresh.simpletuner)
        raw[name] = Value("string")
    media = [c for c in ("image", "video", "audio") if c in raw]
    rest = [c for c in _COLUMN_ORDER if c in raw and c not in media]
    order = media + captions + rest + ["source_index"]
    if mixed:  # which backend a row came from; `collection` is the name SimpleTuner's filter_func reads
        raw[simpletuner.COLLECTION_COLUMN] = Value("string")
        raw[simpletuner.MEMBERSHIP_COLUMN] = _membership_feature(config)
        order += ["backend_id", simpletuner.COLLECTION_COLUMN, simpletuner.MEMBERSHIP_COLUMN]
    return Features({name: raw[name] for name in order})


def _membership_feature(config: RefreshConfig) -> dict[str, Any]:
    from datasets import Value

    return {b.id: Value("int8") for b in config.backends}


def row_size(row: Mapping[str, Any]) -> int:
    """A refreshed row's bytes for the boundary rule: its media bytes and a fixed overhead."""
    total = 128
    for value in row.values():
        if isinstance(value, Mapping) and isinstance(value.get("bytes"), bytes | bytearray):
            total += len(value["bytes"])
        elif isinstance(value, list):
            total += sum(len(v["bytes"]) for v in value if isinstance(v, Mapping) and v.get("bytes"))
    return total


def row_key(row: Mapping[str, Any]) -> bytes:
    """What identifies a refreshed row: its backend and its row in the upstream snapshot."""
    return f"{row.get('backend_id', '')}:{row['source_index']}".encode()


def shard_row_groups(
    rows: Iterable[dict[str, Any]], max_shard_size: int, min_shard_size: int | None = None
) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """(row group, whether a shard ends after it), in row order, by the boundary rule every build
    shares (hubpress.shards.boundaries.cut_rows): keyed by backend and upstream row, sized by media."""
    bounds = ShardBounds.of(max_shard_size, min_shard_size)  # row groups bounded as every build's
    return cut_rows(rows, bounds, row_key, row_size)


@dataclass
class RowsRead:
    """The backends' rows (lazily, in the published order), with their reports once consumed."""

    rows: Iterator[dict[str, Any]]
    reports: dict[str, RefreshReport]
    cache_reused: dict[str, bool | None]


def read_rows(
    config: RefreshConfig, seed: int, stopping: str, token: str | None, endpoint: str | None = None
) -> RowsRead:
    """One backend: its rows as they are read. Several: read_mixed's order.
    Every configuration error (missing column, ...) is raised here, before any row is written."""
    if len(config.backends) == 1:
        backend = config.backends[0]
        read = read_backend(backend, token, endpoint)
        return RowsRead(read.rows(), {backend.id: read.report}, {backend.id: read.cache_reused})
    mixed = read_mixed(config, seed, token, endpoint, stopping=stopping)  # type: ignore[arg-type]
    batches = mixed.dataset.with_format("arrow").iter(batch_size=DEFAULT_ROW_GROUP_ROWS)
    rows = (row for batch in batches for row in batch.to_pylist())
    return RowsRead(rows, mixed.reports, mixed.cache_reused)


@dataclass(slots=True)
class StagedRefresh:
    fingerprint: str
    files: list[StagedFile]  # published files (shards, manifest, index, dataloader); README merged later
    card: dict[str, Any]  # {"meta": YAML keys, "body": markdown}
    manifest: dict[str, Any]
    reused: bool
    stage_uri: str
    cache_reused: dict[str, bool | None] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        return self.manifest["splits"][SPLIT]["num_examples"]

    @property
    def dropped(self) -> int:
        return self.manifest["splits"][SPLIT]["num_dropped"]


def build_refresh(
    config: RefreshConfig,
    options: RefreshOptions,
    revisions: Mapping[str, str],
    config_fp: str,
    stage_fp: str,
    staging: Staging,
    token: str | None,
    flow_run_id: str | None = None,
    endpoint: str | None = None,
) -> StagedRefresh:
    """Read the rows, write the shards, stage everything, seal the stage (completion record last)."""
    features = published_features(config)
    out_names = list(features)
    caption_names = simpletuner.caption_columns(config)
    rows = read_rows(config, options.seed, options.stopping, token, endpoint)
    source_indices: list[int] = []
    backend_ids: list[str] = []
    mixed = len(config.backends) > 1

    def to_table(group: list[dict[str, Any]]) -> pa.Table:
        source_indices.extend(row["source_index"] for row in group)
        if mixed:
            backend_ids.extend(row["backend_id"] for row in group)
            ids = [b.id for b in config.backends]
            group = [
                {
                    **row,
                    simpletuner.COLLECTION_COLUMN: row["backend_id"],
                    simpletuner.MEMBERSHIP_COLUMN: simpletuner.membership(row["backend_id"], ids),
                }
                for row in group
            ]
        group = [simpletuner.published_row(row, caption_names) for row in group]
        columns = {name: [row.get(name) for row in group] for name in out_names}
        return pa.Table.from_pydict(columns, schema=features.arrow_schema)

    with tempfile.TemporaryDirectory(prefix="hubpress-refresh-") as tmp:
        groups = shard_row_groups(rows.rows, options.max_shard_size)
        shards = write_shards(groups, to_table, features, tmp, SPLIT)
        files = [staging.add_file(stage_fp, s.path_in_repo, s.local_path, s.sha256) for s in shards]
    extra = {
        INDEX_FILE: staging.add_bytes(
            stage_fp, INDEX_FILE, json_bytes(simpletuner_index(config, source_indices, backend_ids))
        ),
        DATALOADER_FILE: staging.add_bytes(
            stage_fp, DATALOADER_FILE, json_bytes(dataloader_entry(config, options.target))
        ),
    }
    manifest = build_manifest(
        config, options, revisions, config_fp, stage_fp, rows.reports, shards, extra, flow_run_id
    )
    card = card_facts(config, options, manifest, features, shards, rows.reports)
    generated = {MANIFEST: json_bytes(manifest), CARD_FACTS: json_bytes(card)}
    files = staging.seal(stage_fp, files + list(extra.values()), generated)
    return StagedRefresh(
        stage_fp, files, card, manifest, False, staging.stage_uri(stage_fp), dict(rows.cache_reused)
    )


def verify_refresh(
    target_name: str,
    target: Any,
    commit: str,
    config: RefreshConfig,
    manifest: Mapping[str, Any],
    token: str | None,
) -> dict[str, int]:
    """The published refresh at `commit`: row counts from the shard footers, the published features,
    and the split opening with datasets (hubpress.shards.verify.verify_dataset_revision)."""
    features = published_features(config)
    first = ["id", "prompt"] if is_editing(config) else ["source_index"]
    return verify_dataset_revision(
        target_name, target, commit, dict(manifest["files"]), features.to_dict(), token, first_columns=first
    )


def reuse_refresh_stage(staging: Staging, stage_fp: str) -> StagedRefresh | None:
    """A complete stage for exactly these upstream revisions, config and seed, or None."""
    files = staging.reopen(stage_fp, required=[MANIFEST, CARD_FACTS])
    if files is None:
        return None
    card = staging.read_json(stage_fp, CARD_FACTS)
    manifest = staging.read_json(stage_fp, MANIFEST)
    return StagedRefresh(stage_fp, files, card, manifest, True, staging.stage_uri(stage_fp))


def check_single_kind(config: RefreshConfig) -> None:
    kinds = {("editing" if getattr(b, "editing", None) else b.dataset_type) for b in config.backends}
    if len(kinds) > 1:
        raise ConfigError(f"backends of different kinds cannot be mixed into one dataset: {sorted(kinds)}")
