"""A refresh's shards, planned and keyed before any is built, by publish-dataset's rule.

A refreshed shard's bytes are a function of its rows as published, the published features, the
row-group bounds and the formats. So, as for publish-dataset (hubpress.shards.reuse):

1. `plan_refresh_shards` reads the rows once, in their published order, cuts them with the one
   boundary rule (hubpress.shards.boundaries) and keys each shard with the one key rule
   (hubpress.shards.keys.shard_key) over each row's backend, upstream row and content digest
   (`row_digest`: every published value, media by the sha256 of its bytes). Nothing is written.
2. hubpress.shards.pipeline.decide_reuse says which shards the target's manifest or the shard store
   already hold: those are not written, hashed, staged or sent.
3. `build_refresh_shards` reads again only the rows of the shards to build (the backend reads just
   the upstream row groups that hold them), writes each with the one writer and seals it in the
   shard store under its key. A row read back with other content than the first read fails the run.

Every kept row is read once to take its digest; only the rows of rebuilt shards are read twice.
The rows of an upstream parquet file that a refresh read before (same file content and place, same
configuration) are planned from the facts kept then, without reading their media
(hubpress.refresh.row_facts): a new upstream commit costs the reading of the files it changed.
When the target holds no keyed shard (a first refresh, or a target written before keys), every
shard will be built: then step 1 writes and seals each shard as it reads its rows (`WriteAsRead`),
and nothing is read twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubpress.errors import SourceError
from hubpress.refresh.lineage import REFRESH_FORMAT, SPLIT
from hubpress.refresh.row_facts import ROW_FACTS
from hubpress.shards.boundaries import ShardBounds, cut_rows
from hubpress.shards.keys import shard_key
from hubpress.shards.parquet import BuiltShard, ShardWriter
from hubpress.shards.shard_store import SHARDS, SealedShard, ShardStore
from hubpress.shards.shards import SHARD_FORMAT, seal_written
from hubpress.storage.scratch import scratch_dir

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RefreshShardPlan:
    """One refreshed shard: rows [start, start + num_rows) of the published order, in row groups
    of these sizes, and the key of their content (hubpress.shards.reuse.Planned)."""

    key: str
    start: int
    row_groups: tuple[int, ...]
    source_bytes: int  # media bytes of its rows: what a rebuild reads again
    split: str = SPLIT

    @property
    def num_rows(self) -> int:
        return sum(self.row_groups)

    @property
    def positions(self) -> range:
        return range(self.start, self.start + self.num_rows)

    @property
    def path_in_repo(self) -> str:
        return f"data/{self.split}-{self.key[:16]}.parquet"


def row_size(row: Mapping[str, Any]) -> int:
    """A refreshed row's bytes for the boundary rule: its media bytes and a fixed overhead (kept
    in its facts for a row planned without its media, hubpress.refresh.row_facts)."""
    known = row.get(ROW_FACTS)
    if known is not None:
        return int(known[1])
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


def _plain(value: Any) -> Any:
    """A published value as plain JSON: bytes by their sha256, everything else as it is."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"sha256": hashlib.sha256(value).hexdigest()}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):  # a numpy scalar
        return value.item()
    return value


