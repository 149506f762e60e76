"""publish-dataset: an image-editing dataset (qflux folder or CSV layout, local or S3) to a Hub
dataset repo or a local directory, as content-defined parquet shards, in one atomic commit with a
card and a manifest. A page of named steps, each a task over a plain function:

    unchanged? -> intake -> plan -> build -> stage -> publish -> verify -> report

Nothing is uploaded when nothing changed, and a shard is built only when neither the target nor
the staging holds it (hubpress.shards.reuse): a changed night builds the shards its changes land
in, and a publish that was killed or failed resumes from the shards it sealed."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The run talks to the Hub: huggingface_hub is imported with the flow (as the CLI or a served
# deployment loads it), not inside the first task that needs it. pyarrow is imported only once
# the run knows it must build (see _import_build_libraries): an unchanged night never loads it.
import huggingface_hub.hf_api  # noqa: F401
from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.utilities.annotations import quote

from hubpress.errors import UndecodableAtBuild
from hubpress.flows.build_shards import build_all
from hubpress.flows.params import PublishDatasetParams, refuse_example_parameters
from hubpress.orchestration import artifacts, assets
from hubpress.orchestration.runners import on_threads
from hubpress.settings import Settings, get_settings, resolve_token
from hubpress.shards.empty import refuse_empty_splits
from hubpress.shards.fingerprint import fingerprint_and_digests
from hubpress.shards.pipeline import card_renderer
from hubpress.shards.published import PublishedRecord, PublishedRecords, opened_before, reported_changes
from hubpress.shards.reuse import BuildPlan, kept_from_parent, retake, shard_counts
from hubpress.shards.run_result import failure_summary, published_result, summary, unchanged_result
from hubpress.shards.runs import RunStage, StagingPolicy, release_published, sweep_once
from hubpress.shards.staging import Staging
from hubpress.shards.unchanged import asks_more, dataset_digest, dataset_options, unchanged_head
from hubpress.sources.facts_cache import record_build_problems, record_decoded
from hubpress.sources.models import IntakeReport
from hubpress.storage.files import ListedFile
from hubpress.targets.base import Target
from hubpress.targets.hub import HubRepo
from hubpress.targets.local import refuse_staging_inside
from hubpress.targets.publish import after_commit, open_target, require_write_access
from hubpress.tasks.intake import intake_in_flow, list_source_task
from hubpress.tasks.publish import plan_task, publish_task, stage_task, verify_task


@flow(name="publish-dataset", log_prints=False, validate_parameters=True)
def publish_dataset(params: PublishDatasetParams) -> dict[str, Any]:
    """List the source -> unchanged since the last publish? stop -> intake -> plan (which shards
    the target or the staging already holds) -> build the others -> stage the manifest -> one
    commit -> verify -> report.

    The summary artifact's first line names the kind of run: "unchanged", "N samples added, M
    changed, K removed: X bytes sent", or "failed: ..."; the next says what was reused."""
    try:
        result = _publish(params)
    except Exception as exc:
        artifacts.markdown(
            failure_summary(params.target, exc),
            key=artifacts.repo_key("publish-summary", params.target),
            description=f"publish-dataset {params.target}",
        )
        raise
    report(params, result)
    assets.record_publish(
        params.target, "dataset", params.revision, result, [assets.source_key(params.source)]
    )
    return result


def _publish(params: PublishDatasetParams) -> dict[str, Any]:
    refuse_example_parameters(params.target)  # a schedule switched on before it was filled in
    run = open_run(params)
    if run.unchanged:
        return unchanged_result(params.target, run.record)
    _import_build_libraries()
    refuse_staging_inside(run.settings.staging, params.target)  # as the CLI does, for a served run too
    staging = Staging(run.settings.staging, run.settings)
    with RunStage(staging, artifacts.flow_run_id()) as stage:
        sweep_once(staging, StagingPolicy.from_settings(run.settings))
        intake_report, build_plan, shards, created_early = intake_plan_build(params, run, staging, stage)
        # One pass over the samples makes both (the record of what was published uses the digests).
        fingerprint, published = fingerprint_and_digests(intake_report, run.options)
        staged = stage_task(
            staging,
            stage.relpath,
            fingerprint,
            quote(intake_report),
            quote(shards),
            run.options,
            artifacts.flow_run_id(),
            quote(build_plan),
        )
        outcome = publish_task(
            run.target,
            staged.files,
            staging,
            target_name=params.target,
            revision=params.revision,
            private=not params.public,
            message=params.commit_message or f"Publish dataset with hubpress ({fingerprint[:12]})",
            card=card_renderer(staged.card_info),
            create_pr=params.create_pr,
            tag=params.tag,
            dry_run=params.dry_run,
        )
        if params.public and (outcome.created_repo or created_early):
            _log().warning("Created %s as a PUBLIC repo (--public).", params.target)
        rows = {name: len(m.samples) for name, m in intake_report.splits.items()}
        # A night whose parent is the head this machine last verified need not import datasets.
        opened = opened_before(run.record, outcome.plan.parent_commit)
        if outcome.commit and not params.create_pr:
            token = resolve_token(None, run.settings).value
            # The shards kept from a verified parent are checked by their sha256 at the commit,
            # not by their footers again (a night sends a few of a hundred shards).
            unchanged = (c.path for c in outcome.plan.of("unchanged"))
            kept = kept_from_parent(build_plan, unchanged) if opened is not None else {}
            with after_commit(outcome.commit, outcome.commit_url, params.target):
                verified = verify_task(
                    params.target,
                    run.target,
                    outcome.commit,
                    staged,
                    staging,
                    run.settings,
                    token,
                    opened,
                    quote(kept),
                )
            rows, opened = verified.rows, verified.opened_shape
            artifacts.commit_link(
                outcome.commit_url, f"Commit {outcome.commit[:12]} in {params.target}", params.target
            )
        changes = reported_changes(run.record, published, outcome.plan.summary(), outcome.plan.parent_commit)
        head = outcome.commit or outcome.plan.parent_commit
        if head and not (params.dry_run or params.create_pr):
            skipped = {name: len(m.skipped) for name, m in intake_report.splits.items()}
            run.records.put(
                params.target, params.revision, PublishedRecord(run.digest, head, published, skipped, opened)
            )
            # The target holds every planned shard now: staging keeps no second copy of them.
            release_published(staging, stage, [c.plan.key for c in build_plan.choices])
    counts = shard_counts(
        build_plan, outcome.uploaded_files, int(intake_report.stats.get("bytes_read", 0) or 0)
    )
    return published_result(
        outcome.to_dict(),
        intake_report,
        rows,
        staging.storage.uri("shards"),
        staged.reused,
        changes,
        counts,
    )


