"""The refresh configuration: SimpleTuner's multidatabackend JSON, read as pydantic models.

A refresh reads the same file a SimpleTuner user already has (one backend object or a list of
them) so that the dataset published to the Hub is the dataset SimpleTuner would have trained on.
Options that only steer training (cropping, caches, repeats, text embeds...) are accepted and
listed as not affecting the refresh; an unknown key is a warning with the nearest known key.

Every option is read the same way at the top level of a backend, inside its `huggingface` block
or inside its `config` block (the document's audio example uses the latter); the same option in
two places with different values is an error, because we could not tell which one is meant.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hubpress.errors import ConfigError

SUPPORTED_TYPES = ("huggingface", "local")
ResolutionType = Literal["pixel", "area", "pixel_area"]
DatasetType = Literal["image", "video", "audio"]

# SimpleTuner's virtual file names: `{index}.{ext}`, ext by dataset type (HuggingfaceDatasetsBackend).
VIRTUAL_EXTENSIONS: dict[str, str] = {"image": "jpg", "video": "mp4", "audio": "wav"}

# Keys SimpleTuner reads only while training. Accepted, and listed as "not affecting the refresh".
TRAINING_ONLY_KEYS = frozenset(
    {
        "caption_strategy",
        "metadata_backend",
        "crop_style",
        "crop_aspect_buckets",
        "max_upscale_threshold",
        "maximum_image_size",
        "target_downsample_size",
        "repeats",
        "cache_dir_vae",
        "vae_cache_clear_each_epoch",
        "text_embeds",
        "text_embed_cache",
        "image_embeds",
        "skip_file_discovery",
        "preserve_data_backend_cache",
        "hash_filenames",
        "delete_unwanted_images",
        "delete_problematic_images",
        "metadata_update_interval",
        "prepend_instance_prompt",
        "instance_prompt",
        "only_instance_prompt",
        "caption_filter_list",
        "is_regularisation_data",
        "is_regularization_data",
        "ignore_epochs",
        "disable_validation",
        "write_batch_size",
        "start_epoch",
        "start_step",
        "end_epoch",
        "end_step",
        "conditioning",
        "conditioning_data",
        "conditioning_config",
        "conditioning_type",
        "source_dataset_id",
        "compress_cache",
        "auto_load",
        "default",
        "cache_file_suffix",
        "aspect_bucket_rounding",
        "aspect_bucket_alignment",
        "audio",
        "file_extension",
    }
)
# Keys of the `video` block SimpleTuner uses only while training.
VIDEO_TRAINING_ONLY_KEYS = frozenset({"is_i2v", "bucket_strategy", "frame_interval", "framerate"})

# Keys that shape the filters only in particular combinations (documented on the fields).
CONDITIONAL_KEYS = frozenset({"crop", "crop_aspect", "resolution_type"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilterFunc(_Model):
    """SimpleTuner's `filter_func` block: quality thresholds, collections and minimum sizes."""

    quality_thresholds: dict[str, float] = Field(
        default_factory=dict, description="metric -> minimum; a row passes a metric when value >= threshold."
    )
    quality_column: str = Field(
        default="quality_assessment", description="Column holding a dict of metrics (SimpleTuner's default)."
    )
    collection: list[str] | None = Field(
        default=None, description="Keep rows whose collection is one of these."
    )
    collection_column: str = Field(
        default="collection",
        description="Column the collection filter reads. SimpleTuner hard-codes item['collection'].",
    )
    min_width: int | None = Field(default=None, ge=1, description="Minimum width in pixels.")
    min_height: int | None = Field(default=None, ge=1, description="Minimum height in pixels.")

    @field_validator("collection", mode="before")
    @classmethod
    def _one_collection_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class CompositeImageConfig(_Model):
    """A row's image is a strip (or, with `rows`, a grid) of `image_count` equal images."""

    enabled: bool = False
    image_count: int = Field(default=1, ge=1)
    select_index: int = Field(default=0, ge=0, description="Which image to keep, row-major in a grid.")
    rows: int = Field(default=1, ge=1, description="hubpress extension: grid rows (1 = a horizontal strip).")

    @model_validator(mode="after")
    def _index_in_range(self) -> CompositeImageConfig:
        if self.select_index >= self.image_count:
            raise ValueError(
                f"composite_image_config.select_index={self.select_index} is out of range for "
                f"image_count={self.image_count} (valid: 0..{self.image_count - 1})"
            )
        if self.image_count % self.rows:
            raise ValueError(
                f"composite_image_config.image_count={self.image_count} is not divisible by rows={self.rows}"
            )
        return self

    @property
    def columns(self) -> int:
        return self.image_count // self.rows

    @property
    def active(self) -> bool:
        return self.enabled and self.image_count > 1


