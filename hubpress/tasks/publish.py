"""Prefect tasks for publishing: thin wrappers over hubpress.targets.publish and the dataset pipeline.

Task retries are for transient failures only (a retry condition): bad data, a refused token or a
Hub limit fail at once. The Hub client already retries 429/5xx inside a task with backoff.
"""

from __future__ import annotations

import os
from functools import partial

from prefect import get_run_logger, task

from hubpress.errors import HubAccessError, PublishError, disk_errors
from hubpress.orchestration import artifacts
from hubpress.settings import Settings
from hubpress.shards.pipeline import StagedDataset, card_renderer, plan_build, stage_build, verify_published
from hubpress.shards.reuse import BuildPlan
from hubpress.shards.runs import RunStage
from hubpress.shards.staging import Staging
from hubpress.shards.verify import VerifiedRevision
from hubpress.storage.names import is_inside
from hubpress.storage.scratch import scratch_dir
from hubpress.targets import interrupted
from hubpress.targets.hub import HubRepo
from hubpress.targets.hub_waits import HubRateLimited
from hubpress.targets.plan import StagedFile
from hubpress.targets.publish import PublishOutcome, publish_files
from hubpress.targets.retries import NO_CACHE, TRANSIENT_RETRIES


@task(name="plan", **NO_CACHE, **TRANSIENT_RETRIES)
def plan_task(target, revision, report, options, staging: Staging, stage: RunStage) -> BuildPlan:
    """Plan the shards and decide which must be built (hubpress.shards.reuse)."""
    return plan_build(target, revision, report, options, staging, stage)


@task(name="stage", **NO_CACHE)
def stage_task(
    staging, stage, fingerprint, report, shards, options, flow_run_id, build_plan
) -> StagedDataset:
    """manifest.json and the card's facts beside the shards (hubpress.shards.pipeline.stage_build)."""
    with disk_errors(staging.storage.root):
        return stage_build(
            staging,
            stage,
            fingerprint,
            report,
            shards,
            options,
            flow_run_id,
            reused=not build_plan.to_build,
            previous=build_plan.target_manifest,
        )


@task(name="publish", **NO_CACHE, **TRANSIENT_RETRIES)
def publish_task(target, staged_files, staging: Staging | None, **kwargs) -> PublishOutcome:
    """Plan against the target, then one commit. The plan becomes a table artifact."""
    with disk_errors(getattr(target, "description", "the target")):
        return _publish(target, staged_files, staging, **kwargs)


def _publish(target, staged_files, staging: Staging | None, **kwargs) -> PublishOutcome:
    if staging is None:  # files published from where they are (LoRA weights on local disk)
        return publish_files(target, staged_files, on_plan=artifacts.plan_table, **kwargs)
    # Only files the plan uploads are fetched from S3 staging, and only once they are needed; each
    # copy goes as soon as the Hub has it (hubpress.targets.send_ahead).
    with scratch_dir("upload") as tmp:
        return publish_files(
            target,
            staged_files,
            materialise=lambda f: _materialise(staging, f, tmp),
            discard=None if staging.is_local else partial(_discard, tmp),
            on_plan=artifacts.plan_table,
            **kwargs,
        )


def _discard(directory: str, path: str) -> None:
    """Remove a copy `_materialise` made under `directory`; a file it named where it is (local
    staging, a generated card) is never touched."""
    if path != directory and is_inside(os.path.abspath(path), os.path.abspath(directory)):
        os.unlink(path)


def _materialise(staging: Staging, file: StagedFile, directory: str) -> str:
    if file.source.startswith("target:"):  # planned as held by the target (hubpress.shards.reuse)
        raise PublishError(
            f"{file.path} was on the target when this publish was planned and is not there now "
            "(someone changed the repo meanwhile); run the publish again to rebuild it."
        )
    return staging.local_copy(file, directory)


@task(name="preupload", task_run_name="preupload-{file.path}", **NO_CACHE)
def preupload_task(target: HubRepo, file: StagedFile) -> bool:
    """Send one built shard's LFS object while the other shards build (HubRepo.preupload).

    Best effort, because the publish step uploads whatever is not there yet with its own retries
    and messages: a failure here is a warning, except a refused token, which would only fail
    again there after every shard was built, or a wait the Hub asks for beyond hubpress's bound."""
    try:
        target.preupload(file, file.source)
        return True
    except (HubAccessError, HubRateLimited):
        raise
    except Exception as exc:  # noqa: BLE001 - any other failure is retried by the publish step
        if interrupted.stopping():  # cancelled by Ctrl-C: the command says so, once
            return False
        get_run_logger().warning("Early upload of %s failed (%s); the publish step sends it.", file.path, exc)
        return False


@task(name="verify", **NO_CACHE, **TRANSIENT_RETRIES)
def verify_task(
    target_name,
    target,
    commit,
    staged,
    staging,
    settings: Settings,
    token,
    opened_before=None,
    checked_at_parent=None,
) -> VerifiedRevision:
    return verify_published(
        target_name, target, commit, staged, staging, settings, token, opened_before, checked_at_parent
    )


__all__ = [
    "card_renderer",
    "preupload_task",
    "publish_task",
    "plan_task",
    "stage_task",
    "verify_task",
]
