"""What a refresh publishes besides its shards, decided from the build's results: manifest.json
(the upstream datasets at their exact shas, the rules, the counts, every published file), the
card's YAML keys and body, SimpleTuner's index of virtual file names and a ready-to-use
SimpleTuner dataloader entry for the published dataset.

All are pure functions of their inputs (no timestamps), so an unchanged refresh writes the
same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import hubpress
from hubpress.refresh import simpletuner
from hubpress.refresh.config import LocalBackend, RefreshConfig
from hubpress.refresh.lineage import REFRESH_FORMAT, SPLIT, Backend, RefreshOptions, backend_facts
from hubpress.refresh.mix import normalised_probabilities
from hubpress.refresh.rows import RefreshReport
from hubpress.refresh.simpletuner import is_editing
from hubpress.shards.card import default_pretty_name
from hubpress.shards.cards import merge_card, split_front_matter
from hubpress.shards.parquet import BuiltShard
from hubpress.targets.base import is_local_target, local_path
from hubpress.targets.plan import StagedFile

INDEX_FILE = "simpletuner_index.json"
DATALOADER_FILE = "simpletuner_dataloader.json"
BASE_TAGS = ("hubpress", "simpletuner", "refresh")


def published_dataset_name(target: str) -> str:
    """What `load_dataset` (and so SimpleTuner) is given: the repo id, or the local directory."""
    return str(local_path(target)) if is_local_target(target) else target


def dataloader_entry(config: RefreshConfig, target: str) -> list[dict[str, Any]]:
    """A SimpleTuner multidatabackend list with one huggingface entry reading the published dataset."""
    return simpletuner.dataloader_entry(config, published_dataset_name(target))


def caption_names(config: RefreshConfig) -> list[str]:
    """The published columns that hold captions (the prompt in the editing schema)."""
    return ["prompt"] if is_editing(config) else simpletuner.caption_columns(config)


def simpletuner_index(
    config: RefreshConfig, source_indices: list[int], backend_ids: list[str]
) -> dict[str, Any]:
    """SimpleTuner's virtual names for the published rows: `0.jpg` is published row 0."""
    extension = config.backends[0].virtual_extension
    index: dict[str, Any] = {
        "format": 1,
        "extension": extension,
        "source_index": {f"{i}.{extension}": s for i, s in enumerate(source_indices)},
    }
    if backend_ids:
        index["backend"] = {f"{i}.{extension}": b for i, b in enumerate(backend_ids)}
    return index


def _upstream_facts(backend: Backend, revision: str) -> dict[str, Any]:
    if isinstance(backend, LocalBackend):
        return {"type": "local", "instance_data_dir": backend.instance_data_dir, "revision_sha": revision}
    return {
        "type": "huggingface",
        "dataset_name": backend.dataset_name,
        "dataset_config": backend.dataset_config,
        "split": backend.split,
        "requested_revision": backend.revision,
        "revision_sha": revision,
    }


def build_manifest(
    config: RefreshConfig,
    options: RefreshOptions,
    revisions: Mapping[str, str],
    config_fp: str,
    stage_fp: str,
    reports: Mapping[str, RefreshReport],
    shards: list[BuiltShard],
    extra_files: Mapping[str, StagedFile],
    flow_run_id: str | None,
    keys: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """manifest.json: the upstream datasets at their exact shas, the rules, the counts and every
    published file (`files` is path -> facts, which hubpress.targets.ownership.owned_files reads).
    A shard's facts carry its key (`keys`, path -> key), so the next refresh finds it held
    (hubpress.shards.reuse.target_holdings)."""
    files: dict[str, Any] = {
        s.path_in_repo: {
            "sha256": s.sha256,
            "size": s.size,
            "split": SPLIT,
            "num_rows": s.num_rows,
            "num_bytes": s.num_bytes,
        }
        | ({"key": keys[s.path_in_repo]} if keys and s.path_in_repo in keys else {})
        for s in shards
    }
    files |= {path: {"sha256": f.sha256, "size": f.size} for path, f in sorted(extra_files.items())}
    kept = sum(s.num_rows for s in shards)
    return {
        "format": REFRESH_FORMAT,
        "kind": "refresh",
        "hubpress_version": hubpress.__version__,
        "config_fingerprint": config_fp,
        "stage_fingerprint": stage_fp,
        "flow_run_id": flow_run_id,
        "upstream": {b.id: _upstream_facts(b, revisions[b.id]) for b in config.backends},
        "backends": {b.id: backend_facts(b) for b in config.backends},
        "not_affecting_refresh": {k: list(v) for k, v in sorted(config.not_affecting.items())},
        "counts": {backend_id: reports[backend_id].to_dict() for backend_id in sorted(reports)},
        "mixing": _mixing(config, options),
        "splits": {
            SPLIT: {
                "num_examples": kept,
                "num_dropped": sum(r.dropped_total for r in reports.values()),
                "num_bytes": sum(s.num_bytes for s in shards),
                "files": [s.path_in_repo for s in shards],
            }
        },
        "index_file": INDEX_FILE,
        "dataloader_file": DATALOADER_FILE,
        "files": files,
    }


def _mixing(config: RefreshConfig, options: RefreshOptions) -> dict[str, Any] | None:
    if len(config.backends) == 1:
        return None
    return {
        "probabilities": normalised_probabilities(config.probabilities()),
        "seed": options.seed,
        "stopping": options.stopping,
    }


def card_facts(
    config: RefreshConfig,
    options: RefreshOptions,
    manifest: Mapping[str, Any],
    features: Any,
    shards: list[BuiltShard],
    reports: Mapping[str, RefreshReport],
) -> dict[str, Any]:
    """The card's YAML keys and marked body, decided once at build time and staged."""
    from datasets import DatasetInfo, SplitDict, SplitInfo

    split = manifest["splits"][SPLIT]
    splits = SplitDict()
    splits.add(SplitInfo(name=SPLIT, num_bytes=split["num_bytes"], num_examples=split["num_examples"]))
    info = DatasetInfo(
        features=features,
        splits=splits,
        download_size=sum(s.size for s in shards),
        dataset_size=split["num_bytes"],
    )
    name = published_dataset_name(options.target)
    pretty = options.pretty_name or default_pretty_name(name.rstrip("/")) or name
    meta = {
        "pretty_name": pretty,
        "license": options.license,
        "tags": list(BASE_TAGS) + (["image-editing"] if is_editing(config) else []),
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": SPLIT, "path": [s.path_in_repo for s in shards]}],
            }
        ],
        "dataset_info": info._to_yaml_dict(),
    }
    return {"meta": meta, "body": card_body(config, options, manifest, reports, pretty)}


