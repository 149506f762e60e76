"""What a refresh does to one row, as pure functions over plain dict rows.

A row is what `datasets` yields: column name -> value, with media columns left undecoded
(`{"bytes": ..., "path": ...}`). Nothing here does I/O except reading an image header from
bytes already in hand; upstream.py decides which columns to read and when.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import UnidentifiedImageError

from hubpress.refresh.backends import HuggingfaceBackend
from hubpress.refresh.captions import caption_for, editing_prompt, get_path, lyrics_for, text_value
from hubpress.refresh.columns import check_columns, media_columns, metadata_columns, required_columns
from hubpress.refresh.filters import (
    SizeFn,
    as_float,
    as_int,
    header_size_fn,
    image_size_from_bytes,
    passes_filters,
    slice_composite,
    source_size,
)
from hubpress.refresh.report import RefreshReport

__all__ = [
    "Decision",
    "RefreshReport",
    "build_output_row",
    "caption_for",
    "check_columns",
    "decide",
    "fingerprint",
    "header_size_fn",
    "image_size_from_bytes",
    "media_columns",
    "metadata_cache_dir",
    "metadata_columns",
    "passes_filters",
    "process_rows",
    "required_columns",
    "slice_composite",
    "virtual_index",
]


# ---------------------------------------------------------------------------------------------
# Output rows


def _image_value(value: Any) -> dict[str, Any] | None:
    """A media value as published. Only bytes in hand count: a path is never read here (the
    upstream reader fetched what the name gate allowed, hubpress.refresh.media)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        data = value.get("bytes")
        return {"bytes": data, "path": value.get("path")} if data is not None else None
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value), "path": None}
    raise TypeError(f"unexpected media value of type {type(value).__name__}")


def _control_values(value: Any) -> list[dict[str, Any] | None]:
    """A control column's images, in order: one image, or a list of them (`datasets`'
    `List(Image())`, the qflux schema's own `control_images`, so a dataset hubpress published
    refreshes as it was published). An empty list is a missing control, as None is: the row lacks
    a control (skipping it would make the next column's image the main control, the mask's)."""
    if isinstance(value, (list, tuple)):
        return [_image_value(v) for v in value] or [None]
    return [_image_value(value)]


def build_output_row(
    row: Mapping[str, Any], source_index: int, captions: list[str] | None, cfg: HuggingfaceBackend
) -> dict[str, Any]:
    """The published row: media, captions, size, source_index, plus video/audio fields."""
    if cfg.editing is not None:
        return build_editing_row(row, source_index, captions, cfg)
    media = _image_value(row.get(cfg.media_column))
    if media is None:
        raise ValueError(f"row {source_index} has no data in column {cfg.media_column!r}")
    out: dict[str, Any] = {
        cfg.dataset_type: media,
        "captions": list(captions or []),
        "source_index": source_index,
    }
    if cfg.dataset_type == "image":
        if cfg.composite_image_config.active:
            data, w, h = slice_composite(media["bytes"], cfg)
            out["image"] = {"bytes": data, "path": f"{source_index}.png"}
            out["width"], out["height"] = w, h
        else:
            size = source_size(row, cfg, header_size_fn(cfg.image_column))
            if size is None:  # SimpleTuner's int(width) would fail on a null: no image without a size
                raise ValueError(f"row {source_index}: the image's size cannot be read")
            out["width"], out["height"] = size
    elif cfg.dataset_type == "video":
        size = source_size(row, cfg, None) or (None, None)
        out["width"], out["height"] = size
        out["num_frames"] = as_int(get_path(row, cfg.num_frames_column)) if cfg.num_frames_column else None
        out["fps"] = as_float(get_path(row, cfg.fps_column)) if cfg.fps_column else None
    else:
        out["lyrics"] = lyrics_for(row, cfg)
    return out


