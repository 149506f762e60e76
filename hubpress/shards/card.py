"""The dataset's README.md (card) and manifest.json, rendered from the build's results.

Both are pure functions of their inputs with no timestamps, so an unchanged dataset renders an
identical card and manifest and a re-publish commits nothing. The card goes through
`hubpress.shards.cards.merge_card`: text a user wrote outside hubpress's markers and YAML keys a user
added survive; the keys below and the marked block are hubpress's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import hubpress
from hubpress.shards.cards import escape_text, merge_card, split_front_matter
from hubpress.shards.parquet import BuiltShard
from hubpress.sources.models import IntakeReport, Sample

BASE_TAGS = ("hubpress", "image-editing")
TASK_CATEGORIES = ["image-to-image"]
DEFAULT_LICENSE = "other"
MANIFEST_FORMAT = 1
EXAMPLES_PER_SPLIT = 3

SCHEMA_ROWS = (
    ("id", "string", "Sample name (the file base name in the source)."),
    ("control_images", "list of images", "Control images, at least one; the first is the main control."),
    ("control_mask", "image, may be empty", "Optional mask for the edit."),
    ("target_image", "image, may be empty", "The edited image; often empty in test splits."),
    ("prompt", "string", "The editing instruction."),
)


@dataclass(frozen=True, slots=True)
class SplitSummary:
    name: str
    num_examples: int
    num_bytes: int  # uncompressed Arrow bytes (datasets' num_bytes)
    download_size: int  # bytes of the split's parquet files
    num_files: int
    with_mask: int
    with_target: int
    max_controls: int
    examples: tuple[tuple[str, str | None], ...] = ()  # (id, prompt) of the first few samples
    # Shard paths in sample-id order. Listed explicitly in the card's data_files because shard
    # names are content hashes: a glob would make datasets read the rows in hash order.
    files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DatasetCardInfo:
    splits: tuple[SplitSummary, ...]
    repo_id: str | None = None  # None for a local target
    pretty_name: str | None = None  # None: keep the card's, else derive from repo_id
    license: str | None = None  # None: keep the card's, else "other"
    tags: tuple[str, ...] = ()
    source_layout: str | None = None
    # datasets' YAML form of the features and splits, computed once when the stage is built, so
    # that re-rendering the card for a reused stage does not import `datasets` (~0.5 s).
    dataset_info: dict[str, Any] | None = None
    # The preview image's path in the repo (hubpress.shards.preview), shown under the title.
    preview: str | None = None


# The card lists splits in this order, then any other in name order: load_dataset returns a
# DatasetDict in the card's order, and qflux's own upload (a DatasetDict of train, then test) puts train first.
SPLIT_ORDER = ("train", "validation", "test")


def split_order(names: Iterable[str]) -> list[str]:
    """Split names as the card lists them: train, validation, test, then the rest by name."""
    return sorted(names, key=lambda n: (SPLIT_ORDER.index(n) if n in SPLIT_ORDER else len(SPLIT_ORDER), n))


def summarize_split(
    split: str, samples: Iterable[Sample], shards: Iterable[BuiltShard], examples: int = EXAMPLES_PER_SPLIT
) -> SplitSummary:
    """Counts for the card from a split's kept samples and its built shards (in id order)."""
    ordered = sorted(samples, key=lambda s: s.id)
    built = [b for b in shards if b.split == split]
    return SplitSummary(
        name=split,
        num_examples=len(ordered),
        num_bytes=sum(b.num_bytes for b in built),
        download_size=sum(b.size for b in built),
        num_files=len(built),
        with_mask=sum(1 for s in ordered if s.mask is not None),
        with_target=sum(1 for s in ordered if s.target is not None),
        max_controls=max((len(s.controls) for s in ordered), default=0),
        examples=tuple((s.id, s.prompt) for s in ordered[:examples]),
        files=tuple(b.path_in_repo for b in built),
    )


