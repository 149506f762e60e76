"""The refresh configuration: SimpleTuner's multidatabackend JSON, every example of its HF document."""

from __future__ import annotations

import json

import pytest

from hubpress.errors import ConfigError
from hubpress.refresh.config import HuggingfaceBackend, LocalBackend, parse_refresh_config

BASIC = {
    "id": "my-hf-dataset",
    "type": "huggingface",
    "dataset_name": "username/dataset-name",
    "split": "train",
    "caption_strategy": "huggingface",
    "metadata_backend": "huggingface",
    "caption_column": "text",
    "image_column": "image",
    "cache_dir": "cache/my-hf-dataset",
}

HIGH_QUALITY_ART = {
    "id": "high-quality-art",
    "type": "huggingface",
    "dataset_name": "example/art-dataset",
    "caption_strategy": "huggingface",
    "metadata_backend": "huggingface",
    "huggingface": {
        "caption_column": ["title", "description", "tags"],
        "fallback_caption_column": "filename",
        "width_column": "original_width",
        "height_column": "original_height",
        "filter_func": {
            "quality_thresholds": {"aesthetic_score": 6.0, "technical_quality": 0.8},
            "min_width": 768,
            "min_height": 768,
        },
    },
    "resolution": 1024,
    "resolution_type": "pixel_area",
    "crop": True,
    "crop_aspect": "square",
}

VIDEO = {
    "id": "video-dataset",
    "type": "huggingface",
    "dataset_type": "video",
    "dataset_name": "example/video-clips",
    "caption_strategy": "huggingface",
    "metadata_backend": "huggingface",
    "huggingface": {"caption_column": "description", "num_frames_column": "frame_count", "fps_column": "fps"},
    "video": {"num_frames": 125, "min_frames": 100},
    "resolution": 480,
    "resolution_type": "pixel",
}

AUDIO = {
    "id": "audio-dataset",
    "type": "huggingface",
    "dataset_type": "audio",
    "dataset_name": "my-audio-data",
    "audio_column": "audio",
    "config": {"audio_caption_fields": ["tags"], "lyrics_column": "lyrics"},
}

MIXED = [
    {"id": "hf-dataset", "type": "huggingface", "dataset_name": "laion/laion-art", "probability": 0.7},
    {"id": "local-dataset", "type": "local", "instance_data_dir": "/path/to/local/data", "probability": 0.3},
]


def one(raw) -> HuggingfaceBackend:
    config = parse_refresh_config(raw)
    assert len(config.backends) == 1
    return config.backends[0]


def test_basic_example_defaults_and_training_only_keys(tmp_path):
    path = tmp_path / "multidatabackend.json"
    path.write_text(json.dumps(BASIC))
    config = parse_refresh_config(path)
    backend = config.backends[0]
    assert (backend.dataset_name, backend.split, backend.caption_column, backend.image_column) == (
        "username/dataset-name",
        "train",
        "text",
        "image",
    )
    assert backend.cache_dir == "cache/my-hf-dataset"
    assert backend.streaming is False and backend.revision is None
    assert config.not_affecting["my-hf-dataset"] == ["caption_strategy", "metadata_backend"]
    assert config.warnings == []


def test_defaults_when_not_given():
    backend = one({"id": "x", "type": "huggingface", "dataset_name": "a/b"})
    assert backend.split == "train" and backend.image_column == "image"
    assert backend.audio_caption_fields == ["prompt", "tags"] and backend.lyrics_column == "lyrics"
    assert backend.resolution_type == "pixel_area"  # SimpleTuner's default
    assert backend.filter_func.quality_column == "quality_assessment"
    assert backend.filter_func.collection_column == "collection"


def test_high_quality_art_example_reads_the_huggingface_block():
    config = parse_refresh_config(HIGH_QUALITY_ART)
    backend = config.backends[0]
    assert backend.caption_column == ["title", "description", "tags"]
    assert backend.fallback_caption_column == "filename"
    assert (backend.width_column, backend.height_column) == ("original_width", "original_height")
    assert backend.filter_func.quality_thresholds == {"aesthetic_score": 6.0, "technical_quality": 0.8}
    assert (backend.filter_func.min_width, backend.filter_func.min_height) == (768, 768)
    # resolution is a training size here; with no minimum_image_size, resolution_type and crop don't filter.
    assert set(config.not_affecting["high-quality-art"]) >= {
        "crop",
        "crop_aspect",
        "resolution",
        "resolution_type",
    }


