"""publish-dataset: an image-editing dataset (qflux folder or CSV layout, local or S3) to a Hub
dataset repo or a local directory, as content-defined parquet shards, through staging, with a
plan, one atomic commit, a card and a manifest. Nothing is uploaded when nothing changed."""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import asdict
from typing import Any

# The run talks to the Hub: huggingface_hub is imported with the flow (as the CLI or a served
# deployment loads it), not inside the first task that needs it. `datasets` is imported only once
# the run knows it must build (see _import_build_libraries): an unchanged night never loads it.
import huggingface_hub.hf_api  # noqa: F401
from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.futures import as_completed, wait
from prefect.utilities.annotations import quote

from hubpress.errors import UndecodableAtBuild
from hubpress.flows.params import PublishDatasetParams
from hubpress.orchestration import artifacts
from hubpress.orchestration.runners import carry, on_threads
from hubpress.settings import get_settings, resolve_token
from hubpress.shards.empty import refuse_empty_splits
from hubpress.shards.fingerprint import dataset_fingerprint
from hubpress.shards.pipeline import (
    build_options,
    card_renderer,
    load_split_plans,
    plan_all_shards,
    save_split_plans,
)
from hubpress.shards.published import (
    PublishedRecord,
    PublishedRecords,
    is_unchanged,
    listing_digest,
    reported_changes,
    sample_digests,
)
from hubpress.shards.staging import Staging
from hubpress.sources.discovery import detect_layout
from hubpress.sources.validation import record_build_problems, record_decoded
from hubpress.targets.hub import HubRepo
from hubpress.targets.publish import after_commit, open_target
from hubpress.tasks.build import UndecodableShard, build_shard
from hubpress.tasks.intake import intake_in_flow, list_source_task
from hubpress.tasks.publish import (
    preupload_task,
    publish_task,
    reuse_stage_task,
    seal_stage_task,
    verify_task,
)


def _build_shards(
    plans, staging_uri, fingerprint, settings, progress=None, upload_to=None
) -> tuple[list, list]:
    """build_shard over the plans on the flow's task runner (threads or Dask); with `upload_to`,
    each shard's upload starts as soon as it is built, while the others build. Returns the built
    shards and the images that did not decode (every shard is built: one pass finds them all).

    Largest first, so the longest build-then-upload chain starts at once and small shards fill in.
    On threads, only as many builds as there are build slots are submitted at a time: submitted all
    at once, they would race for the slots and the largest could start last."""
    queue = deque(sorted(plans, key=lambda plan: -plan.estimated_size))
    in_flight = max(1, settings.build_concurrency) if on_threads() else len(queue)
    running: list = []
    shards, uploads = [], []
    undecodable: list = []  # every shard is built, so one pass finds every image that fails

    def submit_next() -> None:
        plan = queue.popleft()  # carry(): a plan holds its samples; Prefect need not walk them
        running.append(build_shard.submit(carry(plan), staging_uri, fingerprint, settings))

    while queue and len(running) < in_flight:
        submit_next()
    while running:
        done = next(as_completed(running))
        running.remove(done)
        if queue:
            submit_next()
        shard = done.result()
        if isinstance(shard, UndecodableShard):
            undecodable.extend(shard.problems)
            continue
        shards.append(shard)
        if upload_to is not None:
            uploads.append(preupload_task.submit(upload_to, shard.file))
        if progress is not None:
            progress.advance()
    wait(uploads)
    return shards, undecodable


def _build_all(params, plans, staging, fingerprint, settings, progress, upload_to) -> list:
    """Every shard of the plans: on the flow's task runner, or as one subflow run per split
    (`fan_out: splits`: a child run in the UI, with its own tasks and logs)."""
    if params.fan_out != "splits":
        shards, undecodable = _build_shards(
            plans, settings.staging, fingerprint, settings, progress, upload_to
        )
        if undecodable:
            raise UndecodableAtBuild(tuple(undecodable))
        return shards
    shards, uploads, undecodable = [], [], []
    for split in sorted({plan.split for plan in plans}):
        save_split_plans(staging, fingerprint, split, [p for p in plans if p.split == split])
        built, problems = build_split(split, fingerprint, settings.staging)
        undecodable.extend(problems)
        shards.extend(built)
        progress.advance(len(built))
        if upload_to is not None:  # this split's uploads overlap the next split's build
            uploads.extend(preupload_task.submit(upload_to, shard.file) for shard in built)
    wait(uploads)
    if undecodable:
        raise UndecodableAtBuild(tuple(undecodable))
    return shards


