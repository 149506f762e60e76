"""The refresh's backend models: one SimpleTuner multidatabackend entry, as a pydantic model.

Options that only steer training (cropping, caches, repeats, text embeds...) are listed here so
that the parser (hubpress.refresh.config) can accept them and say they do not affect the refresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    # Bounded, so a sum of probabilities stays finite (1e308 + 1e308 is infinity).
    probability: float = Field(
        default=1.0,
        ge=0,
        le=1e6,
        allow_inf_nan=False,
        description="Share of this backend in a mixed dataset.",
    )
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

    @field_validator("id")
    @classmethod
    def _id_names_a_cache_folder(cls, value: str) -> str:
        # The id names the backend's metadata cache folder: the name gate keeps it inside cache_dir.
        from hubpress.storage.names import UnsafeNameError, relpath

        try:
            return relpath(value, what="backend id")
        except UnsafeNameError as exc:
            raise ValueError(str(exc)) from None

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
