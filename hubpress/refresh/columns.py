"""Which columns a backend's configuration needs, and whether the upstream dataset has them."""

from __future__ import annotations

from collections.abc import Iterable

from hubpress.errors import ConfigError
from hubpress.refresh.backends import HuggingfaceBackend
from hubpress.refresh.captions import (
    DEFAULT_CAPTION_COLUMN,
    DEFAULT_DESCRIPTION_COLUMN,
    NORM_LYRICS_COLUMN,
    top_column,
)
from hubpress.refresh.filters import has_size_filters


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
    return path in columns or top_column(path) in columns


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
        for col in (path, top_column(path)):
            if col in available and col not in media and col not in out:
                out.append(col)
                break
    return out


def needs_image_header(cfg: HuggingfaceBackend) -> bool:
    """True when a size filter must read the image header (no width/height columns configured)."""
    if cfg.dataset_type != "image":
        return False
    return has_size_filters(cfg) and not (cfg.width_column and cfg.height_column)