def test_video_example_keeps_its_frame_settings_and_warns_about_min_below_num():
    config = parse_refresh_config(VIDEO)
    backend = config.backends[0]
    assert backend.dataset_type == "video" and backend.virtual_extension == "mp4"
    assert (backend.num_frames_column, backend.fps_column) == ("frame_count", "fps")
    assert (backend.video.num_frames, backend.video.min_frames, backend.video.effective_min_frames) == (
        125,
        100,
        100,
    )
    assert any(n.key == "video.min_frames" for n in config.warnings)


def test_video_min_frames_defaults_to_num_frames():
    backend = one({**VIDEO, "video": {"num_frames": 50}})
    assert backend.video.effective_min_frames == 50


def test_audio_example_reads_the_config_block():
    backend = one(AUDIO)
    assert backend.dataset_type == "audio" and backend.virtual_extension == "wav"
    assert backend.audio_caption_fields == ["tags"] and backend.lyrics_column == "lyrics"
    assert backend.media_column == "audio"


def test_mixed_example_huggingface_and_local():
    config = parse_refresh_config(MIXED)
    hf, local = config.backends
    assert isinstance(hf, HuggingfaceBackend) and isinstance(local, LocalBackend)
    assert config.probabilities() == {"hf-dataset": 0.7, "local-dataset": 0.3}
    assert local.instance_data_dir == "/path/to/local/data"


@pytest.mark.parametrize(
    "snippet",
    [
        {"caption_column": "caption"},
        {"caption_column": ["short_caption", "detailed_caption", "tags"]},
        {"caption_column": "metadata.caption", "fallback_caption_column": "basic_caption"},
        {
            "huggingface": {
                "caption_column": "caption",
                "fallback_caption_column": "description",
                "description_column": "detailed_description",
                "width_column": "width",
                "height_column": "height",
            }
        },
        {
            "huggingface": {
                "filter_func": {
                    "quality_thresholds": {"clip_score": 0.3, "aesthetic_score": 5.0, "resolution": 0.8},
                    "quality_column": "quality_assessment",
                }
            }
        },
        {
            "huggingface": {
                "filter_func": {"collection": ["photo", "artwork"], "min_width": 512, "min_height": 512}
            }
        },
        {"huggingface": {"composite_image_config": {"enabled": True, "image_count": 4, "select_index": 0}}},
        {"streaming": True, "num_proc": 4, "revision": "v1.0"},
    ],
)
def test_every_document_snippet_parses_without_warnings(snippet):
    config = parse_refresh_config({"id": "x", "type": "huggingface", "dataset_name": "a/b", **snippet})
    assert config.warnings == []


def test_option_is_the_same_wherever_it_sits():
    top = one(
        {"id": "x", "type": "huggingface", "dataset_name": "a/b", "caption_column": "c", "lyrics_column": "l"}
    )
    block = one(
        {
            "id": "x",
            "type": "huggingface",
            "dataset_name": "a/b",
            "huggingface": {"caption_column": "c"},
            "config": {"lyrics_column": "l"},
        }
    )
    assert top == block


def test_same_option_with_different_values_in_two_places_is_an_error():
    raw = {
        "id": "x",
        "type": "huggingface",
        "dataset_name": "a/b",
        "caption_column": "a",
        "huggingface": {"caption_column": "b"},
    }
    with pytest.raises(
        ConfigError, match=r"'caption_column' is 'a' at top level but 'b' in the 'huggingface' block"
    ):
        parse_refresh_config(raw)
    same = {**raw, "huggingface": {"caption_column": "a"}}
    assert one(same).caption_column == "a"


def test_unknown_key_warns_with_the_nearest_known_key():
    config = parse_refresh_config(
        {
            "id": "x",
            "type": "huggingface",
            "dataset_name": "a/b",
            "caption_colum": "c",
            "huggingface": {"filter_func": {"min_widht": 3}},
        }
    )
    messages = [n.message for n in config.warnings]
    assert any("'caption_colum'" in m and "did you mean 'caption_column'" in m for m in messages)
    assert any("filter_func.min_widht" in m and "did you mean 'min_width'" in m for m in messages)


