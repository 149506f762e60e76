"""SimpleTuner's reading of a Hugging Face dataset row, as behaviour (our own code, not theirs).

Read from SimpleTuner main (bghira/SimpleTuner at bc8e6ab, 2026-08-22) and written here from the
behaviour, case by case; tests/refresh/test_simpletuner_compat.py pins every case in a table, so a change in
SimpleTuner's behaviour (re-read it) or in hubpress's (rerun the table) shows up as a failing case.

- entry keys: simpletuner/helpers/data_backend/builders/base.py, BaseBackendBuilder
  .create_metadata_backend: the metadata backend's options are the entry's `huggingface` block
  (`backend_dict.get("huggingface", {})`); nothing at the top level or in a `config` block.
- captions: simpletuner/helpers/metadata/backends/huggingface.py,
  HuggingfaceMetadataBackend._extract_caption_from_item (with _get_nested_value).
- size: the same file, HuggingfaceMetadataBackend metadata from width_column/height_column (the
  guarded reading; _get_image_metadata_from_item int()s the values unguarded, so hubpress never
  publishes a null size under a named column).
- quality: the same file, HuggingfaceMetadataBackend._passes_quality_filter and its caller.
- lyrics: the same file, HuggingfaceMetadataBackend._process_for_bucket (audio).
- frame limits: simpletuner/helpers/data_backend/factory.py init_backend_config (the `video`
  block and its defaults) and HuggingfaceMetadataBackend._process_for_bucket (too_few_frames,
  too_many_frames).
- probability: factory.py init_backend_config (`probability`), then
  simpletuner/helpers/data_backend/runtime/dataloader_iterator.py get_backend_weight (uniform
  sampling) and select_dataloader_index (weights <= 0 never drawn, the rest normalised).
- collection: simpletuner/helpers/data_backend/builders/huggingface.py
  HuggingfaceBackendBuilder._create_filter_function (the rule; at bc8e6ab the factory passes it
  ImageBackendConfig.to_dict()["config"], which does not carry filter_func: see
  docs/refresh-semantics.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DESCRIPTION_KEYS = ("main_subject", "description", "text")


def metadata_options(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What HuggingfaceMetadataBackend is configured with: the `huggingface` block, only."""
    return dict(entry.get("huggingface") or {})


def nested(item: Mapping[str, Any], path: str) -> Any:
    """A dotted path always walks dicts (a column literally named "a.b" is not looked up)."""
    if "." not in path:
        return item.get(path)
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def caption(item: Mapping[str, Any], options: Mapping[str, Any], dataset_type: str = "image") -> Any:
    """The caption SimpleTuner extracts: a str, a list of str (list caption_column), or None."""
    column = options.get("caption_column", "caption")
    found: Any = None
    if isinstance(column, list):
        values = [str(v) for v in (nested(item, c) for c in column) if v]
        found = values or None
    else:
        value = nested(item, column)
        found = str(value) if value else value  # any truthy value becomes str(value): a list -> its repr
    fallback = options.get("fallback_caption_column")
    if not found and fallback:
        value = nested(item, fallback)
        if value:
            found = str(value)
    if not found and dataset_type == "audio":
        fields = options.get("audio_caption_fields", ["prompt", "tags"])
        parts = [str(v).strip() for v in (nested(item, f) for f in fields) if v]
        if parts:
            found = " ".join(p for p in parts if p)
    description = options.get("description_column", "description")
    if not found and description in item:
        value = item.get(description)
        if isinstance(value, Mapping):
            parts = [str(value[k]) for k in DESCRIPTION_KEYS if k in value and value[k]]
            if parts:
                found = " ".join(parts)
        else:
            found = str(value)  # None -> "None"
    if found:
        if isinstance(found, list | tuple):
            found = [str(c).strip() for c in found if c]
        elif isinstance(found, str):
            found = found.strip()
    return found or None


