"""What a refresh does to one row, as pure functions over plain dict rows.

A row is what `datasets` yields: column name -> value, with media columns left undecoded
(`{"bytes": ..., "path": ...}`). Nothing here does I/O except reading an image header from
bytes already in hand; upstream.py decides which columns to read and when.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from hubpress.errors import ConfigError
from hubpress.refresh.config import CompositeImageConfig, HuggingfaceBackend

SizeFn = Callable[[Mapping[str, Any]], tuple[int, int] | None]

# SimpleTuner reads these keys, in order, from a description column that holds a dict.
DESCRIPTION_DICT_KEYS = ("main_subject", "description", "text")
DEFAULT_CAPTION_COLUMN = "caption"
DEFAULT_DESCRIPTION_COLUMN = "description"
NORM_LYRICS_COLUMN = "norm_lyrics"
EXAMPLES_PER_REASON = 5


# ---------------------------------------------------------------------------------------------
# Reading values


def get_path(row: Mapping[str, Any], path: str) -> Any:
    """A column, or a dotted path into nested dicts (`metadata.caption`). Missing -> None."""
    if path in row:
        return row[path]
    current: Any = row
    for key in path.split("."):
        if not isinstance(current, Mapping) or key not in current:
            return None
        current = current[key]
    return current


def _text(value: Any) -> str | None:
    """A caption value as clean text; empty, whitespace and None are no caption."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        # A list of tags reads as a comma-separated caption, not as Python's repr of a list.
        parts = [t for t in (_text(v) for v in value) if t]
        return ", ".join(parts) or None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value).strip()
    return text or None


def _description_text(value: Any) -> str | None:
    if isinstance(value, Mapping):
        parts = [t for t in (_text(value.get(k)) for k in DESCRIPTION_DICT_KEYS) if t]
        return " ".join(parts) or None
    return _text(value)


def _top(path: str) -> str:
    return path.split(".", 1)[0]


def caption_for(row: Mapping[str, Any], cfg: HuggingfaceBackend) -> list[str] | None:
    """The row's captions: caption column(s), then fallback, then (audio) prompt fields, then description."""
    columns = cfg.caption_column if cfg.caption_column is not None else DEFAULT_CAPTION_COLUMN
    if isinstance(columns, list):
        captions = [t for t in (_text(get_path(row, c)) for c in columns) if t]
        if captions:
            return captions
    else:
        text = _text(get_path(row, columns))
        if text:
            return [text]
    if cfg.fallback_caption_column:
        text = _text(get_path(row, cfg.fallback_caption_column))
        if text:
            return [text]
    if cfg.dataset_type == "audio":
        parts = [t for t in (_text(get_path(row, f)) for f in cfg.audio_caption_fields) if t]
        if parts:
            return [" ".join(parts)]
    description = cfg.description_column or DEFAULT_DESCRIPTION_COLUMN
    text = _description_text(get_path(row, description))
    return [text] if text else None


def lyrics_for(row: Mapping[str, Any], cfg: HuggingfaceBackend) -> str | None:
    """Lyrics from lyrics_column, falling back to norm_lyrics as SimpleTuner does."""
    text = _text(get_path(row, cfg.lyrics_column))
    if text is None and cfg.lyrics_column != NORM_LYRICS_COLUMN:
        text = _text(get_path(row, NORM_LYRICS_COLUMN))
    return text


# ---------------------------------------------------------------------------------------------
# Columns a configuration needs


def _caption_sources(cfg: HuggingfaceBackend) -> list[tuple[str, str, bool]]:
    """(path, option, explicit) for every caption source, in the order captions are looked up."""
    sources: list[tuple[str, str, bool]] = []
    if cfg.caption_column is None:
        sources.append((DEFAULT_CAPTION_COLUMN, "caption_column", False))
    else:
        cols = cfg.caption_column if isinstance(cfg.caption_column, list) else [cfg.caption_column]
        sources += [(c, "caption_column", True) for c in cols]
    if cfg.fallback_caption_column:
        sources.append((cfg.fallback_caption_column, "fallback_caption_column", True))
    if cfg.dataset_type == "audio":
        explicit = "audio_caption_fields" in cfg.model_fields_set
        sources += [(f, "audio_caption_fields", explicit) for f in cfg.audio_caption_fields]
    if cfg.description_column:
        sources.append((cfg.description_column, "description_column", True))
    else:
        sources.append((DEFAULT_DESCRIPTION_COLUMN, "description_column", False))
    return sources