# --- unchanged? -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """What every step of one run shares: settings, the open target, the listing and options."""

    settings: Settings
    target: Target
    listing: Sequence[ListedFile] | None
    options: dict[str, Any]
    digest: str
    records: PublishedRecords
    record: PublishedRecord | None
    unchanged: bool

    def take_listing(self) -> Sequence[ListedFile] | None:
        """The listing, for the first intake only: at a million samples it is two million
        objects (about 600 MB) that nothing needs after discovery. A retake lists again."""
        listing, self.listing = self.listing, None
        return listing


def open_run(params: PublishDatasetParams) -> Run:
    """The cheapest check first: the listing (no file read) and the target's head (one round
    trip). Opening the target first makes a write without a token fail before any work; a token
    that cannot write the repo is refused as soon as there is something to write, before intake."""
    settings = get_settings({"staging": params.staging} if params.staging else None)
    target = open_target(
        params.target,
        "dataset",
        settings,
        write=not params.dry_run,
        pull_request=params.create_pr,
        defer_access_check=True,
    )
    listing = list_source_task(params.source, settings).files
    options = dataset_options(params, listing)
    digest = dataset_digest(params, listing, options)
    records = PublishedRecords(settings.cache_dir)
    record = records.get(params.target, params.revision)
    # The same rule the CLI and the API apply before they create a run (hubpress.shards.unchanged).
    unchanged = unchanged_head(target, record, digest, asks_more(params), params.revision) is not None
    if unchanged:
        _log().info(
            "%s: the source listing and %s's head are as last published: unchanged.",
            params.source,
            params.target,
        )
    elif not params.dry_run:
        require_write_access(target, params.create_pr)
    return Run(settings, target, listing, options, digest, records, record, unchanged)


# --- intake -> plan -> build, taken again when the build finds images that do not decode ----------


def intake_plan_build(
    params: PublishDatasetParams, run: Run, staging: Staging, stage: RunStage
) -> tuple[IntakeReport, BuildPlan, list, bool]:
    """Intake checks new images by their headers and the build decodes them as it reads them (one
    decode, overlapping earlier shards' uploads). An image that does not decode is then recorded
    as validation would have found it, and the next pass's intake reports it and plans the shards
    without its sample (hubpress.shards.reuse.retake): the published shards are those a full
    validation would give, and the shards the failed pass sealed are reused."""
    attempt = 0
    upload_to = _early_upload_target(run.target, staging, params)
    if upload_to is not None:
        # The repo is created by the first shard sent ahead: a run that fails before any upload
        # (bad data, a Hub limit, a build error) leaves no empty repo behind.
        upload_to.creation.arm(private=not params.public)
    while True:
        intake_report = intake(params, run)
        build_plan = plan_task(run.target, params.revision, quote(intake_report), run.options, staging, stage)
        try:
            built = build(params, build_plan, staging, stage, run, upload_to)
            return (
                intake_report,
                build_plan,
                built,
                bool(upload_to is not None and upload_to.creation.created),
            )
        except UndecodableAtBuild as exc:
            if not retake(attempt):
                raise
            record_build_problems(exc.problems, run.settings)
            _log().warning("%s: taking the intake again, so that they are reported and left out.", exc)
            attempt += 1


