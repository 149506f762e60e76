"""refresh-dataset: re-publish a dataset built from upstream Hub datasets (a SimpleTuner dataloader
configuration), on a schedule. When every upstream revision sha and the configuration are what
the target's manifest.json records, the run stops before downloading anything and says so.
Otherwise: read rows and key every shard -> build only the shards neither the target nor the
shard store holds (publish-dataset's rule, hubpress.shards.reuse) -> stage -> plan -> one commit
(card, manifest, index and a SimpleTuner dataloader entry included)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext

from hubpress.flows.params import RefreshParams, refuse_example_parameters
from hubpress.orchestration import artifacts, assets
from hubpress.refresh.card import render_refresh_card
from hubpress.refresh.config import RefreshConfig, parse_refresh_config, refuse_target_reading_itself
from hubpress.refresh.lineage import (
    RefreshOptions,
    config_fingerprint,
    nothing_changed_result,
    stage_fingerprint,
    unchanged_manifest,
)
from hubpress.refresh.publish import check_single_kind
from hubpress.settings import Settings, get_settings, resolve_token
from hubpress.shards.empty import refuse_empty_splits
from hubpress.shards.run_result import reuse_line
from hubpress.shards.runs import RunStage, StagingPolicy, release_published, sweep_once
from hubpress.shards.sizes import parse_size
from hubpress.shards.staging import Staging
from hubpress.targets.base import Target
from hubpress.targets.local import refuse_staging_inside
from hubpress.targets.publish import bytes_phrase, open_target
from hubpress.tasks.publish import publish_task
from hubpress.tasks.refresh import (
    build_refresh_task,
    read_manifest_task,
    resolve_upstream_task,
    tag_head_task,
    verify_refresh_task,
)


@flow(name="refresh-dataset", log_prints=False, validate_parameters=True)
def refresh_dataset(params: RefreshParams) -> dict[str, Any]:
    """Resolve upstream shas -> (nothing changed: stop) -> build and stage -> publish -> verify ->
    report. A page of named steps; each is a task over a plain function (hubpress.tasks.refresh,
    hubpress.refresh)."""
    refuse_example_parameters(params.target)  # a schedule switched on before it was filled in
    run = open_refresh(params)
    if run.previous is not None:
        return report_unchanged(params, run)
    refuse_staging_inside(run.settings.staging, params.target)  # as the CLI does, for a served run too
    staging = Staging(run.settings.staging, run.settings)
    with RunStage(staging, artifacts.flow_run_id()) as stage:
        sweep_once(staging, StagingPolicy.from_settings(run.settings))
        built = build(params, run, staging, stage)
        outcome = publish(params, run, built)
        verify(params, run, built, outcome)
        if (outcome.commit or outcome.plan.parent_commit) and not params.dry_run:
            # The target holds every planned shard now: staging keeps no second copy of them.
            release_published(staging, stage, [c.plan.key for c in built.staged.build_plan.choices])
    return report(params, run, built, outcome)


@dataclass(slots=True)
class RefreshRun:
    """What every step of one refresh shares."""

    settings: Settings
    target: Target
    config: RefreshConfig
    options: RefreshOptions
    token: str | None
    revisions: dict[str, str]
    config_fp: str
    previous: dict[str, Any] | None  # the target's manifest when nothing changed upstream


@dataclass(slots=True)
class BuiltRefresh:
    staged: Any
    staging: Staging
    stage_fp: str


def open_refresh(params: RefreshParams) -> RefreshRun:
    """The target (a write without a token fails here, before any work), the configuration, the
    upstream revisions, and whether the target already holds what they would publish."""
    log = _log()
    settings = get_settings({"staging": params.staging} if params.staging else None)
    config = parse_refresh_config(params.config)
    # As the CLI does, for a served run too: never a commit over the dataset the refresh reads.
    refuse_target_reading_itself(config, params.target, params.revision)
    target = open_target(params.target, "dataset", settings, write=not params.dry_run)
    options = refresh_options(params)
    check_single_kind(config)
    for note in config.warnings:
        log.warning("%s", note.message)
    for note in config.departures:
        log.info("%s", note.message)
    for backend_id, keys in config.not_affecting.items():
        log.info(
            "backend %r: %s do not affect the refresh (training-only settings)", backend_id, ", ".join(keys)
        )
    token = resolve_token(None, settings).value
    revisions = resolve_upstream_task(config, token)
    config_fp = config_fingerprint(config, options)
    previous = unchanged_manifest(read_manifest_task(target, params.revision), revisions, config_fp)
    return RefreshRun(settings, target, config, options, token, revisions, config_fp, previous)


def report_unchanged(params: RefreshParams, run: RefreshRun) -> dict[str, Any]:
    """Nothing changed upstream and the configuration is the same: the result, and the tag a
    scheduled run asked for on the unchanged head."""
    assert run.previous is not None
    result = nothing_changed_result(params.target, run.previous, params.dry_run)
    result["backends"] = _backend_counts(run.previous)
    if params.tag and not params.dry_run:
        # A scheduled run asked to tag what it publishes: the unchanged head is that.
        result["tag"] = params.tag
        result["tag_created"] = tag_head_task(run.target, params.revision, params.tag)
    _log().info(
        "Nothing changed upstream (%s) and the configuration is the same: no download, no build, no commit.",
        ", ".join(f"{k}@{v[:12]}" for k, v in run.revisions.items()),
    )
    artifacts.markdown(
        _summary(result),
        key=artifacts.repo_key("refresh-summary", params.target),
        description=f"refresh {params.target}",
    )
    return result


def build(params: RefreshParams, run: RefreshRun, staging: Staging, stage: RunStage) -> BuiltRefresh:
    """The rows, keyed shard by shard; only the shards neither the target nor the shard store
    holds are built. A refresh whose filters kept nothing stops here."""
    log = _log()
    stage_fp = stage_fingerprint(run.revisions, run.config_fp, params.seed)
    log.info("Reading the upstream rows; shards are built into %s", staging.storage.uri("shards"))
    staged = build_refresh_task(
        run.config,
        run.options,
        run.revisions,
        run.config_fp,
        stage_fp,
        staging,
        run.token,
        artifacts.flow_run_id(),
        stage,
        run.target,
        params.revision,
    )
    plan = staged.build_plan
    log.info(
        "Built %d of %d shard(s) (%d held by the target, %d sealed in staging).",
        plan.count("build"),
        len(plan.choices),
        plan.count("target"),
        plan.count("stage"),
    )
    for backend_id, reused in staged.cache_reused.items():
        if reused is not None:
            log.info("backend %r: metadata cache %s", backend_id, "reused" if reused else "built")
    _refuse_empty(staged, params.target)
    return BuiltRefresh(staged, staging, stage_fp)


def publish(params: RefreshParams, run: RefreshRun, built: BuiltRefresh):
    """One commit: the shards, the card, the manifest, the index and the SimpleTuner entry."""
    card = built.staged.card
    outcome = publish_task(
        run.target,
        built.staged.files,
        built.staging,
        target_name=params.target,
        revision=params.revision,
        private=not params.public,
        message=params.commit_message
        or "Refresh from "
        + ", ".join(f"{k}@{v[:12]}" for k, v in run.revisions.items())
        + f" with hubpress ({built.stage_fp[:12]})",
        card=lambda existing: render_refresh_card(existing, card),
        tag=params.tag,
        dry_run=params.dry_run,
    )
    if params.public and outcome.created_repo:
        _log().warning("Created %s as a PUBLIC repo (--public).", params.target)
    return outcome


def verify(params: RefreshParams, run: RefreshRun, built: BuiltRefresh, outcome) -> None:
    """The commit holds what was staged, and it opens as the published entry says."""
    if outcome.commit:
        verify_refresh_task(params.target, run.target, outcome.commit, run.config, built.staged, run.token)
        artifacts.commit_link(
            outcome.commit_url, f"Commit {outcome.commit[:12]} in {params.target}", params.target
        )


def report(params: RefreshParams, run: RefreshRun, built: BuiltRefresh, outcome) -> dict[str, Any]:
    """The result, the rows report and summary artifacts, and the asset materialization."""
    staged = built.staged
    result = outcome.to_dict()
    result |= {
        "samples": {"train": staged.kept},
        "skipped": {"train": staged.dropped},
        "backends": _backend_counts(staged.manifest),
        "nothing_changed": False,
        "message": _message(outcome.commit, params.dry_run),
        "upstream": dict(run.revisions),
        "metadata_cache_reused": dict(staged.cache_reused),
        "stage": staged.stage_uri,
        "stage_reused": staged.reused,
        **staged.shard_counts(outcome.uploaded_files),
    }
    rows_report = "\n\n".join(
        _report_markdown(backend_id, counts) for backend_id, counts in staged.manifest["counts"].items()
    )
    artifacts.markdown(
        rows_report,
        key=artifacts.repo_key("refresh-report", params.target),
        description=f"Rows kept and dropped for {params.target}",
    )
    artifacts.markdown(
        _summary(result),
        key=artifacts.repo_key("refresh-summary", params.target),
        description=f"refresh {params.target}",
    )
    assets.record_publish(
        params.target, "dataset", params.revision, result, assets.refresh_upstream_keys(run.config)
    )
    return result


def _log():
    return get_run_logger() if FlowRunContext.get() else logging.getLogger("hubpress")


def refresh_options(params: RefreshParams) -> RefreshOptions:
    """The parameters that shape what is published, as the plain values hubpress.refresh takes."""
    return RefreshOptions(
        target=params.target,
        seed=params.seed,
        stopping=params.stopping,
        max_shard_size=parse_size(params.max_shard_size),
        license=params.license,
        pretty_name=params.pretty_name,
    )


def _refuse_empty(staged: Any, target: str) -> None:
    """No commit of a refresh whose filters kept nothing: datasets could not open it."""
    reasons = "; ".join(
        f"{backend_id}: {counts['seen']} seen, "
        + (", ".join(f"{k} {v}" for k, v in sorted(counts["dropped"].items())) or "none kept")
        for backend_id, counts in staged.manifest.get("counts", {}).items()
    )
    refuse_empty_splits(
        {"train": staged.kept},
        {"train": staged.dropped},
        f"the refresh of {target}",
        f"Left out by the filters: {reasons}. Loosen the filters in the configuration.",
    )


def _backend_counts(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per backend: rows seen, kept by the filters, published, left out or repeated by mixing, and
    `dropped`: the rows each of the configuration's rules left out (rule -> count)."""
    keys = ("seen", "kept", "published", "left_out_by_mixing", "repeated_by_mixing")
    return {
        backend_id: {k: counts.get(k, counts["kept"] if k == "published" else 0) for k in keys}
        | {"dropped": dict(counts.get("dropped") or {})}
        for backend_id, counts in manifest.get("counts", {}).items()
    }


