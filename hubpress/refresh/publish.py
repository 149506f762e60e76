"""Turn a refresh's rows into a staged, publishable dataset: parquet shards in the shard store,
and the card, manifest, index and SimpleTuner dataloader entry in the run's folder of staging.

The flow (hubpress/flows/refresh_dataset.py) calls, in order:

1. `hubpress.refresh.lineage.upstream_revisions` and `unchanged_manifest`: when the target's
   manifest.json records the same revisions and configuration, the run stops there.
2. `build_refresh`: rows are read (streaming when configured) and every shard is planned and keyed
   by its rows' content (hubpress.refresh.shards); the shards the target or the shard store
   already hold are reused, by the rule publish-dataset follows (hubpress.shards.reuse), and only
   the others are built: parquet with the Hugging Face features metadata (so `load_dataset`
   decodes the images), sealed in the shard store. manifest.json (with each shard's key), the
   index and the dataloader entry are staged beside them, and the card's facts decided
   (hubpress.refresh.card).
3. The shared publisher (`hubpress.targets.publish.publish_files`) plans and makes one commit;
   `render_refresh_card` merges the card with the target's current README; `verify_refresh`
   checks the commit.

Everything written is a pure function of its inputs (no timestamps), so an unchanged refresh
stages identical bytes and the same seed always gives the same mixed dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
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
from hubpress.refresh.row_facts import FROM_FACTS, RowFacts
from hubpress.refresh.rows import RefreshReport, metadata_cache_dir
from hubpress.refresh.shards import (
    WriteAsRead,
    build_refresh_shards,
    plan_refresh_shards,
    row_digest,
    row_key,
    row_size,
)
from hubpress.shards.boundaries import ShardBounds, cut_rows
from hubpress.shards.pipeline import decide_reuse, read_target_holdings
from hubpress.shards.reuse import BuildPlan, ShardChoice, shard_counts
from hubpress.shards.runs import RunStage
from hubpress.shards.shard_store import SHARDS, ShardStore
from hubpress.shards.sizes import DEFAULT_ROW_GROUP_ROWS
from hubpress.shards.staging import Staging, json_bytes
from hubpress.shards.verify import verify_dataset_revision
from hubpress.targets.base import Target
from hubpress.targets.plan import StagedFile
from hubpress.targets.publish import MANIFEST

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


def shard_row_groups(
    rows: Iterable[dict[str, Any]], max_shard_size: int, min_shard_size: int | None = None
) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """(row group, whether a shard ends after it), in row order, by the boundary rule every build
    shares (hubpress.shards.boundaries.cut_rows): keyed by backend and upstream row, sized by media."""
    bounds = ShardBounds.of(max_shard_size, min_shard_size)  # row groups bounded as every build's
    return cut_rows(rows, bounds, row_key, row_size)


@dataclass
class RowsRead:
    """The backends' rows (lazily, in the published order), with their reports once consumed, and
    how to read the rows at given positions of that order again (for the shards to rebuild)."""

    rows: Iterator[dict[str, Any]]
    reports: dict[str, RefreshReport]
    cache_reused: dict[str, bool | None]
    again: Callable[[list[int]], Iterator[dict[str, Any]]]


def read_rows(
    config: RefreshConfig,
    seed: int,
    stopping: str,
    token: str | None,
    endpoint: str | None = None,
    row_facts: RowFacts | None = None,
) -> RowsRead:
    """One backend: its rows as they are read (with `row_facts`, a Hub backend's rows of upstream
    files read before are planned from their facts: hubpress.refresh.row_facts). Several:
    read_mixed's order. Every configuration error (missing column, ...) is raised here, before any
    row is written."""
    if len(config.backends) == 1:
        backend = config.backends[0]
        read = read_backend(backend, token, endpoint, row_facts)

        def again(positions: list[int]) -> Iterator[dict[str, Any]]:
            return read.reread([read.kept_source_indices[p] for p in positions])

        return RowsRead(read.rows(), {backend.id: read.report}, {backend.id: read.cache_reused}, again)
    mixed = read_mixed(config, seed, token, endpoint, stopping=stopping)  # type: ignore[arg-type]

    def arrow_rows(dataset: Any) -> Iterator[dict[str, Any]]:
        batches = dataset.with_format("arrow").iter(batch_size=DEFAULT_ROW_GROUP_ROWS)
        return (row for batch in batches for row in batch.to_pylist())

    return RowsRead(
        arrow_rows(mixed.dataset),
        mixed.reports,
        mixed.cache_reused,
        lambda positions: arrow_rows(mixed.dataset.select(positions)),
    )


@dataclass(slots=True)
class StagedRefresh:
    fingerprint: str
    files: list[StagedFile]  # published files (shards, manifest, index, dataloader); README merged later
    card: dict[str, Any]  # {"meta": YAML keys, "body": markdown}
    manifest: dict[str, Any]
    reused: bool  # no shard was built: each came from the target or the shard store
    stage_uri: str
    cache_reused: dict[str, bool | None] = field(default_factory=dict)
    build_plan: BuildPlan | None = None  # which shards were reused and built (hubpress.shards.reuse)
    # Upstream media bytes read: each kept row of a changed upstream file once (all of them in a
    # first refresh), then the rows of the rebuilt shards again.
    media_bytes_read: int = 0

    @property
    def kept(self) -> int:
        return self.manifest["splits"][SPLIT]["num_examples"]

    @property
    def dropped(self) -> int:
        return self.manifest["splits"][SPLIT]["num_dropped"]

    def shard_counts(self, sent_paths: Iterable[str]) -> dict[str, Any]:
        """Shards reused, built and sent, and the upstream media bytes read, as publish-dataset says them."""
        assert self.build_plan is not None
        counts = shard_counts(self.build_plan, sent_paths, 0)
        return counts | {"source_bytes_read": self.media_bytes_read}


def published_row_function(
    config: RefreshConfig, features: Any
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A read row -> the row as written (caption columns, and for a mix its collection and
    membership), holding exactly the published columns: what a shard's key digests."""
    out_names = list(features)
    caption_names = simpletuner.caption_columns(config)
    ids = [b.id for b in config.backends]
    mixed = len(ids) > 1

    def publish(row: dict[str, Any]) -> dict[str, Any]:
        if mixed:
            row = {
                **row,
                simpletuner.COLLECTION_COLUMN: row["backend_id"],
                simpletuner.MEMBERSHIP_COLUMN: simpletuner.membership(row["backend_id"], ids),
            }
        row = simpletuner.published_row(row, caption_names)
        return {name: row.get(name) for name in out_names}

    return publish


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
    *,
    stage: RunStage | None = None,
    target: Target | None = None,
    revision: str = "main",
) -> StagedRefresh:
    """Read the rows and key every shard (pass 1), decide which the target or the shard store
    hold, build only the others (pass 2, rows read again), then stage the manifest, the index and
    the dataloader entry in the run's folder (`stage`; a new one when not given). When the target
    holds no keyed shard, each shard is built as pass 1 reads it (hubpress.refresh.shards)."""
    features = published_features(config)
    bounds = ShardBounds.of(options.max_shard_size)
    publish = published_row_function(config, features)
    manifest, held = read_target_holdings(target, revision)
    facts = RowFacts(
        metadata_cache_dir(config.backends[0], staging.settings.cache_dir),
        config_fp,
        lambda row: (row_digest(publish(row)), row_size(row)),
        reuse=bool(held),  # planning from facts needs a pass 2 to build (not write-as-read)
    )
    rows = read_rows(config, options.seed, options.stopping, token, endpoint, facts)
    source_indices: list[int] = []
    backend_ids: list[str] = []
    mixed = len(config.backends) > 1

    media_read = [0]  # media bytes pass 1 read (rows planned from their facts were not read)

    def seen(row: dict[str, Any]) -> None:
        source_indices.append(row["source_index"])
        if mixed:
            backend_ids.append(row["backend_id"])
        if not row.get(FROM_FACTS):
            media_read[0] += row_size(row)

    def to_table(group: list[dict[str, Any]]) -> pa.Table:
        columns = {name: [row[name] for row in group] for name in features}
        return pa.Table.from_pydict(columns, schema=features.arrow_schema)

    stage = stage or RunStage(staging)
    store = ShardStore(staging)
    if held:  # pass 1 keys every shard, the rule decides, pass 2 builds the others
        plans = plan_refresh_shards(rows.rows, publish, features, bounds, seen)
        build_plan = decide_reuse(plans, staging, stage, manifest, held)
        built = build_refresh_shards(
            store, build_plan.to_build, rows.again, publish, to_table, features, bounds
        )
        media_bytes_read = media_read[0] + build_plan.source_bytes_to_read
    else:  # the target holds nothing to reuse: each shard is written as its rows are read, once
        written_as_read = WriteAsRead(store, to_table)
        plans = plan_refresh_shards(rows.rows, publish, features, bounds, seen, written_as_read)
        stage.renew(keys=[plan.key for plan in plans])
        build_plan = BuildPlan(tuple(ShardChoice(plan, "build") for plan in plans), manifest)
        built = written_as_read.sealed
        media_bytes_read = media_read[0]
    by_key = {shard.key: shard for shard in [*build_plan.reused, *built]}
    shards = [by_key[choice.plan.key] for choice in build_plan.choices]
    extra = {
        INDEX_FILE: staging.add_bytes(
            stage.relpath, INDEX_FILE, json_bytes(simpletuner_index(config, source_indices, backend_ids))
        ),
        DATALOADER_FILE: staging.add_bytes(
            stage.relpath, DATALOADER_FILE, json_bytes(dataloader_entry(config, options.target))
        ),
    }
    written = [s.built() for s in shards]
    keys = {s.path_in_repo: s.key for s in shards}
    manifest = build_manifest(
        config, options, revisions, config_fp, stage_fp, rows.reports, written, extra, flow_run_id, keys
    )
    card = card_facts(config, options, manifest, features, written, rows.reports)
    files = [s.staged() for s in shards] + list(extra.values())
    files.append(staging.add_bytes(stage.relpath, MANIFEST, json_bytes(manifest)))
    return StagedRefresh(
        stage_fp,
        files,
        card,
        manifest,
        not build_plan.to_build,
        staging.storage.uri(SHARDS),
        dict(rows.cache_reused),
        build_plan,
        media_bytes_read,
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


def check_single_kind(config: RefreshConfig) -> None:
    kinds = {("editing" if getattr(b, "editing", None) else b.dataset_type) for b in config.backends}
    if len(kinds) > 1:
        raise ConfigError(f"backends of different kinds cannot be mixed into one dataset: {sorted(kinds)}")