def card_metadata(info: DatasetCardInfo, existing_meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The YAML keys hubpress owns, in the order they are written."""
    existing_meta = existing_meta or {}
    meta: dict[str, Any] = {}
    pretty = info.pretty_name or existing_meta.get("pretty_name") or default_pretty_name(info.repo_id)
    if pretty:
        meta["pretty_name"] = pretty
    meta["license"] = info.license or existing_meta.get("license") or DEFAULT_LICENSE
    meta["task_categories"] = list(TASK_CATEGORIES)
    meta["tags"] = list(dict.fromkeys([*BASE_TAGS, *info.tags]))
    meta["configs"] = [
        {
            "config_name": "default",
            "data_files": [
                {"split": s.name, "path": list(s.files) if s.files else f"data/{s.name}-*.parquet"}
                for s in info.splits
            ],
        }
    ]
    meta["dataset_info"] = (
        info.dataset_info if info.dataset_info is not None else dataset_info_yaml(info.splits)
    )
    return meta


def dataset_info_yaml(splits: Iterable[SplitSummary]) -> dict[str, Any]:
    """datasets' own YAML form of the features and splits, so the Hub and load_dataset read it as
    theirs (DatasetInfo._to_yaml_dict, held as data in hubpress.shards.editing_format)."""
    from hubpress.shards.editing_format import dataset_info_yaml_dict

    splits = list(splits)
    return dataset_info_yaml_dict(
        [(s.name, s.num_bytes, s.num_examples) for s in splits], sum(s.download_size for s in splits)
    )


def card_body(info: DatasetCardInfo, pretty_name: str | None) -> str:
    repo = info.repo_id or "path/to/this/dataset"
    lines = [
        f"# {escape_text(pretty_name or info.repo_id or 'Image-editing dataset')}",
        "",
        "An image-editing dataset: each row pairs one or more control images (and an optional mask) "
        "with a target image and an editing prompt. The schema is the one qflux trainers load "
        "unchanged; images are stored in Parquet as the original files' bytes.",
        "",
        *(
            [
                f"![The first samples of the {escape_text(info.splits[0].name)} split: main control left, "
                f"target right]({info.preview})",
                "",
            ]
            if info.preview and info.splits
            else []
        ),
        "## Schema",
        "",
        "| column | type | description |",
        "| --- | --- | --- |",
        *(f"| `{name}` | {kind} | {text} |" for name, kind, text in SCHEMA_ROWS),
        "",
        "## Splits",
        "",
        "| split | examples | with mask | with target | most controls | parquet files | download size |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {s.name} | {s.num_examples} | {s.with_mask} | {s.with_target} | {s.max_controls} | "
            f"{s.num_files} | {human_size(s.download_size)} |"
            for s in info.splits
        ),
        "",
        "## Loading",
        "",
        "With hubpress (returns a `DatasetDict`, the qflux way):",
        "",
        "```python",
        "from hubpress import load_editing_dataset",
        "",
        f'dsd = load_editing_dataset("{repo}")',
        f'sample = dsd["{info.splits[0].name}"][0]' if info.splits else "",
        "```",
        "",
        "With plain `datasets`:",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'dsd = load_dataset("{repo}")',
        "```",
    ]
    examples = [(s.name, i, p) for s in info.splits for i, p in s.examples]
    if examples:
        lines += ["", "## Examples", "", "| split | id | prompt |", "| --- | --- | --- |"]
        lines += [f"| {split} | {_cell(i, 60)} | {_cell(p or '', 120)} |" for split, i, p in examples]
    lines += ["", f"Published with hubpress {hubpress.__version__}."]
    return "\n".join(lines)


def render_dataset_card(existing: str | None, info: DatasetCardInfo) -> str:
    """The new README.md: hubpress's YAML keys and marked block regenerated, the user's kept."""
    existing_meta, _ = split_front_matter(existing or "")
    meta = card_metadata(info, existing_meta)
    return merge_card(existing, meta, card_body(info, meta.get("pretty_name")))


def _file_entry(b: BuiltShard, key: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"sha256": b.sha256, "size": b.size, "split": b.split, "num_rows": b.num_rows}
    if key is not None:
        entry.update(num_bytes=b.num_bytes, key=key)
    return entry


def build_manifest(
    report: IntakeReport,
    shards: Iterable[BuiltShard],
    options: Mapping[str, Any],
    *,
    fingerprint: str,
    flow_run_id: str | None = None,
    keys: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """manifest.json: what was published from where, and how. No timestamps and no secrets; keys
    in a fixed order, so an unchanged dataset gives identical bytes. `flow_run_id` is the run that
    staged it. `keys`: path -> shard key; with them, each file's entry carries its key and
    num_bytes, so the next publish knows which shards the target already holds
    (hubpress.shards.reuse.target_holdings)."""
    built = sorted(shards, key=lambda b: b.path_in_repo)
    splits: dict[str, Any] = {}
    for name in sorted(report.splits):
        manifest = report.splits[name]
        files = [b for b in built if b.split == name]
        splits[name] = {
            "num_examples": len(manifest.samples),
            "num_bytes": sum(b.num_bytes for b in files),
            "num_skipped": len(manifest.skipped),
            # kept with a warning, as qflux keeps them: unconditional examples
            "num_empty_prompts": sum(1 for sample in manifest.samples if sample.prompt == ""),
            "files": [b.path_in_repo for b in files],
        }
    return {
        "format": MANIFEST_FORMAT,
        "hubpress_version": hubpress.__version__,
        "fingerprint": fingerprint,
        "flow_run_id": flow_run_id,
        "source": redact_uri(report.source),
        "layout": report.layout,
        "schema": {
            "id": "string",
            "control_images": "list<image>",
            "control_mask": "image?",
            "target_image": "image?",
            "prompt": "string",
        },
        "options": {k: _plain(v) for k, v in sorted(options.items()) if not _is_secret_key(k)},
        "splits": splits,
        "files": {b.path_in_repo: _file_entry(b, (keys or {}).get(b.path_in_repo)) for b in built},
        "skipped": [
            {"split": name, "id": s.id, "reasons": list(s.reasons)}
            for name in sorted(report.splits)
            for s in sorted(report.splits[name].skipped, key=lambda s: s.id)
        ],
        "corrections": [
            {
                "split": c.split,
                "sample": c.sample,
                "path": c.path,
                "from": c.from_,
                "to": c.to,
                "kind": c.kind,
            }
            for c in sorted(report.corrections, key=lambda c: (c.split, c.sample or "", c.path, c.kind))
        ],
    }


# --- helpers --------------------------------------------------------------------------------------

_SECRET_KEY = re.compile(r"token|secret|password|passwd|credential|api_?key|access_?key", re.IGNORECASE)


def _is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact_uri(uri: str) -> str:
    """A URI without any user:password part."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _plain(value: Any) -> Any:
    """JSON-safe, secret-free option values (SecretStr and the like never reach the manifest)."""
    if hasattr(value, "get_secret_value"):
        return "**********"
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items()) if not _is_secret_key(str(k))}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, bool | int | float | str):
        return redact_uri(value) if isinstance(value, str) and "@" in value and "://" in value else value
    return str(value)


def default_pretty_name(repo_id: str | None) -> str | None:
    """The card's default title from a repo id or a directory: "org/my-data_set" -> "My Data Set"."""
    if not repo_id:
        return None
    return repo_id.rsplit("/", 1)[-1].replace("-", " ").replace("_", " ").strip().title() or None


def _cell(text: str, limit: int) -> str:
    return escape_text(text, limit)


def human_size(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


__all__ = [
    "DatasetCardInfo",
    "SplitSummary",
    "build_manifest",
    "card_metadata",
    "render_dataset_card",
    "split_order",
    "summarize_split",
]