def _message(commit: str | None, dry_run: bool) -> str:
    if dry_run:
        return "dry run: nothing was sent"
    if commit is None:
        return "upstream changed but the published files are identical: no commit"
    return f"published commit {commit[:12]}"


def _report_markdown(backend_id: str, counts: dict[str, Any]) -> str:
    # The manifest keeps RefreshReport.to_dict(); rebuild the report to render it the same way.
    from hubpress.refresh.rows import RefreshReport

    return RefreshReport.from_dict({"backend_id": backend_id, **counts}).to_markdown()


def _summary(result: dict[str, Any]) -> str:
    if result.get("nothing_changed"):
        head = "Nothing changed upstream: no download, no build, no commit."
    elif result["dry_run"]:
        head = "Dry run: nothing was sent."
    elif result["commit"] is None:
        head = "The published files are unchanged: no commit."
    else:
        head = f"Committed `{result['commit'][:12]}`: {len(result['uploaded_files'])} file(s), {bytes_phrase(result)}."
    lines = [f"# {result['target']}", "", head, "", "| upstream backend | revision sha |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in (result.get("upstream") or {}).items()]
    if "shards_built" in result:
        lines += ["", reuse_line(result) + "."]
    lines += [
        "",
        f"Rows kept: {result['samples'].get('train', 0)}; left out: {result['skipped'].get('train', 0)}.",
    ]
    cache = {k: v for k, v in (result.get("metadata_cache_reused") or {}).items() if v is not None}
    if cache:
        lines.append(
            "Metadata cache: " + ", ".join(f"{k} {'reused' if v else 'built'}" for k, v in cache.items())
        )
    return "\n".join(lines)