class VideoConfig(_Model):
    num_frames: int | None = Field(default=None, ge=1, description="Frames a training clip uses.")
    min_frames: int | None = Field(default=None, ge=1, description="Drop videos with fewer frames.")
    max_frames: int | None = Field(default=None, ge=1, description="Drop videos with more frames.")

    @property
    def effective_min_frames(self) -> int | None:
        # SimpleTuner defaults min_frames to num_frames: a clip shorter than a training clip is unusable.
        return self.min_frames if self.min_frames is not None else self.num_frames


class EditingMapping(_Model):
    """Map a public instruction-editing dataset into the qflux editing schema."""

    control_columns: list[str] = Field(min_length=1)
    target_column: str
    mask_column: str | None = None
    prompt_column: str | None = Field(default=None, description="Defaults to the backend's captions.")
    id_column: str | None = Field(default=None, description="Defaults to the source row index.")

    @field_validator("control_columns", mode="before")
    @classmethod
    def _one_control_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class _BackendBase(_Model):
    id: str = Field(min_length=1)
    dataset_type: DatasetType = "image"
    probability: float = Field(default=1.0, ge=0, description="Share of this backend in a mixed dataset.")
    resolution: float | None = Field(
        default=None, gt=0, description="Training size; a filter only with drop_below_resolution."
    )
    resolution_type: ResolutionType = Field(default="pixel_area", description="SimpleTuner's default.")
    minimum_image_size: float | None = Field(
        default=None, gt=0, description="Drop smaller images (units per resolution_type)."
    )
    drop_below_resolution: bool = Field(
        default=False, description="hubpress extension: also drop images smaller than `resolution`."
    )
    minimum_aspect_ratio: float | None = Field(default=None, gt=0)
    maximum_aspect_ratio: float | None = Field(default=None, gt=0)
    crop: bool = Field(
        default=False, description="Affects the refresh only with resolution_type area + square crop."
    )
    crop_aspect: str = "square"
    cache_dir: str | None = None

    @model_validator(mode="after")
    def _area_values_are_megapixels(self) -> _BackendBase:
        # SimpleTuner refuses an area minimum above 5 MP: it is almost surely a pixel edge by mistake.
        if (
            self.resolution_type == "area"
            and self.minimum_image_size is not None
            and self.minimum_image_size > 5
        ):
            raise ValueError(
                f"minimum_image_size={self.minimum_image_size} with resolution_type 'area' means megapixels; "
                "a value above 5 is almost surely a pixel edge: use resolution_type 'pixel' or 'pixel_area'"
            )
        return self

    def size_minimums(self) -> list[SizeMinimum]:
        """The size filters, in SimpleTuner's units converted to pixels."""
        out = []
        if self.minimum_image_size is not None:
            out.append(self._minimum("minimum_image_size", self.minimum_image_size))
        if self.drop_below_resolution and self.resolution is not None:
            out.append(self._minimum("resolution", self.resolution))
        return out

    def _minimum(self, name: str, value: float) -> SizeMinimum:
        if self.resolution_type == "pixel":
            return SizeMinimum(name, min_edge=math.ceil(value))
        # pixel_area: SimpleTuner turns an edge into megapixels as edge*edge/1e6, then compares areas.
        area_px = value * value if self.resolution_type == "pixel_area" else value * 1_000_000
        edge = math.floor(math.sqrt(area_px)) if self.crop and self.crop_aspect == "square" else None
        return SizeMinimum(name, min_area=area_px, min_edge=edge)


@dataclass(frozen=True)
class SizeMinimum:
    """One size filter: a minimum shorter edge and/or a minimum area, both in pixels."""

    name: str
    min_edge: int | None = None
    min_area: float | None = None

    def passes(self, width: int, height: int) -> bool:
        if self.min_edge is not None and min(width, height) < self.min_edge:
            return False
        return not (self.min_area is not None and width * height < self.min_area)