def _early_upload_target(target, staging: Staging, params: PublishDatasetParams) -> HubRepo | None:
    """Where built shards can be sent before the commit: a Hub repo, from local staging, when this
    run will commit. (From S3 staging, the publish step fetches and uploads them; a local target
    is written at once.)"""
    if isinstance(target, HubRepo) and staging.is_local and not params.dry_run:
        return target
    return None


@flow(name="build-split", flow_run_name="build-{split}")
def build_split(split: str, fingerprint: str, staging_uri: str) -> tuple[list, list]:
    """The shards of one split, as a subflow run of publish-dataset (`fan_out: splits`).

    Its parameters are only names: the split's shard plans are read from the stage, where the
    parent wrote them, so no sample list travels through the Prefect API."""
    settings = get_settings({"staging": staging_uri})
    plans = load_split_plans(Staging(staging_uri, settings), fingerprint, split)
    return _build_shards(plans, staging_uri, fingerprint, settings)


@flow(name="publish-dataset", log_prints=False, validate_parameters=True)
def publish_dataset(params: PublishDatasetParams) -> dict[str, Any]:
    """List the source -> unchanged since the last publish? stop -> intake -> stage (reused when
    the fingerprint is already staged) -> plan -> one commit -> verify.

    The summary artifact's first line names the kind of run: "unchanged", "N samples added, M
    changed, K removed: X bytes sent", or "failed: ..."."""
    try:
        result = _publish(params)
    except Exception as exc:
        artifacts.markdown(
            _failure_summary(params.target, exc),
            key="publish-summary",
            description=f"publish-dataset {params.target}",
        )
        raise
    artifacts.markdown(
        _summary(result), key="publish-summary", description=f"publish-dataset {params.target}"
    )
    _log_outcome(params, result)
    return result


def _log_outcome(params: PublishDatasetParams, result: dict[str, Any]) -> None:
    """The run's last log lines say what it did, so its log page tells the story: the intake,
    the plan and the outcome with the commit's link (each artifact holds the details)."""
    log = get_run_logger() if FlowRunContext.get() else logging.getLogger("hubpress")
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


def _publish(params: PublishDatasetParams) -> dict[str, Any]:
    """One publish, taken again when the build finds images that do not decode.

    Intake checks new images by their headers and the build decodes them as it reads them (one
    decode, overlapping earlier shards' uploads). An image that does not decode is then recorded
    as validation would have found it, and the second pass's intake reports it and plans the
    shards without its sample: the published shards are those a full validation would give."""
    for attempt in range(_PASSES):
        try:
            return _publish_once(params)
        except UndecodableAtBuild as exc:
            if attempt == _PASSES - 1:
                raise
            log = get_run_logger() if FlowRunContext.get() else logging.getLogger("hubpress")
            settings = get_settings({"staging": params.staging} if params.staging else None)
            record_build_problems(exc.problems, settings)
            log.warning("%s: taking the intake again, so that they are reported and left out.", exc)
    raise AssertionError("unreachable")


# A pass builds every shard, so it finds every undecodable image and a second pass ends it; the
# third is a margin for an image that could not be recorded (the error then names it).
_PASSES = 3


