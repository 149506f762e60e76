"""The shard-building task: a thin wrapper over hubpress.shards.shards.stage_shard.

The publish flow maps `build_shard` over the shards its plan must build (its task runner, or a
build-split subflow per split, runs them in parallel); each is sealed in the shard store. Only transient failures are
retried (hubpress.targets.retries): a source file that changed since validation, a bad option or a full
disk fail at once with their own message.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import task

from hubpress.errors import UndecodableAtBuild, disk_errors
from hubpress.settings import Settings
from hubpress.shards.shard_store import SealedShard
from hubpress.shards.shards import ShardPlan, stage_shard
from hubpress.shards.staging import Staging
from hubpress.targets.retries import NO_CACHE, TRANSIENT_RETRIES


@dataclass(frozen=True, slots=True)
class UndecodableShard:
    """A shard that was not staged: these images (FileRef, detail) did not decode. Returned, not
    raised, so the run's log shows a warning and the retake (flows/publish_dataset._publish),
    not a failed task."""

    problems: tuple


@task(name="build-shard", task_run_name="build-{plan.name}", **NO_CACHE, **TRANSIENT_RETRIES)
def build_shard(
    plan: ShardPlan,
    staging_uri: str | None,
    settings: Settings | None = None,
    decode_in_process: bool = False,
) -> SealedShard | UndecodableShard:
    """Write one shard and seal it in staging. Peak memory is one row group, whatever its size.
    `decode_in_process`: the build has only a few images to decode (hubpress.sources.reader)."""
    staging = Staging(staging_uri, settings)
    with disk_errors(staging.storage.root):
        try:
            return stage_shard(staging, plan, decode_in_process=decode_in_process)
        except UndecodableAtBuild as exc:
            return UndecodableShard(exc.problems)