def card_body(
    config: RefreshConfig,
    options: RefreshOptions,
    manifest: Mapping[str, Any],
    reports: Mapping[str, RefreshReport],
    pretty: str,
) -> str:
    name = published_dataset_name(options.target)
    split = manifest["splits"][SPLIT]
    lines = [
        f"# {pretty}",
        "",
        f"Refreshed by hubpress {hubpress.__version__} from the upstream dataset(s) below with a SimpleTuner "
        f"dataloader configuration: {split['num_examples']} rows kept, {split['num_dropped']} left out.",
        "",
        "## Upstream",
        "",
        "| backend | dataset | split | revision sha |",
        "| --- | --- | --- | --- |",
    ]
    for backend_id, facts in manifest["upstream"].items():
        source = facts.get("dataset_name") or facts.get("instance_data_dir")
        lines.append(f"| {backend_id} | `{source}` | {facts.get('split', '-')} | `{facts['revision_sha']}` |")
    lines += ["", "## Rows kept and left out", ""]
    for backend_id in sorted(reports):
        report = reports[backend_id]
        lines += [report.to_markdown(), ""]
        if report.dropped:
            lines += ["Left out, by first failing rule:", ""]
            lines += [f"- {reason}: {count}" for reason, count in sorted(report.dropped.items())]
            lines.append("")
    lines += ["## Filters and captions", ""]
    for backend in config.backends:
        lines += [f"**{backend.id}**", "", "```json", json.dumps(_rules(backend), indent=2), "```", ""]
    mixing = manifest.get("mixing")
    if mixing:
        lines += [
            "## Mixing",
            "",
            f"Seed {mixing['seed']}, stopping rule `{mixing['stopping']}`.",
            "",
            "| backend | probability |",
            "| --- | ---: |",
            *(f"| {k} | {v:.4f} |" for k, v in mixing["probabilities"].items()),
            "",
        ]
    lines += [
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'ds = load_dataset("{name}", split="{SPLIT}")',
        "```",
        "",
        f"`{DATALOADER_FILE}` is a ready-to-use SimpleTuner dataloader entry for this dataset, with the "
        "training keys of your configuration (video, repeats, crop, resolution ...)"
        + (
            ", one entry per backend with its probability, reading only its own rows"
            if len(config.backends) > 1
            else ""
        )
        + ": put it in SimpleTuner's config folder as your `multidatabackend.json`. Captions are plain strings in "
        f"{', '.join(f'`{c}`' for c in caption_names(config))}, named in its `huggingface` block. "
        f"`{INDEX_FILE}` maps SimpleTuner's virtual file names (`0.{config.backends[0].virtual_extension}` is "
        "row 0) to the upstream row each came from. `manifest.json` records the exact upstream revisions.",
    ]
    return "\n".join(lines)


_RULE_KEYS = (
    "split",
    "caption_column",
    "fallback_caption_column",
    "description_column",
    "filter_func",
    "composite_image_config",
    "minimum_image_size",
    "resolution_type",
    "minimum_aspect_ratio",
    "maximum_aspect_ratio",
    "video",
    "editing",
    "caption_source",
)


def _rules(backend: Backend) -> dict[str, Any]:
    facts = backend.model_dump(mode="json")
    return {k: facts[k] for k in _RULE_KEYS if k in facts and facts[k] not in (None, {}, [])}


def render_refresh_card(existing: str | None, card: Mapping[str, Any]) -> str:
    """README.md: hubpress's YAML keys and marked block regenerated, the user's kept."""
    existing_meta, _ = split_front_matter(existing or "")
    meta = dict(card["meta"])
    if existing_meta.get("license") and card["meta"].get("license") == "other":
        meta["license"] = existing_meta["license"]  # a license a user set on the Hub wins over the default
    return merge_card(existing, meta, card["body"])