class HuggingfaceBackend(_BackendBase):
    """A Hub dataset, read with `datasets`."""

    type: Literal["huggingface"] = "huggingface"
    dataset_name: str = Field(min_length=1)
    dataset_config: str | None = Field(default=None, description="The dataset's config (subset) name.")
    data_files: str | list[str] | dict[str, str | list[str]] | None = None
    split: str = "train"
    revision: str | None = None
    image_column: str = "image"
    video_column: str = "video"
    audio_column: str = "audio"
    caption_column: str | list[str] | None = Field(
        default=None, description="A column, a list of columns, or a dotted path (metadata.caption)."
    )
    fallback_caption_column: str | None = None
    description_column: str | None = Field(
        default=None, description="Last caption source; SimpleTuner tries 'description'."
    )
    width_column: str | None = None
    height_column: str | None = None
    num_frames_column: str | None = None
    fps_column: str | None = None
    streaming: bool = False
    num_proc: int | None = Field(default=None, ge=1, description="Processes for load_dataset's preparation.")
    filter_func: FilterFunc = Field(default_factory=FilterFunc)
    composite_image_config: CompositeImageConfig = Field(default_factory=CompositeImageConfig)
    video: VideoConfig = Field(default_factory=VideoConfig)
    audio_caption_fields: list[str] = Field(default_factory=lambda: ["prompt", "tags"])
    lyrics_column: str = "lyrics"
    editing: EditingMapping | None = None

    @field_validator("caption_column")
    @classmethod
    def _caption_columns_not_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("caption_column is an empty list")
        return value

    @property
    def media_column(self) -> str:
        return {"image": self.image_column, "video": self.video_column, "audio": self.audio_column}[
            self.dataset_type
        ]

    @property
    def virtual_extension(self) -> str:
        return VIRTUAL_EXTENSIONS[self.dataset_type]


class LocalBackend(_BackendBase):
    """A folder of images; captions from `<stem>.txt` beside each image, else from the file name."""

    type: Literal["local"] = "local"
    instance_data_dir: str = Field(min_length=1)
    caption_source: Literal["textfile_or_filename", "textfile", "filename"] = Field(
        default="textfile_or_filename", description="hubpress: where a local image's caption comes from."
    )

    @property
    def virtual_extension(self) -> str:
        return "jpg"


Backend = Annotated[HuggingfaceBackend | LocalBackend, Field(discriminator="type")]


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

    def backend(self, backend_id: str) -> HuggingfaceBackend | LocalBackend:
        for backend in self.backends:
            if backend.id == backend_id:
                return backend
        raise ConfigError(f"No backend with id {backend_id!r}; ids are {[b.id for b in self.backends]}")

    def probabilities(self) -> dict[str, float]:
        return {b.id: b.probability for b in self.backends}


# ---------------------------------------------------------------------------------------------
# Parsing


_NESTED_MODELS: dict[str, type[BaseModel]] = {
    "filter_func": FilterFunc,
    "composite_image_config": CompositeImageConfig,
    "video": VideoConfig,
    "editing": EditingMapping,
}
_BLOCKS = ("huggingface", "config")
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
    merged, _ = _flatten(raw, backend_id)
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


def parse_refresh_config(source: str | Path | Mapping[str, Any] | list[Any]) -> RefreshConfig:
    """Read a multidatabackend JSON file (path or text) or an already-parsed object/list."""
    data: Any = source
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(("{", "["))):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"Refresh configuration {str(path)!r} does not exist or is not a file")
        text = path.read_text(encoding="utf-8")
        origin = str(path)
    elif isinstance(source, str):
        text, origin = source, "the configuration text"
    else:
        text, origin = None, "the configuration"
    if text is not None:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{origin} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
    entries = [data] if isinstance(data, Mapping) else data
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{origin} must hold a backend object or a non-empty list of them")
    config = RefreshConfig(backends=[])
    for position, raw in enumerate(entries):
        backend = parse_backend(raw, config, position)
        if backend is not None:
            config.backends.append(backend)
    if not config.backends:
        raise ConfigError(f"{origin} holds no data backend (every entry was skipped or disabled)")
    ids = [b.id for b in config.backends]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"backend ids must be unique; repeated: {duplicates}")
    if len(config.backends) > 1 and sum(b.probability for b in config.backends) <= 0:
        raise ConfigError("every backend has probability 0: nothing could be mixed")
    return config