def required_columns(cfg: HuggingfaceBackend) -> dict[str, str]:
    """Column -> the option that names it, for every column the configuration names explicitly."""
    needed: dict[str, str] = {}

    def need(path: str | None, option: str) -> None:
        if path:
            needed.setdefault(path, option)

    if cfg.editing is None:
        need(cfg.media_column, f"{cfg.dataset_type}_column")
    else:
        for col in cfg.editing.control_columns:
            need(col, "editing.control_columns")
        need(cfg.editing.target_column, "editing.target_column")
        need(cfg.editing.mask_column, "editing.mask_column")
        need(cfg.editing.prompt_column, "editing.prompt_column")
        need(cfg.editing.id_column, "editing.id_column")
    for path, option, explicit in _caption_sources(cfg):
        if explicit:
            need(path, option)
    need(cfg.width_column, "width_column")
    need(cfg.height_column, "height_column")
    need(cfg.num_frames_column, "num_frames_column")
    need(cfg.fps_column, "fps_column")
    ff = cfg.filter_func
    if ff.quality_thresholds:
        need(ff.quality_column, "filter_func.quality_column")
    if ff.collection:
        need(ff.collection_column, "filter_func.collection_column")
    if "lyrics_column" in cfg.model_fields_set:
        need(cfg.lyrics_column, "lyrics_column")
    return needed


def _exists(path: str, columns: Iterable[str]) -> bool:
    columns = set(columns)
    return path in columns or _top(path) in columns


def check_columns(cfg: HuggingfaceBackend, available: Iterable[str]) -> None:
    """A column the configuration names but the dataset lacks is an error listing the columns that exist."""
    available = list(available)
    missing = []
    for path, option in required_columns(cfg).items():
        if option == "lyrics_column" and _exists(NORM_LYRICS_COLUMN, available):
            continue  # the documented norm_lyrics fallback
        if not _exists(path, available):
            missing.append(f"{option}={path!r}")
    where = f"{cfg.dataset_name} (split {cfg.split!r})"
    if missing:
        raise ConfigError(
            f"backend {cfg.id!r}: {', '.join(missing)} not found in {where}; its columns are {sorted(available)}"
        )
    needs_caption = cfg.editing is None or cfg.editing.prompt_column is None
    if needs_caption and not any(_exists(p, available) for p, _, _ in _caption_sources(cfg)):
        raise ConfigError(
            f"backend {cfg.id!r}: no caption column in {where} (looked for "
            f"{[p for p, _, _ in _caption_sources(cfg)]}); set caption_column to one of {sorted(available)}"
        )
    if (
        cfg.dataset_type == "video"
        and not cfg.num_frames_column
        and (cfg.video.effective_min_frames or cfg.video.max_frames)
    ):
        raise ConfigError(
            f"backend {cfg.id!r}: video frame filters need num_frames_column (the refresh reads frame counts "
            f"from metadata and never decodes video); columns are {sorted(available)}"
        )


def media_columns(cfg: HuggingfaceBackend) -> list[str]:
    """Columns holding media bytes: read only for rows that pass the metadata filters."""
    if cfg.editing is None:
        return [cfg.media_column]
    cols = [*cfg.editing.control_columns, cfg.editing.target_column]
    if cfg.editing.mask_column:
        cols.append(cfg.editing.mask_column)
    return list(dict.fromkeys(cols))


def metadata_columns(cfg: HuggingfaceBackend, available: Iterable[str]) -> list[str]:
    """Columns the decisions read (captions, filters, sizes): the only ones read for every row."""
    available = list(available)
    wanted = [p for p, _, _ in _caption_sources(cfg)]
    wanted += list(required_columns(cfg))
    if cfg.dataset_type == "audio":
        wanted += [cfg.lyrics_column, NORM_LYRICS_COLUMN]
    media = set(media_columns(cfg))
    out = []
    for path in wanted:
        for col in (path, _top(path)):
            if col in available and col not in media and col not in out:
                out.append(col)
                break
    return out


def needs_image_header(cfg: HuggingfaceBackend) -> bool:
    """True when a size filter must read the image header (no width/height columns configured)."""
    if cfg.dataset_type != "image":
        return False
    return has_size_filters(cfg) and not (cfg.width_column and cfg.height_column)


# ---------------------------------------------------------------------------------------------
# Filters


def image_size_from_bytes(value: Any) -> tuple[int, int] | None:
    """(width, height) from an undecoded image value, reading only the header."""
    data = value.get("bytes") if isinstance(value, Mapping) else value
    if data is None and isinstance(value, Mapping) and value.get("path"):
        try:
            with Image.open(value["path"]) as img:
                return img.size
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
            return None
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return None
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:  # lazy: the header only, no pixel decode
            return img.size
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None


