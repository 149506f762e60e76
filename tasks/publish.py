"""Prefect tasks for publishing: thin wrappers over hubpress.publish and the dataset pipeline.

Task retries are for transient failures only (a retry condition): bad data, a refused token or a
Hub limit fail at once. The Hub client already retries 429/5xx inside a task with backoff.
"""

from __future__ import annotations

import tempfile

from prefect import task

from hubpress import artifacts
from hubpress.dataset_pipeline import StagedDataset, card_renderer, reuse_stage, stage_build, verify_published
from hubpress.publish import PublishOutcome, publish_files
from hubpress.retries import NO_CACHE, TRANSIENT_RETRIES
from hubpress.settings import Settings
from hubpress.staging import Staging


@task(name="reuse-stage", **NO_CACHE)
def reuse_stage_task(staging: Staging, fingerprint: str) -> StagedDataset | None:
    return reuse_stage(staging, fingerprint)


@task(name="seal-stage", **NO_CACHE)
def seal_stage_task(staging, fingerprint, report, shards, options, flow_run_id) -> StagedDataset:
    return stage_build(staging, fingerprint, report, shards, options, flow_run_id)


@task(name="publish", **NO_CACHE, **TRANSIENT_RETRIES)
def publish_task(target, staged_files, staging: Staging | None, **kwargs) -> PublishOutcome:
    """Plan against the target, then one commit. The plan becomes a table artifact."""
    if staging is None:  # files published from where they are (LoRA weights on local disk)
        return publish_files(target, staged_files, on_plan=artifacts.plan_table, **kwargs)
    # Only files the plan uploads are fetched from S3 staging, and only once they are needed.
    with tempfile.TemporaryDirectory(prefix="hubpress-upload-") as tmp:
        return publish_files(
            target,
            staged_files,
            materialise=lambda f: staging.local_copy(f, tmp),
            on_plan=artifacts.plan_table,
            **kwargs,
        )


@task(name="verify", **NO_CACHE, **TRANSIENT_RETRIES)
def verify_task(target_name, target, commit, staged, staging, settings: Settings, token) -> dict[str, int]:
    return verify_published(target_name, target, commit, staged, staging, settings, token)


__all__ = ["card_renderer", "publish_task", "reuse_stage_task", "seal_stage_task", "verify_task"]
