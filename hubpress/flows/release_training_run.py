"""release-training-run: the post-training hook. A `training.job.finished` event (or a person in
the Prefect UI) starts it; it picks a checkpoint, stages its files, publishes weights, config,
samples, card and release.json in one commit, tags it, and emits `hubpress.release.published`.
Running it again on the same output makes no new commit and no new tag."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from hubpress.flows.params import ReleaseTrainingRunParams
from hubpress.lora.publish import RELEASE_JSON, PreparedRelease, card_for, release_manifest
from hubpress.lora.release import default_tag
from hubpress.orchestration import artifacts, assets
from hubpress.settings import get_settings
from hubpress.shards.runs import RunStage, release_stage_done
from hubpress.shards.staging import Staging
from hubpress.storage.scratch import scratch_dir
from hubpress.targets.base import Target
from hubpress.targets.local import refuse_staging_inside, staged_text
from hubpress.targets.publish import open_target
from hubpress.tasks.lora import prepare_release_task
from hubpress.tasks.publish import publish_task

RELEASE_EVENT = "hubpress.release.published"


@flow(name="release-training-run", validate_parameters=True)
def release_training_run(params: ReleaseTrainingRunParams) -> dict[str, Any]:
    """Select a checkpoint -> publish it with release.json in one tagged commit -> report (the
    `hubpress.release.published` event, the commit link, the asset)."""
    settings = get_settings()
    refuse_staging_inside(settings.staging, params.repo_id)  # as the CLI does, for a served run too
    # The run's lease names the release's stage while it is used; the stage goes once the target
    # holds its files (a failed or killed release keeps it for the next run, and the policy sweeps it).
    with RunStage(Staging(settings.staging, settings), artifacts.flow_run_id()) as lease:
        release = select(params, lease)
        outcome = publish(params, release)
        release_stage_done(release.prep.staging, lease, release.prep.fingerprint)
    return report(params, release, outcome)


@dataclass(slots=True)
class Release:
    """What the steps of one release share: the target, the prepared checkpoint and its tag, and
    the head the release was planned against."""

    target: Target
    prep: PreparedRelease
    tag: str
    head: str | None
    manifest: bytes  # release.json


def select(params: ReleaseTrainingRunParams, lease: RunStage | None = None) -> Release:
    """The target (a token that cannot write it fails here), the checkpoint the selection picks,
    staged with its config and samples, and release.json against what the repo says now."""
    settings = get_settings()
    target = open_target(params.repo_id, "model", settings)
    prep = prepare_release_task(params.output_uri, params.select, settings, lease)
    tag = params.tag or default_tag(prep.checkpoint)
    head = target.head(params.revision)  # only the commit: publish_task lists the files itself
    previous = target.read_text(RELEASE_JSON, head) if head else None
    manifest = release_manifest(prep, params.select, tag, artifacts.flow_run_id(), previous)
    return Release(target, prep, tag, head, manifest)


def publish(params: ReleaseTrainingRunParams, release: Release):
    """One commit of the weights, config, samples, card and release.json, tagged."""
    prep = release.prep
    # release.json is written here; the directory goes once the publish is over, however it ends.
    with scratch_dir("release-json") as scratch:
        release_file, _ = staged_text(RELEASE_JSON, release.manifest.decode("utf-8"), Path(scratch))
        provenance = {
            "checkpoint": prep.checkpoint.name,
            "step": prep.checkpoint.step,
            "selection": params.select,
        }
        return publish_task(
            release.target,
            [*prep.bundle.files, release_file],
            prep.staging,
            target_name=params.repo_id,
            revision=params.revision,
            private=not params.public,
            message=f"Release {prep.checkpoint.name} of {params.output_uri} ({release.tag})",
            card=card_for(prep.bundle, params.repo_id, params.base_model, params.license, provenance),
            allow_deletes=False,
            tag=release.tag,
        )


def report(params: ReleaseTrainingRunParams, release: Release, outcome) -> dict[str, Any]:
    """The result, the log lines, and for a new commit or tag: the event, the link, the asset."""
    prep, tag = release.prep, release.tag
    commit = outcome.commit or release.head
    result = outcome.to_dict()
    result.update(
        {
            "checkpoint": prep.checkpoint.name,
            "step": prep.checkpoint.step,
            "tag": tag,
            "released_commit": commit,
            "stage_reused": prep.stage_reused,
            # What was left out while reading the output (unsafe S3 keys, unreadable metrics):
            # reported with the result, never dropped silently.
            "problems": list(prep.output.problems),
        }
    )
    log = get_run_logger()
    for problem in prep.output.problems:
        log.warning("%s: %s", params.output_uri, problem)
    log.info(
        "%s %s (step %s) of %s to %s: commit %s, tag %s%s.",
        "Released" if outcome.commit else "Already released:",
        prep.checkpoint.name,
        prep.checkpoint.step,
        params.output_uri,
        params.repo_id,
        (commit or "none")[:12],
        tag,
        "" if outcome.commit or outcome.tag_created else " (nothing sent, no new commit or tag)",
    )
    if outcome.commit or outcome.tag_created:
        _emit_published(params.repo_id, tag, commit, prep.checkpoint.name)
        artifacts.commit_link(
            outcome.commit_url or release.target.commit_url(commit),
            f"Release {tag} of {params.repo_id}",
            params.repo_id,
        )
    assets.record_publish(
        params.repo_id, "model", params.revision, result, [assets.source_key(params.output_uri)]
    )
    return result


def _emit_published(repo_id: str, tag: str, commit: str | None, checkpoint: str) -> None:
    from prefect.events import emit_event

    emit_event(
        event=RELEASE_EVENT,
        resource={"prefect.resource.id": f"huggingface.model.{repo_id}", "prefect.resource.name": repo_id},
        payload={"repo_id": repo_id, "tag": tag, "commit": commit, "checkpoint": checkpoint},
    )
