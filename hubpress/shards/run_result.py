"""What a publish-dataset run says: its result (the CLI's `--json`, the API's return value) and its
summary (the CLI's text and the Prefect artifact), as pure functions of what the steps returned."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from hubpress.shards.card import human_size
from hubpress.shards.published import PublishedRecord, SampleChanges
from hubpress.sources.models import IntakeReport
from hubpress.sources.report import corrections_json
from hubpress.targets.publish import bytes_phrase

# The counts of an unchanged run (nothing planned, read, built or sent).
NO_SHARDS = {
    "shards": 0,
    "shards_built": 0,
    "shards_reused": 0,
    "shards_reused_from_stage": 0,
    "shards_sent": 0,
    "source_bytes": 0,
    "source_bytes_read": 0,
}


def published_result(
    outcome: dict[str, Any],
    report: IntakeReport,
    rows: dict[str, int],
    stage_uri: str,
    stage_reused: bool,
    changes: SampleChanges | None,
    counts: dict[str, Any],
) -> dict[str, Any]:
    """The result of a run that took the full path: the publish outcome (PublishOutcome.to_dict),
    the rows per split, what was skipped, the stage, the sample changes and the shard counts."""
    return {
        **outcome,
        "samples": rows,
        "skipped": {name: len(m.skipped) for name, m in report.splits.items()},
        "corrections": corrections_json(report),
        "empty_prompts": {
            name: sum(1 for sample in m.samples if sample.prompt == "") for name, m in report.splits.items()
        },
        "stage": stage_uri,
        "stage_reused": stage_reused,
        "listing_unchanged": False,
        # None: the target was last written from elsewhere, so the counts are unknown (reported_changes)
        "changes": None if changes is None else asdict(changes),
        **counts,
    }


def unchanged_result(target: str, record: PublishedRecord) -> dict[str, Any]:
    """The result of a run that stopped at the listing check: nothing was read or sent."""
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
        "transfer": None,
        "sent_bytes": 0,
        "deduped_bytes": 0,
        "refused_names": [],
        "already_present_files": [],
        "already_present_bytes": 0,
        "unchanged_files": [],
        "deleted_files": [],
        # One shape for every run: a no-op has the same keys as a publish.
        "plan": {"added": [], "changed": [], "unchanged": [], "deleted": []},
        "planned_bytes": 0,
        "attempts": 0,
        "warnings": [],
        "samples": rows,
        "skipped": dict(record.skipped),
        "corrections": [],
        "empty_prompts": {},
        "stage": None,
        "stage_reused": False,
        "listing_unchanged": True,
        "changes": {"added": 0, "changed": 0, "removed": 0},
        **NO_SHARDS,
    }


def summary_head(result: dict[str, Any]) -> str:
    """The first line of the summary: which kind of run this was."""
    if result["dry_run"]:
        return "dry run: nothing was uploaded"
    if result["commit"] is None:
        return "unchanged"
    changes = result["changes"]
    if changes is None:  # see reported_changes
        return f"samples added or changed: unknown (last written from elsewhere): {bytes_phrase(result, ' sent')}"
    return (
        f"{changes['added']} samples added, {changes['changed']} changed, {changes['removed']} removed: "
        f"{bytes_phrase(result, ' sent')}"
    )


def reuse_line(result: dict[str, Any]) -> str:
    """What was reused: "3 of 412 shards rebuilt (409 reused); 1.2 GB read of 480 GB; 2 shards,
    96.0 MB sent"."""
    return (
        f"{result.get('shards_built', 0)} of {result.get('shards', 0)} shards rebuilt "
        f"({result.get('shards_reused', 0)} reused); "
        f"{human_size(result.get('source_bytes_read', 0))} read of {human_size(result.get('source_bytes', 0))}; "
        f"{result.get('shards_sent', 0)} shard(s), {human_size(result.get('uploaded_bytes') or 0)} sent"
    )


def failure_summary(target: str, exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"failed: {first}\n\n# {target}\n"


def summary(result: dict[str, Any]) -> str:
    """The run's markdown summary (the publish-summary artifact)."""
    lines = [summary_head(result), "", f"# {result['target']}", ""]
    if result["listing_unchanged"]:
        lines.append(
            "The source listing and the target's head are as last published: nothing was read or sent."
        )
        return "\n".join(lines)
    lines += [reuse_line(result) + ".", ""]
    if result["commit"] is not None:
        lines.append(
            f"Committed `{result['commit'][:12]}`: {len(result['uploaded_files'])} file(s), "
            f"{bytes_phrase(result)}."
        )
    lines += ["", "| split | samples | skipped |", "|---|---|---|"]
    for split in sorted(result["samples"]):
        lines.append(f"| {split} | {result['samples'][split]} | {result['skipped'].get(split, 0)} |")
    lines += ["", f"Stage: `{result['stage']}` ({'reused' if result['stage_reused'] else 'built'})"]
    return "\n".join(lines)