def test_unsupported_type_names_the_supported_ones():
    with pytest.raises(ConfigError, match=r"type 'aws' is not supported.*'huggingface', 'local'"):
        parse_refresh_config({"id": "s3", "type": "aws", "aws_bucket_name": "b"})


def test_cache_backends_are_skipped_not_rejected():
    config = parse_refresh_config(
        [
            BASIC,
            {"id": "te", "type": "local", "dataset_type": "text_embeds", "default": True, "cache_dir": "c"},
        ]
    )
    assert [b.id for b in config.backends] == ["my-hf-dataset"]
    assert config.skipped[0].backend_id == "te"


def test_select_index_out_of_range_is_an_error_before_any_work():
    raw = {
        "id": "x",
        "type": "huggingface",
        "dataset_name": "a/b",
        "composite_image_config": {"enabled": True, "image_count": 4, "select_index": 4},
    }
    with pytest.raises(
        ConfigError, match=r"select_index=4 is out of range for image_count=4 \(valid: 0..3\)"
    ):
        parse_refresh_config(raw)


def test_grid_rows_must_divide_image_count():
    raw = {
        "id": "x",
        "type": "huggingface",
        "dataset_name": "a/b",
        "composite_image_config": {"enabled": True, "image_count": 6, "rows": 4},
    }
    with pytest.raises(ConfigError, match="not divisible by rows=4"):
        parse_refresh_config(raw)
    grid = one(
        {**raw, "composite_image_config": {"enabled": True, "image_count": 6, "rows": 2, "select_index": 4}}
    )
    assert grid.composite_image_config.columns == 3


def test_bad_values_are_one_line_errors():
    with pytest.raises(ConfigError) as err:
        parse_refresh_config(
            {"id": "x", "type": "huggingface", "dataset_name": "a/b", "filter_func": {"min_width": "wide"}}
        )
    assert "\n" not in str(err.value) and "filter_func.min_width" in str(err.value)
    with pytest.raises(ConfigError, match="dataset_name"):
        parse_refresh_config({"id": "x", "type": "huggingface"})


def test_files_that_are_not_configurations(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        parse_refresh_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_refresh_config(bad)
    with pytest.raises(ConfigError, match="unique"):
        parse_refresh_config([BASIC, BASIC])


@pytest.mark.parametrize(
    ("resolution_type", "minimum", "crop", "passing", "failing"),
    [
        # pixel: the shorter edge in pixels (both edges >= minimum)
        ("pixel", 512, False, (512, 900), (511, 4000)),
        # area: megapixels
        ("area", 0.25, False, (250, 1000), (499, 500)),
        # area + square crop: also an edge of floor(sqrt(area)) pixels, as SimpleTuner checks
        ("area", 0.25, True, (500, 500), (250, 1000)),
        # pixel_area: a pixel edge converted to an area (px * px)
        ("pixel_area", 512, False, (256, 1024), (511, 512)),
    ],
)
def test_minimum_image_size_units_follow_resolution_type(resolution_type, minimum, crop, passing, failing):
    backend = one(
        {
            "id": "x",
            "type": "huggingface",
            "dataset_name": "a/b",
            "resolution_type": resolution_type,
            "minimum_image_size": minimum,
            "crop": crop,
        }
    )
    (rule,) = backend.size_minimums()
    assert rule.passes(*passing)
    assert not rule.passes(*failing)


def test_area_minimum_above_five_megapixels_is_refused_like_simpletuner():
    with pytest.raises(ConfigError, match="megapixels"):
        parse_refresh_config(
            {
                "id": "x",
                "type": "huggingface",
                "dataset_name": "a/b",
                "resolution_type": "area",
                "minimum_image_size": 512,
            }
        )


def test_resolution_filters_only_when_asked():
    base = {
        "id": "x",
        "type": "huggingface",
        "dataset_name": "a/b",
        "resolution": 1024,
        "resolution_type": "pixel",
    }
    assert one(base).size_minimums() == []
    (rule,) = one({**base, "drop_below_resolution": True}).size_minimums()
    assert rule.name == "resolution" and rule.min_edge == 1024


def test_models_render_a_json_schema_for_the_prefect_form():
    schema = HuggingfaceBackend.model_json_schema()
    assert "filter_func" in schema["properties"] and "composite_image_config" in schema["properties"]
