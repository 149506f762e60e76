"""Turn a refresh's rows into a publishable dataset: parquet shards, card, manifest, index and a
SimpleTuner dataloader entry, all staged under a fingerprint of (upstream shas, config, seed).

The flow (flows/refresh_dataset.py) calls these in order:

1. `upstream_revisions`: each backend's exact upstream revision (a Hub commit sha; for a local
   folder, a hash of its listing). Cheap: no data is downloaded.
2. `unchanged_manifest`: when the target's manifest.json records the same revisions and the same
   `config_fingerprint`, nothing can differ, and the run stops there (no download, no build).
3. `reuse_refresh_stage` or `build_refresh`: rows are read (streaming when configured), written
   as parquet with the Hugging Face features metadata (so `load_dataset` decodes the images), and
   staged with manifest.json, the index, the dataloader entry and the card's facts.
4. The shared publisher (`hubpress.targets.publish.publish_files`) plans and makes one commit;
   `render_refresh_card` merges the card with the target's current README.

Everything written is a pure function of its inputs (no timestamps), so an unchanged refresh
stages identical bytes and the same seed always gives the same mixed dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

import hubpress
from flows.params import RefreshParams
from hubpress.build.cards import merge_card, split_front_matter
from hubpress.build.shards import DEFAULT_ROW_GROUP_BYTES, DEFAULT_ROW_GROUP_ROWS, parse_size
from hubpress.build.staging import Staging
from hubpress.errors import ConfigError, SourceError
from hubpress.refresh.config import HuggingfaceBackend, LocalBackend, RefreshConfig, parse_refresh_config
from hubpress.refresh.local import IMAGE_SUFFIXES
from hubpress.refresh.mix import normalised_probabilities
from hubpress.refresh.reading import output_features, read_backend, read_mixed
from hubpress.refresh.rows import RefreshReport
from hubpress.refresh.upstream import resolve_revision
from hubpress.storage.hashcache import sha256_file
from hubpress.targets.base import is_local_target, local_path
from hubpress.targets.plan import StagedFile

REFRESH_FORMAT = 2  # bump when the bytes a refresh writes change for the same inputs
SPLIT = "train"
MANIFEST = "manifest.json"
INDEX_FILE = "simpletuner_index.json"
DATALOADER_FILE = "simpletuner_dataloader.json"
CARD_FACTS = "_hubpress/refresh_card.json"  # staged beside the files, never published
ROW_GROUP_ROWS = DEFAULT_ROW_GROUP_ROWS  # the same bounds as dataset shards: viewer-sized, memory-bounded
ROW_GROUP_BYTES = DEFAULT_ROW_GROUP_BYTES
BASE_TAGS = ("hubpress", "simpletuner", "refresh")

Backend = HuggingfaceBackend | LocalBackend


def load_config(params: RefreshParams) -> RefreshConfig:
    return parse_refresh_config(params.config)


# --- what changed upstream ------------------------------------------------------------------------


def local_folder_revision(cfg: LocalBackend) -> str:
    """A local folder's "revision": a hash of its image and caption files' paths, sizes and mtimes."""
    root = Path(cfg.instance_data_dir)
    if not root.is_dir():
        raise SourceError(f"backend {cfg.id!r}: instance_data_dir {str(root)!r} is not a directory")
    digest = hashlib.sha256()
    wanted = IMAGE_SUFFIXES | {".txt"}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted):
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return "local:" + digest.hexdigest()[:40]


def upstream_revisions(
    config: RefreshConfig, token: str | None, endpoint: str | None = None
) -> dict[str, str]:
    """Backend id -> the exact revision a refresh would read now. Errors (dataset not found,
    private without a token, bad revision) are one line each, raised before any work."""
    revisions: dict[str, str] = {}
    for backend in config.backends:
        if isinstance(backend, LocalBackend):
            revisions[backend.id] = local_folder_revision(backend)
        else:
            revisions[backend.id] = resolve_revision(backend, token, endpoint)
    return revisions


def _backend_facts(backend: Backend) -> dict[str, Any]:
    # Where the cache lives and how rows are fetched do not change what is published.
    return backend.model_dump(mode="json", exclude={"cache_dir", "streaming", "num_proc"})


def config_fingerprint(config: RefreshConfig, params: RefreshParams) -> str:
    """Everything besides upstream data that shapes the published bytes. 32 hex characters."""
    payload = {
        "format": REFRESH_FORMAT,
        "backends": [_backend_facts(b) for b in config.backends],
        "seed": params.seed,
        "stopping": params.stopping,
        "max_shard_size": parse_size(params.max_shard_size),
        "license": params.license,
        "pretty_name": params.pretty_name,
        "target": params.target,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def stage_fingerprint(revisions: Mapping[str, str], config_fp: str, seed: int) -> str:
    payload = {"refresh": REFRESH_FORMAT, "upstream": dict(revisions), "config": config_fp, "seed": seed}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def unchanged_manifest(
    manifest_text: str | None, revisions: Mapping[str, str], config_fp: str
) -> dict[str, Any] | None:
    """The target's manifest when it records exactly these upstream revisions and this config
    fingerprint (nothing to do), else None."""
    if not manifest_text:
        return None
    try:
        manifest = json.loads(manifest_text)
    except ValueError:
        return None
    if not isinstance(manifest, dict) or manifest.get("config_fingerprint") != config_fp:
        return None
    recorded = {
        k: v.get("revision_sha") for k, v in (manifest.get("upstream") or {}).items() if isinstance(v, dict)
    }
    return manifest if recorded == dict(revisions) else None


# --- the published schema -------------------------------------------------------------------------

_COLUMN_ORDER = ("image", "video", "audio", "captions", "width", "height", "num_frames", "fps", "lyrics")


def _is_editing(config: RefreshConfig) -> bool:
    return any(isinstance(b, HuggingfaceBackend) and b.editing is not None for b in config.backends)


def published_features(config: RefreshConfig) -> Any:
    """The published columns: media first, then captions, size, source_index (and backend_id when
    several backends are mixed); the editing schema exactly when an `editing` mapping is used."""
    from datasets import Audio, Features

    from hubpress.build.shards import editing_features

    if _is_editing(config):
        return editing_features()
    mixed = len(config.backends) > 1
    raw = output_features(config.backends[0], with_backend_id=mixed)
    if "audio" in raw:
        raw["audio"] = Audio(decode=False)  # same storage as the bytes/path struct, decoded by datasets
    order = [c for c in _COLUMN_ORDER if c in raw] + ["source_index"] + (["backend_id"] if mixed else [])
    return Features({name: raw[name] for name in order})


def _writer_options(features: Any) -> dict[str, Any]:
    """The ParquetWriter options datasets itself uses for these features (images stored as is)."""
    from datasets import config
    from datasets.arrow_writer import get_parquet_column_options

    return {
        "use_content_defined_chunking": dict(config.DEFAULT_CDC_OPTIONS),
        "write_page_index": True,
        **get_parquet_column_options(features, features.arrow_schema),
    }


@dataclass(frozen=True, slots=True)
class WrittenShard:
    path_in_repo: str
    local_path: str
    sha256: str
    size: int
    num_rows: int
    num_bytes: int  # uncompressed Arrow bytes (datasets' num_bytes)


class ShardWriter:
    """Row groups in, `data/train-<content hash>.parquet` files out; the caller says where a shard
    ends (shard_row_groups decides that from the rows themselves)."""

    def __init__(self, out_dir: str | os.PathLike[str], features: Any):
        self.out_dir = Path(out_dir)
        self.features = features
        self.schema: pa.Schema = features.arrow_schema
        self.options = _writer_options(features)
        self.shards: list[WrittenShard] = []
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._rows = 0
        self._bytes = 0

    def _open(self) -> None:
        self._path = self.out_dir / "data" / f".{SPLIT}-{len(self.shards):05d}.parquet.tmp"
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self._path, self.schema, **self.options)
        self._writer.add_key_value_metadata(
            {"content_defined_chunking": json.dumps(self.options["use_content_defined_chunking"])}
        )
        self._rows = self._bytes = 0

    def write(self, table: pa.Table, ends_shard: bool = False) -> None:
        if self._writer is None:
            self._open()
        assert self._writer is not None
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._rows += table.num_rows
        self._bytes += table.nbytes
        if ends_shard:
            self._close_shard()

    def _close_shard(self) -> None:
        assert self._writer is not None and self._path is not None
        self._writer.close()
        sha = sha256_file(self._path)
        # Named by content, like publish-dataset's shards: an unchanged shard keeps its name, so
        # the plan sees it unchanged even when shards before it were added or removed.
        final = self.out_dir / "data" / f"{SPLIT}-{sha[:16]}.parquet"
        os.replace(self._path, final)
        self.shards.append(
            WrittenShard(
                path_in_repo=final.relative_to(self.out_dir).as_posix(),
                local_path=str(final),
                sha256=sha,
                size=final.stat().st_size,
                num_rows=self._rows,
                num_bytes=self._bytes,
            )
        )
        self._writer = self._path = None

    def close(self) -> list[WrittenShard]:
        if self._writer is None and not self.shards:
            self.write(self.schema.empty_table())  # no row kept: still a loadable, empty split
        if self._writer is not None:
            self._close_shard()
        return self.shards


# --- rows into row groups and shards ---------------------------------------------------------------


def _row_bytes(row: Mapping[str, Any]) -> int:
    total = 128
    for value in row.values():
        if isinstance(value, Mapping) and isinstance(value.get("bytes"), bytes | bytearray):
            total += len(value["bytes"])
        elif isinstance(value, list):
            total += sum(len(v["bytes"]) for v in value if isinstance(v, Mapping) and v.get("bytes"))
    return total


def _row_key(row: Mapping[str, Any]) -> bytes:
    """What identifies a refreshed row: its backend and its row in the upstream snapshot."""
    return f"{row.get('backend_id', '')}:{row['source_index']}".encode()


def is_shard_boundary(key: bytes, row_bytes: int, spacing: int) -> bool:
    """A content-defined boundary after this row, chosen by the row's own key with a probability
    proportional to its size: boundaries fall every `spacing` bytes on average, whatever the row
    sizes, and a boundary stays on its row when rows elsewhere are added, dropped or changed."""
    draw = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return draw < min(1.0, row_bytes / spacing) * 2**64


def shard_row_groups(
    rows: Iterable[dict[str, Any]], max_shard_size: int, min_shard_size: int | None = None
) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """(row group, whether a shard ends after it), in row order. Pure.

    Row groups hold at most ROW_GROUP_ROWS rows and (beyond one row) ROW_GROUP_BYTES of media.
    A shard ends at a content-defined boundary once it holds `min_shard_size` (default max/8), and
    is cut before a row that would take it past `max_shard_size`; shards average about half the
    maximum, as publish-dataset's do."""
    min_size = max_shard_size // 8 if min_shard_size is None else min_shard_size
    spacing = max(max_shard_size // 2 - min_size, 1)
    group: list[dict[str, Any]] = []
    group_bytes = shard_bytes = 0
    for row in rows:
        size = _row_bytes(row)
        if group and shard_bytes + size > max_shard_size:
            yield group, True
            group, group_bytes, shard_bytes = [], 0, 0
        elif group and (len(group) >= ROW_GROUP_ROWS or group_bytes + size > ROW_GROUP_BYTES):
            yield group, False
            group, group_bytes = [], 0
        group.append(row)
        group_bytes += size
        shard_bytes += size
        if shard_bytes >= min_size and is_shard_boundary(_row_key(row), size, spacing):
            yield group, True
            group, group_bytes, shard_bytes = [], 0, 0
    if group:
        yield group, True


@dataclass
class RowsRead:
    """The backends' rows (lazily, in the published order), with their reports once consumed."""

    rows: Iterator[dict[str, Any]]
    reports: dict[str, RefreshReport]
    cache_reused: dict[str, bool | None]


def read_rows(
    config: RefreshConfig, seed: int, stopping: str, token: str | None, endpoint: str | None = None
) -> RowsRead:
    """One backend: its rows as they are read. Several: read_mixed's order.
    Every configuration error (missing column, ...) is raised here, before any row is written."""
    if len(config.backends) == 1:
        backend = config.backends[0]
        read = read_backend(backend, token, endpoint)
        return RowsRead(read.rows(), {backend.id: read.report}, {backend.id: read.cache_reused})
    mixed = read_mixed(config, seed, token, endpoint, stopping=stopping)  # type: ignore[arg-type]
    batches = mixed.dataset.with_format("arrow").iter(batch_size=ROW_GROUP_ROWS)
    rows = (row for batch in batches for row in batch.to_pylist())
    return RowsRead(rows, mixed.reports, mixed.cache_reused)


# --- staging a refresh ----------------------------------------------------------------------------


@dataclass(slots=True)
class StagedRefresh:
    fingerprint: str
    files: list[StagedFile]  # published files (shards, manifest, index, dataloader); README merged later
    card: dict[str, Any]  # {"meta": YAML keys, "body": markdown}
    manifest: dict[str, Any]
    reused: bool
    stage_uri: str
    cache_reused: dict[str, bool | None] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        return self.manifest["splits"][SPLIT]["num_examples"]

    @property
    def dropped(self) -> int:
        return self.manifest["splits"][SPLIT]["num_dropped"]


def published_dataset_name(target: str) -> str:
    """What `load_dataset` (and so SimpleTuner) is given: the repo id, or the local directory."""
    return str(local_path(target)) if is_local_target(target) else target


def dataloader_entry(config: RefreshConfig, target: str) -> list[dict[str, Any]]:
    """A SimpleTuner multidatabackend list with one huggingface entry reading the published dataset."""
    backend = config.backends[0]
    name = published_dataset_name(target)
    backend_id = name.rstrip("/").rsplit("/", 1)[-1] or "refreshed"
    entry: dict[str, Any] = {
        "id": backend_id,
        "type": "huggingface",
        "dataset_type": backend.dataset_type,
        "dataset_name": name,
        "split": SPLIT,
        "caption_strategy": "huggingface",
        "metadata_backend": "huggingface",
        "cache_dir": f"cache/{backend_id}",
    }
    if _is_editing(config):
        entry |= {"image_column": "target_image", "caption_column": "prompt"}
    elif backend.dataset_type == "image":
        entry |= {
            "image_column": "image",
            "caption_column": "captions",
            "width_column": "width",
            "height_column": "height",
        }
    elif backend.dataset_type == "video":
        entry |= {
            "video_column": "video",
            "caption_column": "captions",
            "num_frames_column": "num_frames",
            "fps_column": "fps",
        }
    else:
        entry |= {"audio_column": "audio", "caption_column": "captions", "lyrics_column": "lyrics"}
    return [entry]


def _index(config: RefreshConfig, source_indices: list[int], backend_ids: list[str]) -> dict[str, Any]:
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


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def build_manifest(
    config: RefreshConfig,
    params: RefreshParams,
    revisions: Mapping[str, str],
    config_fp: str,
    stage_fp: str,
    reports: Mapping[str, RefreshReport],
    shards: list[WrittenShard],
    extra_files: Mapping[str, StagedFile],
    flow_run_id: str | None,
) -> dict[str, Any]:
    """manifest.json: the upstream datasets at their exact shas, the rules, the counts and every
    published file (`files` is path -> facts, which hubpress.targets.publish.owned_paths reads)."""
    files: dict[str, Any] = {
        s.path_in_repo: {"sha256": s.sha256, "size": s.size, "split": SPLIT, "num_rows": s.num_rows}
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
        "backends": {b.id: _backend_facts(b) for b in config.backends},
        "not_affecting_refresh": {k: list(v) for k, v in sorted(config.not_affecting.items())},
        "counts": {backend_id: reports[backend_id].to_dict() for backend_id in sorted(reports)},
        "mixing": _mixing(config, params),
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


def _mixing(config: RefreshConfig, params: RefreshParams) -> dict[str, Any] | None:
    if len(config.backends) == 1:
        return None
    return {
        "probabilities": normalised_probabilities(config.probabilities()),
        "seed": params.seed,
        "stopping": params.stopping,
    }


def card_facts(
    config: RefreshConfig,
    params: RefreshParams,
    manifest: Mapping[str, Any],
    features: Any,
    shards: list[WrittenShard],
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
    name = published_dataset_name(params.target)
    pretty = (
        params.pretty_name or name.rstrip("/").rsplit("/", 1)[-1].replace("-", " ").replace("_", " ").title()
    )
    meta = {
        "pretty_name": pretty,
        "license": params.license,
        "tags": list(BASE_TAGS) + (["image-editing"] if _is_editing(config) else []),
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": SPLIT, "path": [s.path_in_repo for s in shards]}],
            }
        ],
        "dataset_info": info._to_yaml_dict(),
    }
    return {"meta": meta, "body": card_body(config, params, manifest, reports, pretty)}


def card_body(
    config: RefreshConfig,
    params: RefreshParams,
    manifest: Mapping[str, Any],
    reports: Mapping[str, RefreshReport],
    pretty: str,
) -> str:
    name = published_dataset_name(params.target)
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
        f"`{DATALOADER_FILE}` is a ready-to-use SimpleTuner dataloader entry for this dataset. "
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
    merged = merge_card(existing, meta, card["body"])
    head, fence, body = merged.partition("\n---\n")
    return head + fence + "\n" + body.lstrip("\n") if fence else merged


def build_refresh(
    config: RefreshConfig,
    params: RefreshParams,
    revisions: Mapping[str, str],
    config_fp: str,
    stage_fp: str,
    staging: Staging,
    token: str | None,
    flow_run_id: str | None = None,
    endpoint: str | None = None,
) -> StagedRefresh:
    """Read the rows, write the shards, stage everything, seal the stage (completion record last)."""
    features = published_features(config)
    out_names = list(features)
    rows = read_rows(config, params.seed, params.stopping, token, endpoint)
    source_indices: list[int] = []
    backend_ids: list[str] = []
    mixed = "backend_id" in features
    with tempfile.TemporaryDirectory(prefix="hubpress-refresh-") as tmp:
        writer = ShardWriter(tmp, features)
        for group, ends_shard in shard_row_groups(rows.rows, parse_size(params.max_shard_size)):
            source_indices.extend(row["source_index"] for row in group)
            if mixed:
                backend_ids.extend(row["backend_id"] for row in group)
            columns = {name: [row.get(name) for row in group] for name in out_names}
            writer.write(pa.Table.from_pydict(columns, schema=features.arrow_schema), ends_shard)
        shards = writer.close()
        files = [staging.add_file(stage_fp, s.path_in_repo, s.local_path, s.sha256) for s in shards]
    extra = {
        INDEX_FILE: staging.add_bytes(
            stage_fp, INDEX_FILE, _json_bytes(_index(config, source_indices, backend_ids))
        ),
        DATALOADER_FILE: staging.add_bytes(
            stage_fp, DATALOADER_FILE, _json_bytes(dataloader_entry(config, params.target))
        ),
    }
    manifest = build_manifest(
        config, params, revisions, config_fp, stage_fp, rows.reports, shards, extra, flow_run_id
    )
    card = card_facts(config, params, manifest, features, shards, rows.reports)
    files += list(extra.values())
    files.append(staging.add_bytes(stage_fp, MANIFEST, _json_bytes(manifest)))
    files.append(staging.add_bytes(stage_fp, CARD_FACTS, _json_bytes(card)))
    sealed = staging.complete(stage_fp, files)
    published = [f for f in sealed if not f.path.startswith("_hubpress/")]
    return StagedRefresh(
        stage_fp, published, card, manifest, False, staging.stage_uri(stage_fp), dict(rows.cache_reused)
    )


def verify_refresh(
    target_name: str,
    target: Any,
    commit: str,
    config: RefreshConfig,
    manifest: Mapping[str, Any],
    token: str | None,
) -> dict[str, int]:
    """The published refresh at `commit`: row counts from the shard footers, the published features,
    and the split opening with datasets (hubpress.build.pipeline.verify_dataset_revision)."""
    from hubpress.build.pipeline import verify_dataset_revision

    features = published_features(config)
    first = ["id", "prompt"] if _is_editing(config) else ["source_index"]
    return verify_dataset_revision(
        target_name, target, commit, dict(manifest["files"]), features.to_dict(), token, first_columns=first
    )


def reuse_refresh_stage(staging: Staging, stage_fp: str) -> StagedRefresh | None:
    """A complete stage for exactly these upstream revisions, config and seed, or None."""
    files = staging.lookup(stage_fp)
    if files is None:
        return None
    paths = {f.path for f in files}
    if CARD_FACTS not in paths or MANIFEST not in paths:
        return None
    card = json.loads(staging.storage.read_bytes(f"{stage_fp}/{CARD_FACTS}"))
    manifest = json.loads(staging.storage.read_bytes(f"{stage_fp}/{MANIFEST}"))
    published = [f for f in files if not f.path.startswith("_hubpress/")]
    return StagedRefresh(stage_fp, published, card, manifest, True, staging.stage_uri(stage_fp))


def nothing_changed_result(target_name: str, manifest: Mapping[str, Any], dry_run: bool) -> dict[str, Any]:
    """The result of a run that stopped because nothing changed upstream (same fields as a publish)."""
    split = manifest.get("splits", {}).get(SPLIT, {})
    unchanged = sorted({*manifest.get("files", {}), MANIFEST, "README.md"})
    return {
        "target": target_name,
        "commit": None,
        "commit_url": None,
        "pr_url": None,
        "tag": None,
        "dry_run": dry_run,
        "uploaded_files": [],
        "uploaded_bytes": 0,
        "unchanged_files": unchanged,
        "deleted_files": [],
        "plan": {"added": [], "changed": [], "unchanged": unchanged, "deleted": []},
        "attempts": 0,
        "samples": {SPLIT: split.get("num_examples", 0)},
        "skipped": {SPLIT: split.get("num_dropped", 0)},
        "nothing_changed": True,
        "message": "nothing changed upstream: same upstream revisions and the same configuration; "
        "no download, no build, no commit",
        "upstream": {k: v.get("revision_sha") for k, v in manifest.get("upstream", {}).items()},
        "metadata_cache_reused": {},
        "stage": None,
        "stage_reused": False,
    }


def check_single_kind(config: RefreshConfig) -> None:
    kinds = {("editing" if getattr(b, "editing", None) else b.dataset_type) for b in config.backends}
    if len(kinds) > 1:
        raise ConfigError(f"backends of different kinds cannot be mixed into one dataset: {sorted(kinds)}")