def _publish_once(params: PublishDatasetParams) -> dict[str, Any]:
    log = get_run_logger() if FlowRunContext.get() else logging.getLogger("hubpress")
    settings = get_settings({"staging": params.staging} if params.staging else None)
    # Opening the target first makes a write without a token fail before any work.
    target = open_target(params.target, "dataset", settings, write=not params.dry_run)

    # The cheapest check first: the listing (no file read) and the target's head (one round trip).
    listing = list_source_task(params.source, settings)
    options = build_options(
        target=params.target,
        # The layout found, not the one asked for: "auto" (CLI) and "folder" (API) publish the same.
        layout=detect_layout((f.relpath for f in listing), params.layout),
        on_error=params.on_error,
        allow_missing_target=params.allow_missing_target,
        prompt_encoding=params.prompt_encoding,
        max_shard_size=params.max_shard_size,
        license=params.license,
        pretty_name=params.pretty_name,
        tags=params.tags,
    )
    digest = listing_digest(listing, {**options, "max_pixels": params.max_pixels})
    records = PublishedRecords(settings.cache_dir)
    record = records.get(params.target, params.revision)
    # A dry run, a pull request or a tag asks for more than "is there anything new".
    if (
        record is not None
        and record.listing == digest
        and not (params.dry_run or params.create_pr or params.tag)
    ):
        head = target.head(params.revision)
        if is_unchanged(record, digest, head):
            log.info(
                "%s: the source listing and %s's head are as last published: unchanged.",
                params.source,
                params.target,
            )
            return _unchanged_result(params.target, record)

    _import_build_libraries()
    report = intake_in_flow(
        params.source,
        layout=params.layout,
        on_error=params.on_error,
        allow_missing_target=params.allow_missing_target,
        prompt_encoding=params.prompt_encoding,
        max_pixels=params.max_pixels,
        settings=settings,
        # On Dask the cluster is the parallelism; a worker process may not start its own pool.
        workers=(os.cpu_count() or 1) if on_threads() else 1,
        listing=listing,
        # The build decodes each new image as it reads it (see _publish); `--on-error fail`
        # promises that nothing is built or sent when the data has problems, so it decodes here.
        decode=params.on_error == "fail",
    )
    refuse_empty_splits(
        {name: len(m.samples) for name, m in report.splits.items()},
        {name: len(m.skipped) for name, m in report.splits.items()},
        str(params.source),
        f"Fix or remove the skipped samples (`hubpress scan {params.source}` lists them), or remove the empty split.",
    )

    fingerprint = dataset_fingerprint(report, options)
    staging = Staging(settings.staging, settings)
    staged = reuse_stage_task(staging, fingerprint)
    created_early = False
    if staged is not None:
        log.info("Reusing the complete stage %s: the data and options are unchanged.", staged.stage_uri)
    else:
        plans = plan_all_shards(report, options)
        upload_to = _early_upload_target(target, staging, params)
        if upload_to is not None:
            created_early = upload_to.ensure_exists(private=not params.public)
        log.info("Building %d shard(s) into %s", len(plans), staging.stage_uri(fingerprint))
        progress = artifacts.Progress(len(plans), f"Building {len(plans)} shard(s)")
        try:
            shards = _build_all(params, plans, staging, fingerprint, settings, progress, upload_to)
        except UndecodableAtBuild as exc:
            _record_decoded_images(plans, settings, failed=exc.problems)
            staging.discard(fingerprint)  # it holds samples the next pass leaves out
            raise
        except Exception:
            staging.discard(fingerprint)  # a partial stage is never reused: leave nothing behind
            raise
        finally:
            progress.close()
        _record_decoded_images(plans, settings)
        order = {plan.path_in_repo: i for i, plan in enumerate(plans)}  # id order, for the card
        shards.sort(key=lambda shard: order[shard.file.path])
        staged = seal_stage_task(
            staging, fingerprint, quote(report), quote(shards), options, artifacts.flow_run_id()
        )

    outcome = publish_task(
        target,
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
        log.warning("Created %s as a PUBLIC repo (--public).", params.target)

    rows = {name: len(m.samples) for name, m in report.splits.items()}
    if outcome.commit and not params.create_pr:
        token = resolve_token(None, settings).value
        with after_commit(outcome.commit, outcome.commit_url, params.target):
            rows = verify_task(params.target, target, outcome.commit, staged, staging, settings, token)
        artifacts.commit_link(outcome.commit_url, f"Commit {outcome.commit[:12]} in {params.target}")

    published = sample_digests(report)
    changes = reported_changes(record, published, outcome.plan.summary(), outcome.plan.parent_commit)
    head = outcome.commit or outcome.plan.parent_commit
    if head and not (params.dry_run or params.create_pr):
        records.put(params.target, params.revision, PublishedRecord(digest, head, published))

    result = outcome.to_dict()
    result["samples"] = rows
    result["skipped"] = {name: len(m.skipped) for name, m in report.splits.items()}
    result["empty_prompts"] = {
        name: sum(1 for sample in m.samples if sample.prompt == "") for name, m in report.splits.items()
    }
    result["stage"] = staged.stage_uri
    result["stage_reused"] = staged.reused
    result["listing_unchanged"] = False
    result["changes"] = None if changes is None else asdict(changes)
    return result


def _record_decoded_images(plans, settings, failed=()) -> None:
    """Every shard was built, so every image of the plans but the `failed` ones decoded: say so
    in the facts cache, so that no later pass, build or scan decodes them again."""
    bad = {ref.uri for ref, _ in failed}
    images = (ref for plan in plans for sample in plan.samples for ref in sample.images())
    record_decoded((ref for ref in images if ref.uri not in bad), settings)


def _import_build_libraries() -> None:
    """Shards are built with datasets' Features: import it once here, in the flow, before the
    build threads start (each would otherwise queue on the import lock). Only runs that build
    get here; an unchanged night never imports it."""
    import datasets  # noqa: F401


def _unchanged_result(target: str, record: PublishedRecord) -> dict[str, Any]:
    rows: dict[str, int] = {}
    for key in record.samples:
        split = key.split("/", 1)[0]
        rows[split] = rows.get(split, 0) + 1
    return {
        "target": target,
        "commit": None,
        "commit_url": None,
        "pr_url": None,
        "tag": None,
        "dry_run": False,
        "uploaded_files": [],
        "uploaded_bytes": 0,
        "already_present_files": [],
        "already_present_bytes": 0,
        "unchanged_files": [],
        "deleted_files": [],
        "plan": {"added": [], "changed": [], "unchanged": [], "deleted": []},
        "planned_bytes": 0,
        "attempts": 0,
        "warnings": [],
        "samples": rows,
        "skipped": {},
        "empty_prompts": {},
        "stage": None,
        "stage_reused": False,
        "listing_unchanged": True,
        "changes": {"added": 0, "changed": 0, "removed": 0},
    }


def summary_head(result: dict[str, Any]) -> str:
    """The first line of the summary: which kind of run this was."""
    if result["dry_run"]:
        return "dry run: nothing was uploaded"
    if result["commit"] is None:
        return "unchanged"
    changes = result["changes"]
    if changes is None:  # see reported_changes
        return f"samples added or changed: unknown (last written from elsewhere): {result['uploaded_bytes']:,} bytes sent"
    return (
        f"{changes['added']} samples added, {changes['changed']} changed, {changes['removed']} removed: "
        f"{result['uploaded_bytes']:,} bytes sent"
    )


def _failure_summary(target: str, exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"failed: {first}\n\n# {target}\n"


def _summary(result: dict[str, Any]) -> str:
    lines = [summary_head(result), "", f"# {result['target']}", ""]
    if result["listing_unchanged"]:
        lines.append(
            "The source listing and the target's head are as last published: nothing was read or sent."
        )
        return "\n".join(lines)
    if result["commit"] is not None:
        lines.append(
            f"Committed `{result['commit'][:12]}`: {len(result['uploaded_files'])} file(s), "
            f"{result['uploaded_bytes']:,} bytes."
        )
    lines += ["", "| split | samples | skipped |", "|---|---|---|"]
    for split in sorted(result["samples"]):
        lines.append(f"| {split} | {result['samples'][split]} | {result['skipped'].get(split, 0)} |")
    lines += ["", f"Stage: `{result['stage']}` ({'reused' if result['stage_reused'] else 'built'})"]
    return "\n".join(lines)
