"""The dataset publishing pipeline's steps as plain functions over typed values.

The flow (hubpress/flows/publish_dataset.py) wraps each step as a Prefect task; the Python API and tests
can call them without Prefect. Order: intake -> plan (shards, each keyed, and which must be built:
hubpress.shards.reuse) -> build (each shard sealed in the shard store) -> stage (manifest.json
and the card's facts beside the shards) -> publish (plan, one commit) -> verify
(hubpress.shards.verify) -> report (hubpress.shards.run_result).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from pydantic import TypeAdapter

from hubpress.errors import PublishError
from hubpress.settings import Settings
from hubpress.shards.card import (
    DatasetCardInfo,
    build_manifest,
    dataset_info_yaml,
    render_dataset_card,
    split_order,
    summarize_split,
)
from hubpress.shards.preview import (
    PREVIEW_FILE,
    Cells,
    preview_image,
    preview_samples,
    shard_cells,
    source_cells,
)
from hubpress.shards.preview_cache import cached_preview
from hubpress.shards.reuse import BuildPlan, Planned, choose, target_holdings
from hubpress.shards.runs import RunStage
from hubpress.shards.shard_store import SealedShard, ShardStore, parquet_relpath
from hubpress.shards.shards import BuiltShard, ShardPlan, in_folders, plan_shards
from hubpress.shards.sizes import DEFAULT_MAX_SHARD_SIZE, parse_size
from hubpress.shards.staging import PRIVATE_PREFIX, Staging, json_bytes
from hubpress.shards.verify import (
    VerifiedRevision,
    card_shape,
    committed_card,
    verify_changed_revision,
    verify_dataset_revision,
)
from hubpress.sources.models import IntakeReport
from hubpress.sources.reader import SourceReader
from hubpress.targets.base import Target, is_local_target
from hubpress.targets.limits import MAX_FILES_PER_FOLDER, Limits, check_planned_shards
from hubpress.targets.ownership import parse_manifest, usable_manifest
from hubpress.targets.plan import StagedFile
from hubpress.targets.publish import MANIFEST

log = logging.getLogger("hubpress.dataset")

CARD_INFO = f"{PRIVATE_PREFIX}card_info.json"  # staged beside the files, never published
_CARD_INFO = TypeAdapter(DatasetCardInfo)


def build_options(
    *,
    target: str,
    layout: str = "auto",
    on_error: str = "skip",
    allow_missing_target: bool = False,
    prompt_encoding: str = "utf-8",
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    license: str | None = None,
    pretty_name: str | None = None,
    tags: Iterable[str] = (),
) -> dict[str, Any]:
    """Everything besides the data that shapes the staged bytes (part of the fingerprint, and the
    manifest's `options`), from plain values: the flow passes its parameters' fields."""
    return {
        "layout": layout,
        "on_error": on_error,
        "allow_missing_target": allow_missing_target,
        "prompt_encoding": prompt_encoding,
        "max_shard_size": parse_size(max_shard_size),
        "license": license,
        "pretty_name": pretty_name,
        "tags": sorted(tags),
        "repo_id": None if is_local_target(target) else target,
    }


def plan_all_shards(
    report: IntakeReport, options: dict[str, Any], files_per_folder: int = MAX_FILES_PER_FOLDER
) -> list[ShardPlan]:
    """Every split's shard plans, placed in folders that fit the Hub's entries-per-folder limit."""
    plans: list[ShardPlan] = []
    for split in sorted(report.splits):
        samples = report.splits[split].samples
        if samples:
            plans.extend(plan_shards(split, samples, options["max_shard_size"]))
    return in_folders(plans, files_per_folder)


_PLANS = TypeAdapter(list[ShardPlan])


def _plans_path(split: str) -> str:
    return f"{PRIVATE_PREFIX}plans-{split}.json"


def save_split_plans(staging: Staging, stage: str, split: str, plans: list[ShardPlan]) -> None:
    """Write a split's shard plans into the run's folder, for a subflow (or a remote worker) to build."""
    staging.add_bytes(stage, _plans_path(split), _PLANS.dump_json(plans))


def load_split_plans(staging: Staging, stage: str, split: str) -> list[ShardPlan]:
    return _PLANS.validate_json(staging.storage.read_bytes(f"{stage}/{_plans_path(split)}"))


@dataclass(slots=True)
class StagedDataset:
    fingerprint: str
    files: list[StagedFile]  # what is published (shards, manifest.json); README.md is merged later
    card_info: DatasetCardInfo
    reused: bool  # no shard was built: each came from the target or a sealed shard in staging
    stage_uri: str
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)  # manifest.json's `files`


def card_info_for(report: IntakeReport, built: list[BuiltShard], options: dict[str, Any]) -> DatasetCardInfo:
    splits = tuple(
        summarize_split(name, report.splits[name].samples, [b for b in built if b.split == name])
        for name in split_order(report.splits)
        if report.splits[name].samples
    )
    return DatasetCardInfo(
        splits=splits,
        repo_id=options.get("repo_id"),
        pretty_name=options.get("pretty_name"),
        license=options.get("license"),
        tags=tuple(options.get("tags") or ()),
        source_layout=report.layout,
        dataset_info=dataset_info_yaml(splits),
    )


def stage_build(
    staging: Staging,
    stage: str,
    fingerprint: str,
    report: IntakeReport,
    shards: list[SealedShard],
    options: dict[str, Any],
    flow_run_id: str | None,
    *,
    reused: bool = False,
    previous: dict[str, Any] | None = None,
) -> StagedDataset:
    """Stage manifest.json and the card's facts in the run's folder, beside the sealed shards
    (in plan order, which is id order), and return what is to be published.

    The README itself is not staged: it is merged with the target's current card at publish
    time, so edits a user makes to the card between two publishes of unchanged data survive."""
    built = [s.built() for s in shards]
    keys = {s.path_in_repo: s.key for s in shards}
    manifest = build_manifest(
        report, built, options, fingerprint=fingerprint, flow_run_id=flow_run_id, keys=keys
    )
    # `flow_run_id` names the run that published this data: the target's manifest, when it says
    # the same of the same data, is kept as it is (an unchanged dataset commits nothing).
    if previous is not None and {**manifest, "flow_run_id": previous.get("flow_run_id")} == previous:
        manifest = previous
    info = card_info_for(report, built, options)
    files = [s.staged() for s in shards] + [staging.add_bytes(stage, MANIFEST, json_bytes(manifest))]
    preview = cached_preview(
        preview_samples(report),
        lambda: preview_image(_preview_cells(staging, report, shards)),
        staging.settings.cache_dir,
    )
    if preview is not None:
        files.append(staging.add_bytes(stage, PREVIEW_FILE, preview))
        info = replace(info, preview=PREVIEW_FILE)
    staging.add_bytes(stage, CARD_INFO, _CARD_INFO.dump_json(info))
    return StagedDataset(fingerprint, files, info, reused, staging.stage_uri(stage), manifest["files"])


def _preview_cells(staging: Staging, report: IntakeReport, shards: list[SealedShard]) -> Cells:
    """The card preview's pictures, shard by shard: from a shard this run sealed in local staging
    when it holds them (S3 staging would mean fetching a whole shard for a few thumbnails), else (the target alone holds that shard: its samples did not change) from the
    source files (hubpress.shards.preview)."""
    samples = preview_samples(report)
    if not samples:
        return []
    split = next(name for name in split_order(report.splits) if report.splits[name].samples)
    reader = SourceReader(staging.settings)
    cells: Cells = []
    for shard in (s for s in shards if s.split == split):  # in plan order, which is id order
        part = samples[len(cells) : len(cells) + shard.num_rows]
        if shard.source and staging.is_local:  # a local file can be read from its first rows
            cells += shard_cells([partial(staging.storage.open, parquet_relpath(shard.key))], len(part))
        else:  # the build decoded these images already (or the publish failed): no second decode
            cells += source_cells(part, lambda ref: reader(replace(ref, decode_pending=False)))
        if len(cells) >= len(samples):
            break
    return cells


def plan_build(
    target: Target,
    revision: str,
    report: IntakeReport,
    options: dict[str, Any],
    staging: Staging,
    stage: RunStage,
) -> BuildPlan:
    """The plan step: every shard planned and keyed, then which must be built. The run's lease
    names every key before the staging is searched, so no clean-up removes them under it."""
    limits = Limits.from_settings(staging.settings)
    plans = plan_all_shards(report, options, limits.files_per_folder)
    if plans:  # a dataset the Hub would refuse is refused here, before anything is built or sent
        check_planned_shards(len(plans), max(p.estimated_size for p in plans), limits)
    manifest, held = read_target_holdings(target, revision)
    return decide_reuse(plans, staging, stage, manifest, held)


def read_target_holdings(
    target: Target | None, revision: str
) -> tuple[dict[str, Any] | None, dict[str, SealedShard]]:
    """The target's manifest.json and the shards it holds (hubpress.shards.reuse.target_holdings)."""
    if target is None:
        return None, {}
    state = target.state(revision)
    text = None
    if state.head is not None and MANIFEST in state.files:
        git_oid = state.files[MANIFEST].git_oid
        text = usable_manifest(lambda: target.read_text(MANIFEST, state.head, git_oid=git_oid))
    manifest = parse_manifest(text)
    return manifest, target_holdings(manifest, state.files)


def decide_reuse(
    plans: Sequence[Planned],
    staging: Staging,
    stage: RunStage,
    manifest: dict[str, Any] | None,
    held: dict[str, SealedShard],
) -> BuildPlan:
    """Which planned shards must be built (the rule: hubpress.shards.reuse.choose), from what the
    target holds (read_target_holdings) and the shard store. The run's lease names every key
    before the staging is searched, so no clean-up removes them under it. Every build decides here."""
    stage.renew(keys=[plan.key for plan in plans])
    sealed = stage.pin(ShardStore(staging).find(plan.key for plan in plans if plan.key not in held))
    return choose(plans, held, sealed, manifest)


def card_renderer(info: DatasetCardInfo):
    return lambda existing: render_dataset_card(existing, info)


def verify_published(
    target_name: str,
    target: Any,
    commit: str,
    staged: StagedDataset,
    staging: Staging,
    settings: Settings,
    token: str | None,
    opened_before: str | None = None,
    checked_at_parent: dict[str, str] | None = None,
) -> VerifiedRevision:
    """Check a published editing dataset at `commit`. With `opened_before` (the card shape
    datasets opened at the parent commit: hubpress.shards.published.opened_before), by footers,
    the committed card and each split's first row, without importing datasets
    (verify_changed_revision; `checked_at_parent`: the kept shards whose footers were checked at
    the parent, path -> sha256); otherwise, as a first publish, with datasets opening each split
    (verify_dataset_revision)."""
    from hubpress.shards.editing_format import FEATURES_DICT

    columns = ["id", "prompt"]
    if opened_before is not None:
        try:
            rows = verify_changed_revision(
                target_name,
                target,
                commit,
                staged.expected,
                FEATURES_DICT,
                columns,
                opened_before,
                checked_at_parent,
            )
            log.info(
                "Verified %s@%s by its footers and card, shaped as the parent's.", target_name, commit[:12]
            )
            return VerifiedRevision(rows, opened_before, by_datasets=False)
        except PublishError as exc:  # stricter than datasets in places: datasets decides
            log.info("%s Opening it with datasets instead.", exc)
    rows = verify_dataset_revision(
        target_name, target, commit, staged.expected, FEATURES_DICT, token, columns
    )
    return VerifiedRevision(rows, card_shape(committed_card(target_name, target, commit)), by_datasets=True)