def header_size_fn(column: str) -> SizeFn:
    def size(row: Mapping[str, Any]) -> tuple[int, int] | None:
        return image_size_from_bytes(row.get(column))

    return size


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _as_float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def source_size(
    row: Mapping[str, Any], cfg: HuggingfaceBackend, image_size_fn: SizeFn | None
) -> tuple[int, int] | None:
    """Full image size: width/height columns when configured and filled, else the image header."""
    if cfg.width_column and cfg.height_column:
        w, h = _as_int(get_path(row, cfg.width_column)), _as_int(get_path(row, cfg.height_column))
        if w and h:
            return w, h
    return image_size_fn(row) if image_size_fn is not None else None


def published_size(size: tuple[int, int] | None, cfg: HuggingfaceBackend) -> tuple[int, int] | None:
    """The size of what is published: one slice of a composite, else the image itself."""
    if size is None:
        return None
    comp = cfg.composite_image_config
    if comp.active:
        return size[0] // comp.columns, size[1] // comp.rows
    return size


def _metadata_reasons(row: Mapping[str, Any], cfg: HuggingfaceBackend) -> list[str]:
    reasons = []
    ff = cfg.filter_func
    if ff.collection and get_path(row, ff.collection_column) not in ff.collection:
        reasons.append("collection")
    if ff.quality_thresholds:
        quality = get_path(row, ff.quality_column)
        for metric, threshold in ff.quality_thresholds.items():
            value = _as_float(quality.get(metric)) if isinstance(quality, Mapping) else None
            if value is None or value < threshold:
                reasons.append(f"quality.{metric}")
    if cfg.dataset_type == "video" and cfg.num_frames_column:
        frames = _as_int(get_path(row, cfg.num_frames_column))
        min_frames, max_frames = cfg.video.effective_min_frames, cfg.video.max_frames
        if min_frames and (frames is None or frames < min_frames):
            reasons.append("video.min_frames")
        if max_frames and (frames is None or frames > max_frames):
            reasons.append("video.max_frames")
    return reasons


def has_size_filters(cfg: HuggingfaceBackend) -> bool:
    ff = cfg.filter_func
    return bool(
        ff.min_width
        or ff.min_height
        or cfg.size_minimums()
        or cfg.minimum_aspect_ratio
        or cfg.maximum_aspect_ratio
    )


def _size_reasons(size: tuple[int, int] | None, cfg: HuggingfaceBackend) -> list[str]:
    ff = cfg.filter_func
    minimums = cfg.size_minimums()
    if size is None:
        return ["size_unknown"]
    width, height = size
    reasons = []
    if ff.min_width and width < ff.min_width:
        reasons.append("min_width")
    if ff.min_height and height < ff.min_height:
        reasons.append("min_height")
    reasons += [m.name for m in minimums if not m.passes(width, height)]
    aspect = width / height if height else 0.0
    if cfg.minimum_aspect_ratio and aspect < cfg.minimum_aspect_ratio:
        reasons.append("minimum_aspect_ratio")
    if cfg.maximum_aspect_ratio and aspect > cfg.maximum_aspect_ratio:
        reasons.append("maximum_aspect_ratio")
    return reasons


def passes_filters(
    row: Mapping[str, Any], cfg: HuggingfaceBackend, image_size_fn: SizeFn | None
) -> tuple[bool, list[str]]:
    """(keep, names of the filters the row fails). Metadata filters first; the image size is asked
    for (image_size_fn) only when they pass. image_size_fn=None defers header-based size checks."""
    reasons = _metadata_reasons(row, cfg)
    if reasons:
        return False, reasons
    if cfg.dataset_type == "image" and has_size_filters(cfg):
        size = source_size(row, cfg, image_size_fn)
        if size is not None or image_size_fn is not None:
            reasons = _size_reasons(published_size(size, cfg), cfg)
    return not reasons, reasons


# ---------------------------------------------------------------------------------------------
# Composite images