def intake(params: PublishDatasetParams, run: Run) -> IntakeReport:
    """The intake step (tasks/intake.py), then the empty-split rule."""
    intake_report = intake_in_flow(
        params.source,
        layout=params.layout,
        on_error=params.on_error,
        allow_missing_target=params.allow_missing_target,
        prompt_encoding=params.prompt_encoding,
        max_pixels=params.max_pixels,
        settings=run.settings,
        # On Dask the cluster is the parallelism; a worker process may not start its own pool.
        workers=(os.cpu_count() or 1) if on_threads() else 1,
        listing=run.take_listing(),
        # The build decodes each new image as it reads it; `--on-error fail` promises that nothing
        # is built or sent when the data has problems, so it decodes here.
        decode=params.on_error == "fail",
    )
    refuse_empty_splits(
        {name: len(m.samples) for name, m in intake_report.splits.items()},
        {name: len(m.skipped) for name, m in intake_report.splits.items()},
        str(params.source),
        f"Fix or remove the skipped samples (`hubpress scan {params.source}` lists them), or remove the empty split.",
    )
    return intake_report


def build(
    params: PublishDatasetParams,
    build_plan: BuildPlan,
    staging: Staging,
    stage: RunStage,
    run: Run,
    upload_to: HubRepo | None,
) -> list:
    """The build step: the shards the plan must build, each sealed in staging as it is built;
    returns every planned shard (reused or built) in plan order, which is id order."""
    plans = build_plan.to_build
    _log().info(
        "Building %d of %d shard(s) into %s (%d held by the target, %d sealed in staging).",
        len(plans),
        len(build_plan.choices),
        staging.storage.uri("shards"),
        build_plan.count("target"),
        build_plan.count("stage"),
    )
    built: list = []
    if plans:
        progress = artifacts.Progress(len(plans), f"Building {len(plans)} shard(s)")
        try:
            built = build_all(params.fan_out, plans, staging, stage, run.settings, progress, upload_to)
        except UndecodableAtBuild as exc:
            _record_decoded_images(plans, run.settings, failed=exc.problems)
            raise
        finally:
            progress.close()
        _record_decoded_images(plans, run.settings)
    by_key = {shard.key: shard for shard in [*build_plan.reused, *built]}
    return [by_key[choice.plan.key] for choice in build_plan.choices]


def _early_upload_target(target, staging: Staging, params: PublishDatasetParams) -> HubRepo | None:
    """Where built shards can be sent before the commit: a Hub repo, from local staging, when this
    run will commit. (From S3 staging, the publish step fetches and uploads them; a local target
    is written at once.)"""
    if isinstance(target, HubRepo) and staging.is_local and not params.dry_run:
        return target
    return None


def _record_decoded_images(plans, settings, failed=()) -> None:
    """Every shard was built, so every image of the plans but the `failed` ones decoded: say so
    in the facts cache, so that no later pass, build or scan decodes them again."""
    bad = {ref.uri for ref, _ in failed}
    images = (ref for plan in plans for sample in plan.samples for ref in sample.images())
    record_decoded((ref for ref in images if ref.uri not in bad), settings)


def _import_build_libraries() -> None:
    """Shards are written with pyarrow: import it once here, in the flow, before the build threads
    start (each would otherwise queue on the import lock). Only runs that build get here; an
    unchanged night never imports it. (`datasets` is not needed to build: the editing schema's
    parquet form is held as data, hubpress.shards.editing_format.)"""
    import pyarrow.parquet  # noqa: F401


# --- report ---------------------------------------------------------------------------------------


def report(params: PublishDatasetParams, result: dict[str, Any]) -> None:
    """The report step: the publish-summary artifact, and the run's last log lines, so its log
    page tells the story: the intake, the plan, what was reused and the outcome with the commit's
    link (each artifact holds the details)."""
    artifacts.markdown(
        summary(result),
        key=artifacts.repo_key("publish-summary", params.target),
        description=f"publish-dataset {params.target}",
    )
    log = _log()
    skipped = result.get("skipped") or {}
    splits = ", ".join(
        f"{name} {count} kept" + (f", {skipped[name]} skipped" if skipped.get(name) else "")
        for name, count in sorted((result.get("samples") or {}).items())
    )
    if splits:
        more = " (the intake-report artifact lists each problem)" if any(skipped.values()) else ""
        log.info("Intake of %s: %s%s.", params.source, splits, more)
    plan = result.get("plan") or {}
    counts = {kind: len(plan.get(kind) or []) for kind in ("added", "changed", "deleted", "unchanged")}
    if any(counts.values()):
        log.info(
            "Plan: %s (the publish-plan artifact lists each file).",
            ", ".join(f"{n} {kind}" for kind, n in counts.items()),
        )
    tag = f", tag {result['tag']}" if result.get("tag") else ""
    if result.get("dry_run"):
        log.info("Dry run for %s: nothing sent.", params.target)
    elif result.get("commit"):
        log.info(
            "Published to %s: commit %s%s, %d file(s), %s bytes sent: %s",
            params.target,
            result["commit"][:12],
            tag,
            len(result.get("uploaded_files") or []),
            f"{result.get('uploaded_bytes') or 0:,}",
            result.get("pr_url") or result.get("commit_url") or "",
        )
    else:
        log.info("%s is unchanged, nothing sent (no commit)%s.", params.target, tag)


def _log():
    return get_run_logger() if FlowRunContext.get() else logging.getLogger("hubpress")
