"""Prefect tasks for the refresh flow: thin wrappers over hubpress.refresh (lineage, publish).

Resolving upstream revisions and reading the target's manifest retry on transient failures only
(a dataset that does not exist or a refused token fails at once, with its one-line message).
Building is one task: rows arrive as a stream (bounded memory), are keyed shard by shard, and only
the shards neither the target nor the shard store holds are built (hubpress.refresh.shards).
"""

from __future__ import annotations

from typing import Any

from prefect import task

from hubpress.errors import disk_errors
from hubpress.refresh.config import RefreshConfig
from hubpress.refresh.lineage import RefreshOptions, upstream_revisions
from hubpress.refresh.publish import StagedRefresh, build_refresh, verify_refresh
from hubpress.shards.runs import RunStage
from hubpress.shards.staging import Staging
from hubpress.targets.ownership import usable_manifest
from hubpress.targets.publish import MANIFEST, apply_tag
from hubpress.targets.retries import NO_CACHE, TRANSIENT_RETRIES


@task(name="resolve-upstream", **NO_CACHE, **TRANSIENT_RETRIES)
def resolve_upstream_task(config: RefreshConfig, token: str | None) -> dict[str, str]:
    """Backend id -> exact upstream revision sha (one Hub API call per backend, no data)."""
    return upstream_revisions(config, token)


@task(name="read-target-manifest", **NO_CACHE, **TRANSIENT_RETRIES)
def read_manifest_task(target: Any, revision: str) -> str | None:
    """The manifest.json the target holds now (None for a new repo, branch or directory)."""
    return usable_manifest(lambda: target.read_text(MANIFEST, revision))


@task(name="build-refresh", **NO_CACHE, **TRANSIENT_RETRIES)
def build_refresh_task(
    config: RefreshConfig,
    options: RefreshOptions,
    revisions: dict[str, str],
    config_fp: str,
    stage_fp: str,
    staging: Staging,
    token: str | None,
    flow_run_id: str | None,
    stage: RunStage,
    target: Any,
    revision: str,
) -> StagedRefresh:
    """Read rows (streaming when configured), key every shard, build those the target and the
    shard store do not hold, and stage the manifest, the index and the dataloader entry."""
    with disk_errors(staging.storage.root):
        return build_refresh(
            config,
            options,
            revisions,
            config_fp,
            stage_fp,
            staging,
            token,
            flow_run_id,
            stage=stage,
            target=target,
            revision=revision,
        )


@task(name="verify", **NO_CACHE, **TRANSIENT_RETRIES)
def verify_refresh_task(
    target_name: str,
    target: Any,
    commit: str,
    config: RefreshConfig,
    staged: StagedRefresh,
    token: str | None,
) -> dict[str, int]:
    """The committed revision's shards carry the manifest's row counts and the published features,
    and the split opens with datasets at the new commit (first row only)."""
    return verify_refresh(target_name, target, commit, config, staged.manifest, token)


@task(name="tag-unchanged", **NO_CACHE, **TRANSIENT_RETRIES)
def tag_head_task(target: Any, revision: str, tag: str) -> bool:
    """Tag the target's current head (nothing changed, so it is the refresh being asked for).
    False when the tag already points there; a tag on another commit is an error (never moved)."""
    head = target.head(revision)
    if head is None:
        return False
    return apply_tag(target, head, tag, f"Refresh unchanged: tagged {tag}")