def slice_composite(
    image_bytes: bytes, cfg: CompositeImageConfig | HuggingfaceBackend
) -> tuple[bytes, int, int]:
    """Cut the selected image out of a strip (image_count equal slices across) or a grid (rows).

    Saved as PNG, as SimpleTuner does, so that slicing never adds compression loss."""
    comp = cfg.composite_image_config if isinstance(cfg, HuggingfaceBackend) else cfg
    with Image.open(io.BytesIO(image_bytes)) as img:
        width, height = img.size
        slice_w, slice_h = width // comp.columns, height // comp.rows
        if slice_w < 1 or slice_h < 1:
            raise ValueError(f"image of {width}x{height} is too small for {comp.rows}x{comp.columns} slices")
        row, col = divmod(comp.select_index, comp.columns)
        box = (col * slice_w, row * slice_h, (col + 1) * slice_w, (row + 1) * slice_h)
        piece = img.crop(box)
        out = io.BytesIO()
        piece.save(out, format="PNG")
    return out.getvalue(), slice_w, slice_h


# ---------------------------------------------------------------------------------------------
# Report


@dataclass
class RefreshReport:
    """What a refresh kept and dropped, per reason, with a few source indices as examples."""

    backend_id: str
    seen: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # by first reason
    filter_failures: Counter[str] = field(default_factory=Counter)  # every failing filter
    examples: dict[str, list[int]] = field(default_factory=dict)

    def keep(self) -> None:
        self.seen += 1
        self.kept += 1

    def drop(self, source_index: int, reasons: list[str]) -> None:
        self.seen += 1
        self.dropped[reasons[0]] += 1
        for reason in reasons:
            self.filter_failures[reason] += 1
            sample = self.examples.setdefault(reason, [])
            if len(sample) < EXAMPLES_PER_REASON:
                sample.append(source_index)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend_id": self.backend_id,
            "seen": self.seen,
            "kept": self.kept,
            "dropped": dict(self.dropped),
            "filter_failures": dict(self.filter_failures),
            "examples": self.examples,
        }

    def to_markdown(self) -> str:
        lines = [f"**{self.backend_id}**: {self.kept} kept of {self.seen} rows", ""]
        if self.filter_failures:
            lines += ["| filter | rows failing | example source rows |", "|---|---|---|"]
            for reason, count in self.filter_failures.most_common():
                lines.append(f"| {reason} | {count} | {', '.join(map(str, self.examples.get(reason, [])))} |")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Output rows


def _image_value(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        data = value.get("bytes")
        if data is None and value.get("path") and Path(value["path"]).is_file():
            data = Path(value["path"]).read_bytes()
        return {"bytes": data, "path": value.get("path")} if data is not None else None
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value), "path": None}
    raise TypeError(f"unexpected media value of type {type(value).__name__}")


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
            size = source_size(row, cfg, header_size_fn(cfg.image_column)) or (None, None)
            out["width"], out["height"] = size
    elif cfg.dataset_type == "video":
        size = source_size(row, cfg, None) or (None, None)
        out["width"], out["height"] = size
        out["num_frames"] = _as_int(get_path(row, cfg.num_frames_column)) if cfg.num_frames_column else None
        out["fps"] = _as_float(get_path(row, cfg.fps_column)) if cfg.fps_column else None
    else:
        out["lyrics"] = lyrics_for(row, cfg)
    return out


def build_editing_row(
    row: Mapping[str, Any], source_index: int, captions: list[str] | None, cfg: HuggingfaceBackend
) -> dict[str, Any]:
    """The qflux editing schema: id, control_images, control_mask, target_image, prompt."""
    editing = cfg.editing
    assert editing is not None
    controls = [_image_value(get_path(row, c)) for c in editing.control_columns]
    target = _image_value(get_path(row, editing.target_column))
    if target is None or any(c is None for c in controls):
        raise ValueError(f"row {source_index} lacks a control or target image")
    prompt = _text(get_path(row, editing.prompt_column)) if editing.prompt_column else None
    if prompt is None and captions:
        prompt = captions[0]
    ident = _text(get_path(row, editing.id_column)) if editing.id_column else None
    return {
        "id": ident or f"{source_index:08d}",
        "control_images": controls,
        "control_mask": _image_value(get_path(row, editing.mask_column)) if editing.mask_column else None,
        "target_image": target,
        "prompt": prompt or "",
        "source_index": source_index,
    }


def editing_prompt(row: Mapping[str, Any], cfg: HuggingfaceBackend) -> list[str] | None:
    """Caption for an editing row: the prompt column when mapped, else the caption rules."""
    if cfg.editing is not None and cfg.editing.prompt_column:
        text = _text(get_path(row, cfg.editing.prompt_column))
        return [text] if text else None
    return caption_for(row, cfg)


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
    if captions is None:
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
        report.keep()
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
    return Path(cfg.cache_dir or default_cache_dir) / "huggingface_metadata" / cfg.id
