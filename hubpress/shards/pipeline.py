"""The dataset publishing pipeline's steps as plain functions over typed values.

The flow (flows/publish_dataset.py) wraps each step as a Prefect task; the Python API and tests
can call them without Prefect. Order: intake -> fingerprint -> (reuse a complete stage, or plan
shards, build them, stage them) -> publish (plan, one commit) -> verify (hubpress.shards.verify).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from hubpress.settings import Settings
from hubpress.shards.card import (
    DatasetCardInfo,
    build_manifest,
    dataset_info_yaml,
    render_dataset_card,
    summarize_split,
)
from hubpress.shards.shards import BuiltShard, ShardPlan, StagedShard, in_folders, plan_shards
from hubpress.shards.sizes import DEFAULT_MAX_SHARD_SIZE, parse_size
from hubpress.shards.staging import PRIVATE_PREFIX, Staging, json_bytes
from hubpress.shards.verify import verify_dataset_revision
from hubpress.sources.models import IntakeReport
from hubpress.targets.base import is_local_target
from hubpress.targets.limits import MAX_FILES_PER_FOLDER
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


def save_split_plans(staging: Staging, fingerprint: str, split: str, plans: list[ShardPlan]) -> None:
    """Write a split's shard plans into the stage, for a subflow (or a remote worker) to build."""
    staging.add_bytes(fingerprint, _plans_path(split), _PLANS.dump_json(plans))


def load_split_plans(staging: Staging, fingerprint: str, split: str) -> list[ShardPlan]:
    return _PLANS.validate_json(staging.storage.read_bytes(f"{fingerprint}/{_plans_path(split)}"))


@dataclass(slots=True)
class StagedDataset:
    fingerprint: str
    files: list[StagedFile]  # what is published (shards, manifest.json); README.md is merged later
    card_info: DatasetCardInfo
    reused: bool
    stage_uri: str


def card_info_for(report: IntakeReport, built: list[BuiltShard], options: dict[str, Any]) -> DatasetCardInfo:
    splits = tuple(
        summarize_split(name, report.splits[name].samples, [b for b in built if b.split == name])
        for name in sorted(report.splits)
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
    fingerprint: str,
    report: IntakeReport,
    shards: list[StagedShard],
    options: dict[str, Any],
    flow_run_id: str | None,
) -> StagedDataset:
    """Stage manifest.json and the card's facts beside the staged shards, then seal the stage.

    The README itself is not staged: it is merged with the target's current card at publish
    time, so edits a user makes to the card between two publishes of unchanged data survive."""
    built = [s.shard for s in shards]
    manifest = build_manifest(report, built, options, fingerprint=fingerprint, flow_run_id=flow_run_id)
    info = card_info_for(report, built, options)
    generated = {MANIFEST: json_bytes(manifest), CARD_INFO: _CARD_INFO.dump_json(info)}
    files = staging.seal(fingerprint, [s.file for s in shards], generated)
    return StagedDataset(fingerprint, files, info, False, staging.stage_uri(fingerprint))


def reuse_stage(staging: Staging, fingerprint: str) -> StagedDataset | None:
    """A complete stage of exactly this data and these options, or None."""
    files = staging.reopen(fingerprint, required=[MANIFEST, CARD_INFO])
    if files is None:
        return None
    info = _CARD_INFO.validate_json(staging.storage.read_bytes(f"{fingerprint}/{CARD_INFO}"))
    return StagedDataset(fingerprint, files, info, True, staging.stage_uri(fingerprint))


def card_renderer(info: DatasetCardInfo):
    return lambda existing: render_dataset_card(existing, info)


def expected_rows(staged: StagedDataset, staging: Staging) -> dict[str, dict[str, Any]]:
    """manifest.json's per-file facts (split, num_rows), read from the stage."""
    return staging.read_json(staged.fingerprint, MANIFEST)["files"]


def verify_published(
    target_name: str,
    target: Any,
    commit: str,
    staged: StagedDataset,
    staging: Staging,
    settings: Settings,
    token: str | None,
) -> dict[str, int]:
    """Check a published editing dataset at `commit` (see verify_dataset_revision)."""
    from hubpress.shards.editing import editing_features

    files = expected_rows(staged, staging)
    return verify_dataset_revision(
        target_name,
        target,
        commit,
        files,
        editing_features().to_dict(),
        token,
        first_columns=["id", "prompt"],
    )
