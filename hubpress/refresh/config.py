"""The refresh configuration: SimpleTuner's multidatabackend JSON, read as pydantic models.

A refresh reads the same file a SimpleTuner user already has (one backend object or a list of
them) and applies its caption and filter rules as the document describes them; where that
departs from SimpleTuner's code, docs/refresh-semantics.md says how (HUGGINGFACE_BLOCK_ONLY notes
the options SimpleTuner would not read).
Options that only steer training (cropping, caches, repeats, text embeds...) are accepted and
listed as not affecting the refresh; an unknown key is a warning with the nearest known key.

Every option is read the same way at the top level of a backend, inside its `huggingface` block
or inside its `config` block (the document's audio example uses the latter); the same option in
two places with different values is an error, because we could not tell which one is meant.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hubpress.errors import ConfigError
from hubpress.parsers import MAX_DOCUMENT_BYTES, load_json
from hubpress.refresh.backends import (
    SUPPORTED_TYPES,
    TRAINING_ONLY_KEYS,
    VIDEO_TRAINING_ONLY_KEYS,
    CompositeImageConfig,
    EditingMapping,
    FilterFunc,
    HuggingfaceBackend,
    LocalBackend,
    VideoConfig,
)
from hubpress.storage.regular import read_regular

__all__ = [
    "CompositeImageConfig",
    "ConfigNote",
    "EditingMapping",
    "FilterFunc",
    "HuggingfaceBackend",
    "LocalBackend",
    "RefreshConfig",
    "VideoConfig",
    "parse_backend",
    "parse_refresh_config",
]


@dataclass(frozen=True)
class ConfigNote:
    """Something a person should know about the configuration; not an error."""

    backend_id: str
    key: str
    message: str


@dataclass
class RefreshConfig:
    backends: list[HuggingfaceBackend | LocalBackend]
    warnings: list[ConfigNote] = field(default_factory=list)
    not_affecting: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[ConfigNote] = field(default_factory=list)
    # Options hubpress applies where SimpleTuner would not read them (see HUGGINGFACE_BLOCK_ONLY).
    departures: list[ConfigNote] = field(default_factory=list)
    # Each data backend's entry as the user wrote it (backend id -> JSON object), and the user's
    # text/image embed cache backends: the published SimpleTuner entry keeps their training keys
    # (hubpress.refresh.training_keys).
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache_entries: list[dict[str, Any]] = field(default_factory=list)

    def backend(self, backend_id: str) -> HuggingfaceBackend | LocalBackend:
        for backend in self.backends:
            if backend.id == backend_id:
                return backend
        raise ConfigError(f"No backend with id {backend_id!r}; ids are {[b.id for b in self.backends]}")

    def probabilities(self) -> dict[str, float]:
        return {b.id: b.probability for b in self.backends}


def target_reads_itself(config: RefreshConfig, target: str, revision: str) -> str | None:
    """Why publishing to `target` (its branch `revision`) would write over what `config` reads, or
    None. A Hub backend's own repo at the branch it reads: the commit would replace its card (its
    `data_files`) and move the head every later refresh reads, so each night would read its own
    output. The Hub's repo names ignore case. A local backend's folder that is, holds or lies inside
    a local target: publish-dataset's rule for its source (hubpress.storage.names.overlap)."""
    from hubpress.storage.names import overlap
    from hubpress.targets.base import is_local_target

    local_target = is_local_target(target)
    for backend in config.backends:
        if isinstance(backend, LocalBackend):
            why = overlap(backend.instance_data_dir, target) if local_target else None
            if why:
                return (
                    f"backend {backend.id!r}: {why}: the refresh would write into the folder it reads. "
                    "Choose a target directory outside it (and it outside the target)."
                )
        elif not local_target and backend.dataset_name.casefold() == target.casefold():
            read = backend.revision or "main"  # the Hub's default branch
            if _branch(read) == _branch(revision):
                return (
                    f"the target {target} is the upstream of backend {backend.id!r} ({backend.dataset_name}, "
                    f"branch {read}): the refresh would commit over the dataset it reads. Publish to another "
                    "repo, or to another branch of it (--revision)."
                )
    return None


def _branch(revision: str) -> str:
    """A branch as the Hub names it: `refs/heads/main` is `main` (a revision in a URL may be either)."""
    return revision.removeprefix("refs/heads/")


def refuse_target_reading_itself(config: RefreshConfig, target: str, revision: str) -> None:
    """target_reads_itself as the error the CLI (before Prefect) and the flow (for a run no CLI
    checked) both raise: one line, exit 2."""
    from hubpress.errors import TargetIsInput

    if why := target_reads_itself(config, target, revision):
        raise TargetIsInput(why)


# ---------------------------------------------------------------------------------------------
# Parsing


