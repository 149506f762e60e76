"""A refresh's filters (metadata, size, aspect, frames) and composite slicing, over plain dict rows."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image, UnidentifiedImageError

from hubpress.refresh.backends import CompositeImageConfig, HuggingfaceBackend
from hubpress.refresh.captions import get_path

SizeFn = Callable[[Mapping[str, Any]], tuple[int, int] | None]


# ---------------------------------------------------------------------------------------------
# Filters


def image_size_from_bytes(value: Any) -> tuple[int, int] | None:
    """(width, height) from an undecoded image value, reading only the header of bytes in hand
    (a path is never opened: upstream media is fetched, or refused, by hubpress.refresh.media)."""
    data = value.get("bytes") if isinstance(value, Mapping) else value
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


def as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def as_float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def source_size(
    row: Mapping[str, Any], cfg: HuggingfaceBackend, image_size_fn: SizeFn | None
) -> tuple[int, int] | None:
    """Full image size: width/height columns when configured and filled, else the image header."""
    if cfg.width_column and cfg.height_column:
        w, h = as_int(get_path(row, cfg.width_column)), as_int(get_path(row, cfg.height_column))
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
            value = as_float(quality.get(metric)) if isinstance(quality, Mapping) else None
            if value is None or value < threshold:
                reasons.append(f"quality.{metric}")
    if cfg.dataset_type == "video" and cfg.num_frames_column:
        frames = as_int(get_path(row, cfg.num_frames_column))
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