def size(item: Mapping[str, Any], options: Mapping[str, Any]) -> tuple[int, int] | None:
    """(width, height) from the named columns when both are named and present, else None."""
    width_column, height_column = options.get("width_column"), options.get("height_column")
    if not (width_column and height_column) or width_column not in item or height_column not in item:
        return None
    try:
        width, height = int(item[width_column]), int(item[height_column])
    except (TypeError, ValueError):
        return None
    return (width, height) if width and height else None


def passes_quality(item: Mapping[str, Any], options: Mapping[str, Any]) -> bool:
    """filter_func.quality_thresholds from the block; a row without the column, or with a null
    or empty value, passes; a missing metric counts as 0."""
    thresholds = (options.get("filter_func") or {}).get("quality_thresholds")
    column = options.get("quality_column", "quality_assessment")
    if not thresholds or column not in item:
        return True
    quality = item[column]
    if not quality:
        return True
    return all(quality.get(metric, 0) >= minimum for metric, minimum in thresholds.items())


def lyrics(item: Mapping[str, Any], options: Mapping[str, Any]) -> str | None:
    """lyrics_column's value as str when it is not None ("" stays ""), else norm_lyrics."""
    column = options.get("lyrics_column", "lyrics")
    value = nested(item, column)
    if value is not None:
        return str(value)
    if column != "norm_lyrics":
        value = nested(item, "norm_lyrics")
        if value is not None:
            return str(value)
    return None


def frame_limits(entry: Mapping[str, Any], framerate: int = 30) -> tuple[int, int, int | None]:
    """(num_frames, min_frames, max_frames) a video entry trains with: without `num_frames`, five
    seconds at the framerate (150 at 30 fps); without `min_frames`, num_frames; max_frames unset."""
    video = dict(entry.get("video") or {})
    num_frames = video.get("num_frames", framerate * 5)
    min_frames = video.get("min_frames", num_frames)
    if min_frames < num_frames:
        raise ValueError("video->min_frames must be greater than or equal to video->num_frames")
    return num_frames, min_frames, video.get("max_frames")


def keeps_clip(num_frames: int, limits: tuple[int, int, int | None]) -> bool:
    """A clip with a known frame count is dropped below min_frames or above max_frames."""
    _, minimum, maximum = limits
    return not (minimum and num_frames < minimum) and not (maximum and num_frames > maximum)


def passes_filter_func(item: Mapping[str, Any], filter_config: Mapping[str, Any] | None) -> bool:
    """The builder's row filter: `collection` (a str or a list) against item["collection"];
    quality_thresholds (a row without quality fails here, unlike the metadata backend's check);
    min_width/min_height against item["width"]/item["height"] (0 when absent)."""
    if not filter_config:
        return True
    if "collection" in filter_config:
        wanted = filter_config["collection"]
        wanted = [wanted] if isinstance(wanted, str) else wanted
        if item.get("collection") not in wanted:
            return False
    if "quality_thresholds" in filter_config:
        quality = item.get(filter_config.get("quality_column", "quality_assessment"), {})
        if not quality:
            return False
        if any(quality.get(m, 0) < t for m, t in filter_config["quality_thresholds"].items()):
            return False
    if "min_width" in filter_config and item.get("width", 0) < filter_config["min_width"]:
        return False
    return not ("min_height" in filter_config and item.get("height", 0) < filter_config["min_height"])


def probability(entry: Mapping[str, Any]) -> float:
    """An entry's weight: absent -> 1; None or "" -> 1.0; else float(value) (0 stays 0)."""
    if "probability" not in entry:
        return 1.0
    value = entry["probability"]
    return 1.0 if value is None or value == "" else float(value)


def draw_weights(entries: list[Mapping[str, Any]]) -> dict[str, float]:
    """The chance each data entry is drawn at a step (uniform sampling): weights <= 0 are never
    drawn, the others are normalised."""
    weights = {e["id"]: probability(e) for e in entries}
    active = {k: w for k, w in weights.items() if w > 0}
    total = sum(active.values())
    return {k: w / total for k, w in active.items()}