def row_digest(published: Mapping[str, Any]) -> str:
    """The content digest of one published row: every column's value, media by its bytes' sha256."""
    text = json.dumps(_plain(published), sort_keys=True, ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def refresh_shard_key(
    features: Any, bounds: ShardBounds, groups: Iterable[int], rows: Iterable[list[str]]
) -> str:
    """The key of a refreshed shard: the formats, the published features (datasets.Features: they
    decide the writer's schema and options), the row groups, then each row's
    [backend:upstream row, content digest]."""
    header = [
        "refresh",
        SHARD_FORMAT,
        REFRESH_FORMAT,
        SPLIT,
        features.to_dict(),
        bounds.row_group_rows,
        bounds.row_group_bytes,
        list(groups),
    ]
    return shard_key(header, rows)


@dataclass
class WriteAsRead:
    """Where `plan_refresh_shards` writes each shard while it reads its rows, for a refresh the
    target holds nothing of (a first refresh): every shard is built, so its rows are read once.
    `sealed` fills with the shards, in plan order."""

    store: ShardStore
    to_table: Callable[[list[Row]], Any]
    sealed: list[SealedShard] = field(default_factory=list)


def plan_refresh_shards(
    rows: Iterable[Row],
    publish: Callable[[Row], Row],
    features: Any,
    bounds: ShardBounds,
    seen: Callable[[Row], None] = lambda row: None,
    write: WriteAsRead | None = None,
) -> list[RefreshShardPlan]:
    """Pass 1: every shard of the rows (in published order) with its key. `publish` turns a row
    into the row as written; `seen` is called with each row (the index is collected there). With
    `write`, each shard is also written and sealed under its key as its rows go by. Holds one row
    group at a time. No rows: no shard."""
    plans: list[RefreshShardPlan] = []
    start = position = size = 0
    entries: list[list[str]] = []
    groups: list[int] = []
    writer: ShardWriter | None = None
    with ExitStack() as cleanup:
        scratch = _scratch_dir(write.store, cleanup) if write is not None else None
        # A shard being written when the rows fail (or the run stops) leaves nothing behind.
        cleanup.callback(lambda: writer.abort() if writer is not None else None)
        for group, ends_shard in cut_rows(rows, bounds, row_key, row_size):
            published = []
            for row in group:
                seen(row)
                known = row.get(ROW_FACTS)
                if write is not None or known is None:
                    published.append(publish(row))
                digest = known[0] if known is not None else row_digest(published[-1])
                entries.append([row_key(row).decode(), digest])
                size += row_size(row)
            if write is not None:
                writer = writer or ShardWriter(scratch, features)
                writer.write_row_group(write.to_table(published))
            position += len(group)
            groups.append(len(group))
            if ends_shard:
                plan = RefreshShardPlan(
                    refresh_shard_key(features, bounds, groups, entries), start, tuple(groups), size
                )
                plans.append(plan)
                if write is not None and writer is not None:
                    done, writer = writer, None
                    write.sealed.append(
                        seal_written(
                            write.store,
                            plan.key,
                            lambda out, done=done, plan=plan: done.finish(
                                plan.path_in_repo, plan.split, local_path=out
                            ),
                        )
                    )
                start, entries, groups, size = position, [], [], 0
    return plans


def _scratch_dir(store: ShardStore, cleanup: ExitStack) -> Path:
    """Where a shard is written before its key is known: inside local staging (so sealing it is a
    rename), or a temporary folder for S3 staging."""
    if store.staging.is_local:
        return Path(store.storage.uri(SHARDS))
    return Path(cleanup.enter_context(scratch_dir("refresh")))


def build_refresh_shards(
    store: ShardStore,
    plans: list[RefreshShardPlan],
    read_again: Callable[[list[int]], Iterator[Row]],
    publish: Callable[[Row], Row],
    to_table: Callable[[list[Row]], Any],
    features: Any,
    bounds: ShardBounds,
) -> list[SealedShard]:
    """Pass 2: the shards to build, in plan order, each sealed in the shard store under its key.
    `read_again(positions)` yields the rows at those positions of the published order, in order."""
    if not plans:
        return []
    rows = read_again([p for plan in plans for p in plan.positions])
    sealed = []
    for plan in plans:

        def write(out: Path, plan: RefreshShardPlan = plan) -> BuiltShard:
            entries: list[list[str]] = []
            with ShardWriter(out.parent, features) as writer:
                for count in plan.row_groups:
                    group = [row for _, row in zip(range(count), rows, strict=False)]
                    if len(group) < count:
                        raise SourceError(
                            f"Refresh shard {plan.path_in_repo}: the upstream rows read again are fewer "
                            "than the first read found; run the refresh again."
                        )
                    published = [publish(row) for row in group]
                    entries += [
                        [row_key(r).decode(), row_digest(p)] for r, p in zip(group, published, strict=True)
                    ]
                    writer.write_row_group(to_table(published))
                if refresh_shard_key(features, bounds, plan.row_groups, entries) != plan.key:
                    raise SourceError(
                        f"Refresh shard {plan.path_in_repo}: its upstream rows read again differ from "
                        "the first read of the same revision; run the refresh again."
                    )
                return writer.finish(plan.path_in_repo, plan.split, local_path=out)

        sealed.append(seal_written(store, plan.key, write))
    return sealed