def build_editing_row(
    row: Mapping[str, Any], source_index: int, captions: list[str] | None, cfg: HuggingfaceBackend
) -> dict[str, Any]:
    """The qflux editing schema: id, control_images, control_mask, target_image, prompt."""
    editing = cfg.editing
    assert editing is not None
    controls = [image for c in editing.control_columns for image in _control_values(get_path(row, c))]
    target = _image_value(get_path(row, editing.target_column))
    if target is None or not controls or any(c is None for c in controls):
        raise ValueError(f"row {source_index} lacks a control or target image")
    prompt = text_value(get_path(row, editing.prompt_column)) if editing.prompt_column else None
    if prompt is None and captions:
        prompt = captions[0]
    ident = text_value(get_path(row, editing.id_column)) if editing.id_column else None
    return {
        "id": ident or f"{source_index:08d}",
        "control_images": controls,
        "control_mask": _image_value(get_path(row, editing.mask_column)) if editing.mask_column else None,
        "target_image": target,
        "prompt": prompt or "",
        "source_index": source_index,
    }


# ---------------------------------------------------------------------------------------------
# Decisions over a stream of rows


@dataclass(frozen=True)
class Decision:
    keep: bool
    reasons: list[str]
    captions: list[str] | None


def decide(row: Mapping[str, Any], cfg: HuggingfaceBackend, image_size_fn: SizeFn | None) -> Decision:
    """Caption and filters for one row. With image_size_fn=None header-based size checks are deferred."""
    captions = editing_prompt(row, cfg)
    keep, reasons = passes_filters(row, cfg, image_size_fn)
    # An editing row with an empty or null prompt is kept, its prompt "": the rule publish-dataset
    # follows (qflux's ImageDataset trains on it; docs/layouts.md). Other rows need a caption.
    if captions is None and cfg.editing is None:
        reasons = [*reasons, "no_caption"]
        keep = False
    return Decision(keep, reasons, captions)


def process_rows(
    rows: Iterable[tuple[int, Mapping[str, Any]]], cfg: HuggingfaceBackend, report: RefreshReport
) -> Iterable[dict[str, Any]]:
    """(source_index, full row) -> output rows, lazily: bounded memory for streaming input."""
    size_fn = (
        header_size_fn(cfg.image_column) if cfg.dataset_type == "image" and cfg.editing is None else None
    )
    if cfg.editing is not None:
        size_fn = header_size_fn(cfg.editing.target_column)
    for index, row in rows:
        decision = decide(row, cfg, size_fn)
        if not decision.keep:
            report.drop(index, decision.reasons)
            continue
        try:
            out = build_output_row(row, index, decision.captions, cfg)
        except (ValueError, OSError, UnidentifiedImageError, TypeError):
            # A row whose media cannot be read is reported and left out, never a crash mid-stream.
            report.drop(index, [f"unreadable_{cfg.dataset_type}"])
            continue
        report.keep(empty_prompt=cfg.editing is not None and not out["prompt"])
        yield out


# ---------------------------------------------------------------------------------------------
# Index and fingerprint


def virtual_index(source_indices: Iterable[int], extension: str) -> dict[str, int]:
    """SimpleTuner's virtual names: `{i}.{ext}` is row i of the filtered dataset -> its source row."""
    return {f"{i}.{extension}": int(src) for i, src in enumerate(source_indices)}


def fingerprint(cfg: HuggingfaceBackend, revision_sha: str) -> str:
    """A key over everything that decides which rows are kept and what they hold."""
    fields = cfg.model_dump(
        mode="json",
        exclude={"id", "probability", "cache_dir", "streaming", "num_proc", "revision"},
    )
    payload = json.dumps({"revision_sha": revision_sha, **fields}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def metadata_cache_dir(cfg: HuggingfaceBackend, default_cache_dir: str | Path) -> Path:
    """`{cache_dir}/huggingface_metadata/{id}/`, SimpleTuner's layout for the metadata cache."""
    from hubpress.storage.names import inside

    return inside(
        Path(cfg.cache_dir or default_cache_dir) / "huggingface_metadata", cfg.id, what="backend id"
    )
