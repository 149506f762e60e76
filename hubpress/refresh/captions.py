"""Where a refreshed row's caption (and lyrics) come from: pure functions over a plain dict row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hubpress.refresh.backends import HuggingfaceBackend

DESCRIPTION_DICT_KEYS = ("main_subject", "description", "text")
DEFAULT_CAPTION_COLUMN = "caption"
DEFAULT_DESCRIPTION_COLUMN = "description"
NORM_LYRICS_COLUMN = "norm_lyrics"


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


def text_value(value: Any) -> str | None:
    """A caption value as clean text; empty, whitespace and None are no caption."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        # A list of tags reads as a comma-separated caption, not as Python's repr of a list.
        parts = [t for t in (text_value(v) for v in value) if t]
        return ", ".join(parts) or None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value).strip()
    return text or None


def _description_text(value: Any) -> str | None:
    if isinstance(value, Mapping):
        parts = [t for t in (text_value(value.get(k)) for k in DESCRIPTION_DICT_KEYS) if t]
        return " ".join(parts) or None
    return text_value(value)


def top_column(path: str) -> str:
    return path.split(".", 1)[0]


def caption_for(row: Mapping[str, Any], cfg: HuggingfaceBackend) -> list[str] | None:
    """The row's captions: caption column(s), then fallback, then (audio) prompt fields, then description."""
    columns = cfg.caption_column if cfg.caption_column is not None else DEFAULT_CAPTION_COLUMN
    if isinstance(columns, list):
        captions = [t for t in (text_value(get_path(row, c)) for c in columns) if t]
        if captions:
            return captions
    else:
        text = text_value(get_path(row, columns))
        if text:
            return [text]
    if cfg.fallback_caption_column:
        text = text_value(get_path(row, cfg.fallback_caption_column))
        if text:
            return [text]
    if cfg.dataset_type == "audio":
        parts = [t for t in (text_value(get_path(row, f)) for f in cfg.audio_caption_fields) if t]
        if parts:
            return [" ".join(parts)]
    description = cfg.description_column or DEFAULT_DESCRIPTION_COLUMN
    text = _description_text(get_path(row, description))
    return [text] if text else None


def lyrics_for(row: Mapping[str, Any], cfg: HuggingfaceBackend) -> str | None:
    """Lyrics from lyrics_column, falling back to norm_lyrics only when the value is missing (None).

    Faithful to SimpleTuner (HuggingfaceMetadataBackend._process_for_bucket): an empty string is
    kept as it is, because an instrumental or regularisation track legitimately has no lyrics."""
    paths = [cfg.lyrics_column]
    if cfg.lyrics_column != NORM_LYRICS_COLUMN:
        paths.append(NORM_LYRICS_COLUMN)
    for path in paths:
        value = get_path(row, path)
        if value is not None:
            return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
    return None


def editing_prompt(row: Mapping[str, Any], cfg: HuggingfaceBackend) -> list[str] | None:
    """Caption for an editing row: the prompt column when mapped, else the caption rules."""
    if cfg.editing is not None and cfg.editing.prompt_column:
        text = text_value(get_path(row, cfg.editing.prompt_column))
        return [text] if text else None
    return caption_for(row, cfg)