_NESTED_MODELS: dict[str, type[BaseModel]] = {
    "filter_func": FilterFunc,
    "composite_image_config": CompositeImageConfig,
    "video": VideoConfig,
    "editing": EditingMapping,
}
_BLOCKS = ("huggingface", "config")
# Options SimpleTuner reads only from the entry's `huggingface` block: HuggingfaceMetadataBackend
# (simpletuner/helpers/metadata/backends/huggingface.py) reads hf_config, the block itself, and the
# builders read filter_func and composite_image_config from it. hubpress reads them anywhere.
HUGGINGFACE_BLOCK_ONLY = frozenset(
    {
        "caption_column",
        "fallback_caption_column",
        "description_column",
        "width_column",
        "height_column",
        "num_frames_column",
        "fps_column",
        "lyrics_column",
        "audio_caption_fields",
        "filter_func",
        "composite_image_config",
    }
)
_IDENTITY_KEYS = frozenset({"type", "disabled", "disable"})


def _known_keys(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


ALL_OPTION_KEYS = frozenset(
    _known_keys(HuggingfaceBackend)
    | _known_keys(LocalBackend)
    | TRAINING_ONLY_KEYS
    | _IDENTITY_KEYS
    | set(_BLOCKS)
)


def _suggest(key: str, known: set[str] | frozenset[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _flatten(raw: Mapping[str, Any], backend_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge the top level, `huggingface` and `config` blocks into one dict; conflicts are errors."""
    merged: dict[str, Any] = {}
    where: dict[str, str] = {}
    sources: list[tuple[str, Mapping[str, Any]]] = [("top level", raw)]
    for block in _BLOCKS:
        value = raw.get(block)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"backend {backend_id!r}: the {block!r} block must be an object, got {type(value).__name__}"
            )
        sources.append((f"the {block!r} block", value))
    for place, source in sources:
        for key, value in source.items():
            if place == "top level" and key in _BLOCKS:
                continue
            if key in merged and merged[key] != value:
                raise ConfigError(
                    f"backend {backend_id!r}: {key!r} is {merged[key]!r} at {where[key]} but {value!r} in "
                    f"{place}; keep one of them"
                )
            merged[key] = value
            where.setdefault(key, place)
    return merged, where


def _sort_keys(
    options: dict[str, Any], model: type[BaseModel], backend_id: str, notes: RefreshConfig
) -> dict[str, Any]:
    """Keep the keys the refresh uses; note the training-only ones; warn about unknown ones."""
    model_keys = _known_keys(model)
    kept: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in options.items():
        if key in model_keys:
            if key in _NESTED_MODELS and isinstance(value, Mapping):
                value = _sort_nested(key, value, backend_id, notes, ignored)
            kept[key] = value
        elif key in TRAINING_ONLY_KEYS:
            ignored.append(key)
        elif key in _IDENTITY_KEYS:
            continue
        else:
            known = (
                ALL_OPTION_KEYS if model is HuggingfaceBackend else _known_keys(model) | TRAINING_ONLY_KEYS
            )
            notes.warnings.append(
                ConfigNote(
                    backend_id,
                    key,
                    f"backend {backend_id!r}: unknown key {key!r} ignored{_suggest(key, known)}",
                )
            )
    if ignored:
        notes.not_affecting[backend_id] = sorted(ignored)
    return kept


def _sort_nested(
    name: str, value: Mapping[str, Any], backend_id: str, notes: RefreshConfig, ignored: list[str]
) -> dict[str, Any]:
    model_keys = _known_keys(_NESTED_MODELS[name])
    kept = {}
    for key, item in value.items():
        if key in model_keys:
            kept[key] = item
        elif name == "video" and key in VIDEO_TRAINING_ONLY_KEYS:
            ignored.append(f"video.{key}")
        else:
            notes.warnings.append(
                ConfigNote(
                    backend_id,
                    f"{name}.{key}",
                    f"backend {backend_id!r}: unknown key {name}.{key} ignored{_suggest(key, model_keys)}",
                )
            )
    return kept


def _validation_message(backend_id: str, error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"] if not isinstance(p, int) or len(item["loc"]) == 1)
        msg = item["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return f"backend {backend_id!r}: " + "; ".join(parts)


def parse_backend(
    raw: Mapping[str, Any], notes: RefreshConfig, position: int = 0
) -> HuggingfaceBackend | LocalBackend | None:
    """One backend object -> a validated model (or None for a cache backend that holds no data)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"backend #{position}: expected an object, got {type(raw).__name__}")
    backend_id = str(raw.get("id") or f"#{position}")
    if raw.get("disabled") or raw.get("disable"):
        notes.skipped.append(
            ConfigNote(backend_id, "disabled", f"backend {backend_id!r} is disabled: skipped")
        )
        return None
    dataset_type = raw.get("dataset_type", "image")
    if dataset_type in ("text_embeds", "image_embeds", "conditioning", "distillation_cache"):
        notes.skipped.append(
            ConfigNote(
                backend_id,
                "dataset_type",
                f"backend {backend_id!r} is a SimpleTuner {dataset_type} backend (training cache or derived "
                "data, not source data): skipped",
            )
        )
        return None
    backend_type = raw.get("type")
    if backend_type not in SUPPORTED_TYPES:
        raise ConfigError(
            f"backend {backend_id!r}: type {backend_type!r} is not supported by the refresh; "
            f"supported types are {', '.join(repr(t) for t in SUPPORTED_TYPES)}"
        )
    model: type[HuggingfaceBackend] | type[LocalBackend] = (
        HuggingfaceBackend if backend_type == "huggingface" else LocalBackend
    )
    merged, where = _flatten(raw, backend_id)
    if backend_type == "huggingface":
        _note_departures(backend_id, where, notes)
    options = _sort_keys(merged, model, backend_id, notes)
    options["type"] = backend_type
    options.setdefault("id", backend_id)
    try:
        backend = model.model_validate(options)
    except ValidationError as exc:
        raise ConfigError(_validation_message(backend_id, exc)) from None
    _note_video_settings(backend, notes)
    _note_conditional_keys(backend, set(merged), notes)
    return backend


def _note_departures(backend_id: str, where: Mapping[str, str], notes: RefreshConfig) -> None:
    outside = sorted(
        k for k in HUGGINGFACE_BLOCK_ONLY if k in where and where[k] != "the 'huggingface' block"
    )
    for key in outside:
        notes.departures.append(
            ConfigNote(
                backend_id,
                key,
                f"backend {backend_id!r}: {key!r} is set at {where[key]}; hubpress applies it, but SimpleTuner "
                "reads it only inside the 'huggingface' block (move it there to train on the same rows)",
            )
        )


def _note_conditional_keys(
    backend: HuggingfaceBackend | LocalBackend, given: set[str], notes: RefreshConfig
) -> None:
    """crop, crop_aspect, resolution and resolution_type shape the filters only in some combinations."""
    minimums = backend.size_minimums()
    square_area = any(m.min_area is not None and m.min_edge is not None for m in minimums)
    idle = set()
    if not minimums:
        idle.add("resolution_type")
    if not square_area:
        idle |= {"crop", "crop_aspect"}
    if not backend.drop_below_resolution:
        idle.add("resolution")
    unused = sorted(idle & given)
    if unused:
        notes.not_affecting[backend.id] = sorted({*notes.not_affecting.get(backend.id, []), *unused})


def _note_video_settings(backend: HuggingfaceBackend | LocalBackend, notes: RefreshConfig) -> None:
    if not isinstance(backend, HuggingfaceBackend) or backend.dataset_type != "video":
        return
    video = backend.video
    if video.min_frames is not None and video.num_frames is not None and video.min_frames < video.num_frames:
        # The document's own example does this; newer SimpleTuner refuses it at training time.
        notes.warnings.append(
            ConfigNote(
                backend.id,
                "video.min_frames",
                f"backend {backend.id!r}: video.min_frames={video.min_frames} is below video.num_frames="
                f"{video.num_frames}; the refresh keeps clips with >= {video.min_frames} frames, but recent "
                "SimpleTuner requires min_frames >= num_frames",
            )
        )


def _is_cache_backend(raw: Any) -> bool:
    from hubpress.refresh.training_keys import CACHE_TYPES

    return isinstance(raw, Mapping) and raw.get("dataset_type") in CACHE_TYPES and not raw.get("disabled")


def parse_refresh_config(source: str | Path | Mapping[str, Any] | list[Any]) -> RefreshConfig:
    """Read a multidatabackend JSON file (path or text) or an already-parsed object/list."""
    data: Any = source
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(("{", "["))):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"Refresh configuration {str(path)!r} does not exist or is not a file")
        text = read_regular(path, max_bytes=MAX_DOCUMENT_BYTES)
        origin = str(path)
    elif isinstance(source, str):
        text, origin = source, "the configuration text"
    else:
        text, origin = None, "the configuration"
    if text is not None:
        data = load_json(text, origin)
    entries = [data] if isinstance(data, Mapping) else data
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{origin} must hold a backend object or a non-empty list of them")
    config = RefreshConfig(backends=[])
    for position, raw in enumerate(entries):
        backend = parse_backend(raw, config, position)
        if backend is not None:
            config.backends.append(backend)
            config.entries[backend.id] = copy.deepcopy(dict(raw))
        elif _is_cache_backend(raw):
            config.cache_entries.append(copy.deepcopy(dict(raw)))
    if not config.backends:
        raise ConfigError(f"{origin} holds no data backend (every entry was skipped or disabled)")
    ids = [b.id for b in config.backends]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"backend ids must be unique; repeated: {duplicates}")
    if len(config.backends) > 1 and sum(b.probability for b in config.backends) <= 0:
        raise ConfigError("every backend has probability 0: nothing could be mixed")
    return config
