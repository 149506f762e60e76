"""Row semantics of the refresh: captions, filters, composites, output rows, report, index, mix."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from hubpress.errors import ConfigError
from hubpress.refresh.config import parse_refresh_config
from hubpress.refresh.mix import apply_plan, mix_plan
from hubpress.refresh.rows import (
    RefreshReport,
    caption_for,
    check_columns,
    fingerprint,
    header_size_fn,
    image_size_from_bytes,
    metadata_cache_dir,
    metadata_columns,
    passes_filters,
    process_rows,
    slice_composite,
    virtual_index,
)


def backend(**options):
    return parse_refresh_config(
        {"id": "t", "type": "huggingface", "dataset_name": "a/b", **options}
    ).backends[0]


def png(width: int, height: int, colours=None) -> bytes:
    img = Image.new("RGB", (width, height), (0, 0, 0))
    for i, colour in enumerate(colours or []):
        # paint equal vertical bands so slices can be recognised by colour
        band = width // len(colours)
        img.paste(colour, (i * band, 0, (i + 1) * band, height))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


class NeverCalled:
    def __call__(self, row):
        raise AssertionError("the image header must not be read for this row")


# ---------------------------------------------------------------------------------------------
# Captions


def test_single_caption_column():
    assert caption_for({"text": "  a cat  "}, backend(caption_column="text")) == ["a cat"]


def test_list_of_caption_columns_drops_empty_values():
    cfg = backend(caption_column=["short", "long", "tags"])
    assert caption_for({"short": "cat", "long": "", "tags": None}, cfg) == ["cat"]
    assert caption_for({"short": "cat", "long": "a black cat", "tags": ["pet", "", "black"]}, cfg) == [
        "cat",
        "a black cat",
        "pet, black",
    ]


def test_nested_path_walks_dicts_then_fallback_then_description():
    cfg = backend(
        caption_column="metadata.caption", fallback_caption_column="basic", description_column="desc"
    )
    assert caption_for({"metadata": {"caption": "nested"}, "basic": "b"}, cfg) == ["nested"]
    assert caption_for({"metadata": {"other": 1}, "basic": "fallback"}, cfg) == ["fallback"]
    assert caption_for({"metadata": None, "basic": " ", "desc": "described"}, cfg) == ["described"]
    assert caption_for(
        {"metadata": None, "basic": None, "desc": {"main_subject": "cat", "text": "on a mat"}}, cfg
    ) == ["cat on a mat"]
    assert caption_for({"metadata": None, "basic": None, "desc": None}, cfg) is None


def test_default_caption_and_description_columns_are_simpletuners():
    cfg = backend()
    assert caption_for({"caption": "c"}, cfg) == ["c"]
    assert caption_for({"description": "d"}, cfg) == ["d"]


def test_audio_captions_and_lyrics_with_norm_lyrics_fallback():
    cfg = backend(dataset_type="audio", config={"audio_caption_fields": ["prompt", "tags"]})
    row = {"prompt": "lofi beat", "tags": "chill, piano", "norm_lyrics": "la la"}
    assert caption_for(row, cfg) == ["lofi beat chill, piano"]
    out = list(
        process_rows([(0, {**row, "audio": {"bytes": b"RIFF", "path": "a.wav"}})], cfg, RefreshReport("t"))
    )
    assert out[0]["lyrics"] == "la la" and out[0]["captions"] == ["lofi beat chill, piano"]
    out = list(
        process_rows(
            [(0, {**row, "lyrics": "own", "audio": {"bytes": b"RIFF", "path": None}})],
            cfg,
            RefreshReport("t"),
        )
    )
    assert out[0]["lyrics"] == "own"


def test_row_without_caption_is_reported_and_left_out():
    cfg = backend(caption_column="text")
    report = RefreshReport("t")
    rows = [
        (0, {"text": "ok", "image": {"bytes": png(4, 4), "path": None}}),
        (1, {"text": "", "image": {"bytes": png(4, 4), "path": None}}),
    ]
    out = list(process_rows(rows, cfg, report))
    assert [r["source_index"] for r in out] == [0]
    assert report.dropped == {"no_caption": 1} and report.examples["no_caption"] == [1]


# ---------------------------------------------------------------------------------------------
# Filters


QUALITY = {
    "filter_func": {"quality_thresholds": {"clip_score": 0.3, "aesthetic_score": 5.0}, "quality_column": "qa"}
}


def test_quality_passes_at_or_above_threshold():
    cfg = backend(**QUALITY)
    assert passes_filters({"qa": {"clip_score": 0.3, "aesthetic_score": 5.0}}, cfg, NeverCalled()) == (
        True,
        [],
    )
    assert passes_filters({"qa": {"clip_score": 0.29, "aesthetic_score": 9}}, cfg, NeverCalled()) == (
        False,
        ["quality.clip_score"],
    )


def test_missing_quality_column_or_metric_fails_that_filter():
    cfg = backend(**QUALITY)
    assert passes_filters({"qa": {"clip_score": 0.9}}, cfg, NeverCalled()) == (
        False,
        ["quality.aesthetic_score"],
    )
    assert passes_filters({"qa": None}, cfg, NeverCalled()) == (
        False,
        ["quality.clip_score", "quality.aesthetic_score"],
    )
    assert passes_filters({}, cfg, NeverCalled())[0] is False


def test_report_counts_each_failing_filter():
    cfg = backend(caption_column="c", **QUALITY)
    report = RefreshReport("t")
    rows = [
        (
            0,
            {
                "c": "x",
                "qa": {"clip_score": 0.9, "aesthetic_score": 9},
                "image": {"bytes": png(2, 2), "path": None},
            },
        ),
        (1, {"c": "x", "qa": None, "image": None}),
        (2, {"c": "x", "qa": {"clip_score": 0.1, "aesthetic_score": 9}, "image": None}),
    ]
    assert len(list(process_rows(rows, cfg, report))) == 1
    assert report.kept == 1 and report.seen == 3
    assert report.filter_failures == {"quality.clip_score": 2, "quality.aesthetic_score": 1}
    assert report.dropped == {"quality.clip_score": 2}
    assert "quality.clip_score" in report.to_markdown()


def test_collection_matches_any_listed_value_using_the_collection_column():
    cfg = backend(filter_func={"collection": ["photo", "artwork"]})
    assert passes_filters({"collection": "artwork"}, cfg, NeverCalled())[0]
    assert passes_filters({"collection": "meme"}, cfg, NeverCalled()) == (False, ["collection"])
    assert passes_filters({}, cfg, NeverCalled()) == (False, ["collection"])
    custom = backend(filter_func={"collection": "photo", "collection_column": "subset"})
    assert passes_filters({"subset": "photo"}, custom, NeverCalled())[0]


def test_min_size_uses_columns_when_configured_without_reading_the_image():
    cfg = backend(width_column="w", height_column="h", filter_func={"min_width": 512, "min_height": 256})
    assert passes_filters({"w": 512, "h": 256}, cfg, NeverCalled()) == (True, [])
    assert passes_filters({"w": 511, "h": 255}, cfg, NeverCalled()) == (False, ["min_width", "min_height"])


def test_min_size_reads_the_image_header_otherwise():
    cfg = backend(filter_func={"min_width": 32})
    size_fn = header_size_fn("image")
    assert passes_filters({"image": {"bytes": png(32, 8), "path": None}}, cfg, size_fn) == (True, [])
    assert passes_filters({"image": {"bytes": png(31, 8), "path": None}}, cfg, size_fn) == (
        False,
        ["min_width"],
    )
    assert passes_filters({"image": {"bytes": b"not an image", "path": None}}, cfg, size_fn) == (
        False,
        ["size_unknown"],
    )
    # deferred: without a size function the header check waits for the second phase
    assert passes_filters({"image": None}, cfg, None) == (True, [])


def test_header_is_read_without_decoding_pixels():
    # A PNG whose header claims 9000x9000 RGB (243 MB decoded) and whose pixel data is 4 junk
    # bytes: its size can only come from the header, and decoding it would fail.
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0)
    header_only = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"junk")
    assert image_size_from_bytes({"bytes": header_only, "path": None}) == (9000, 9000)


def test_metadata_filters_run_before_the_header_is_read():
    cfg = backend(filter_func={"collection": ["photo"], "min_width": 8})
    assert passes_filters({"collection": "meme"}, cfg, NeverCalled()) == (False, ["collection"])


def test_minimum_image_size_and_aspect_ratio_filters():
    cfg = backend(
        width_column="w",
        height_column="h",
        resolution_type="pixel",
        minimum_image_size=512,
        maximum_aspect_ratio=2.0,
    )
    assert passes_filters({"w": 512, "h": 1000}, cfg, None)[0]
    assert passes_filters({"w": 2000, "h": 500}, cfg, None) == (
        False,
        ["minimum_image_size", "maximum_aspect_ratio"],
    )


def test_video_frame_filters_read_the_frame_column():
    cfg = backend(
        dataset_type="video",
        num_frames_column="frames",
        fps_column="fps",
        video={"num_frames": 125, "min_frames": 100, "max_frames": 300},
    )
    assert passes_filters({"frames": 100}, cfg, None) == (True, [])
    assert passes_filters({"frames": 99}, cfg, None) == (False, ["video.min_frames"])
    assert passes_filters({"frames": 301}, cfg, None) == (False, ["video.max_frames"])
    assert passes_filters({"frames": None}, cfg, None) == (False, ["video.min_frames", "video.max_frames"])


# ---------------------------------------------------------------------------------------------
# Columns


def test_a_missing_column_is_a_configuration_error_listing_the_columns():
    cfg = backend(caption_column="text", filter_func={"quality_thresholds": {"a": 1}})
    with pytest.raises(
        ConfigError, match=r"filter_func.quality_column='quality_assessment' not found.*\['image', 'text'\]"
    ):
        check_columns(cfg, ["image", "text"])
    check_columns(cfg, ["image", "text", "quality_assessment"])
    with pytest.raises(ConfigError, match="image_column='image' not found"):
        check_columns(backend(caption_column="text"), ["img", "text"])


def test_no_caption_source_is_a_configuration_error():
    with pytest.raises(ConfigError, match="no caption column"):
        check_columns(backend(), ["image", "label"])
    check_columns(backend(caption_column="metadata.caption"), ["image", "metadata"])


def test_collection_column_must_exist():
    with pytest.raises(ConfigError, match="collection_column='collection'"):
        check_columns(backend(filter_func={"collection": ["x"]}), ["image", "caption"])


def test_lyrics_column_may_fall_back_to_norm_lyrics():
    cfg = backend(dataset_type="audio", config={"lyrics_column": "lyrics"})
    check_columns(cfg, ["audio", "prompt", "norm_lyrics"])
    with pytest.raises(ConfigError, match="lyrics_column"):
        check_columns(cfg, ["audio", "prompt"])


def test_video_frame_filters_need_a_frame_column():
    with pytest.raises(ConfigError, match="num_frames_column"):
        check_columns(
            backend(dataset_type="video", caption_column="d", video={"num_frames": 10}), ["video", "d"]
        )


def test_metadata_columns_leave_out_media():
    cfg = backend(caption_column=["a.b", "c"], width_column="w", height_column="h", **QUALITY)
    assert metadata_columns(cfg, ["image", "a", "c", "w", "h", "qa", "other"]) == ["a", "c", "w", "h", "qa"]


# ---------------------------------------------------------------------------------------------
# Composite images


RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def test_slice_selects_one_of_equal_horizontal_slices():
    strip = png(40, 10, [RED, GREEN, BLUE, WHITE])
    cfg = backend(composite_image_config={"enabled": True, "image_count": 4, "select_index": 2})
    data, w, h = slice_composite(strip, cfg)
    assert (w, h) == (10, 10)
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (10, 10) and img.convert("RGB").getpixel((5, 5)) == BLUE


def test_grid_slices_row_major():
    grid = Image.new("RGB", (30, 20))
    colours = [RED, GREEN, BLUE, WHITE, (9, 9, 9), (7, 7, 7)]
    for i, colour in enumerate(colours):
        r, c = divmod(i, 3)
        grid.paste(colour, (c * 10, r * 10, (c + 1) * 10, (r + 1) * 10))
    buf = io.BytesIO()
    grid.save(buf, format="PNG")
    cfg = backend(composite_image_config={"enabled": True, "image_count": 6, "rows": 2, "select_index": 4})
    data, w, h = slice_composite(buf.getvalue(), cfg)
    with Image.open(io.BytesIO(data)) as img:
        assert (w, h) == (10, 10) and img.getpixel((1, 1)) == (9, 9, 9)


def test_composite_output_row_reports_the_slice_size_and_filters_on_it():
    cfg = backend(
        caption_column="c",
        composite_image_config={"enabled": True, "image_count": 4, "select_index": 1},
        filter_func={"min_width": 10},
    )
    report = RefreshReport("t")
    rows = [
        (0, {"c": "x", "image": {"bytes": png(40, 10, [RED, GREEN, BLUE, WHITE]), "path": None}}),
        (1, {"c": "y", "image": {"bytes": png(36, 10), "path": None}}),
    ]
    out = list(process_rows(rows, cfg, report))
    assert [(r["source_index"], r["width"], r["height"]) for r in out] == [(0, 10, 10)]
    assert report.dropped == {"min_width": 1}


# ---------------------------------------------------------------------------------------------
# Output rows


def test_output_row_fields_for_images():
    cfg = backend(caption_column=["a", "b"])
    image = {"bytes": png(6, 3), "path": "x.png"}
    (row,) = process_rows([(7, {"a": "one", "b": "two", "image": image})], cfg, RefreshReport("t"))
    assert row == {"image": image, "captions": ["one", "two"], "width": 6, "height": 3, "source_index": 7}


def test_output_row_fields_for_video():
    cfg = backend(
        dataset_type="video",
        caption_column="d",
        num_frames_column="n",
        fps_column="fps",
        width_column="w",
        height_column="h",
    )
    (row,) = process_rows(
        [
            (
                0,
                {
                    "d": "clip",
                    "n": 120,
                    "fps": 24,
                    "w": 640,
                    "h": 480,
                    "video": {"bytes": b"mp4", "path": "v.mp4"},
                },
            )
        ],
        cfg,
        RefreshReport("t"),
    )
    assert row["video"] == {"bytes": b"mp4", "path": "v.mp4"}
    assert (row["num_frames"], row["fps"], row["width"], row["height"]) == (120, 24.0, 640, 480)


def test_unreadable_image_is_reported_not_raised():
    cfg = backend(caption_column="c")
    report = RefreshReport("t")
    assert list(process_rows([(0, {"c": "x", "image": None})], cfg, report)) == []
    assert report.dropped == {"unreadable_image": 1}


def test_editing_mapping_gives_the_qflux_schema():
    cfg = backend(
        editing={
            "control_columns": ["source"],
            "target_column": "edited",
            "mask_column": "mask",
            "prompt_column": "instruction",
        }
    )
    src, tgt, mask = ({"bytes": png(4, 4), "path": n} for n in ("s.png", "t.png", "m.png"))
    (row,) = process_rows(
        [(3, {"source": src, "edited": tgt, "mask": mask, "instruction": "make it red"})],
        cfg,
        RefreshReport("t"),
    )
    assert row == {
        "id": "00000003",
        "control_images": [src],
        "control_mask": mask,
        "target_image": tgt,
        "prompt": "make it red",
        "source_index": 3,
    }
    check_columns(cfg, ["source", "edited", "mask", "instruction"])


def test_an_empty_control_list_leaves_the_row_out_as_a_missing_control_does():
    # A control column may hold a list of images. An empty list in the first of two control
    # columns published the second column's image as the main control (the one the mask goes
    # with): a missing control, as a None is, leaves the row out.
    cfg = backend(
        editing={"control_columns": ["first", "second"], "target_column": "edited", "mask_column": "mask"}
    )
    second, tgt, mask = ({"bytes": png(4, 4), "path": n} for n in ("b.png", "t.png", "m.png"))
    report = RefreshReport("t")
    rows = [(0, {"first": [], "second": [second], "edited": tgt, "mask": mask})]
    assert list(process_rows(rows, cfg, report)) == []
    assert report.dropped == {"unreadable_image": 1}


# ---------------------------------------------------------------------------------------------
# Index, fingerprint, mix


def test_virtual_index_maps_names_to_source_rows():
    assert virtual_index([4, 9, 10], "jpg") == {"0.jpg": 4, "1.jpg": 9, "2.jpg": 10}
    assert virtual_index([2], "wav") == {"0.wav": 2}


@pytest.mark.parametrize(
    "change",
    [
        {"dataset_name": "a/c"},
        {"split": "test"},
        {"caption_column": "other"},
        {"fallback_caption_column": "f"},
        {"filter_func": {"min_width": 5}},
        {"filter_func": {"quality_thresholds": {"x": 1}}},
        {"composite_image_config": {"enabled": True, "image_count": 2}},
        {"minimum_image_size": 64},
    ],
)
def test_fingerprint_changes_with_anything_that_decides_rows(change):
    base = backend(caption_column="text")
    assert fingerprint(base, "sha1") == fingerprint(
        backend(caption_column="text", streaming=True, num_proc=2), "sha1"
    )
    assert fingerprint(base, "sha1") != fingerprint(base, "sha2")
    assert fingerprint(base, "sha1") != fingerprint(backend(**{"caption_column": "text", **change}), "sha1")


def test_metadata_cache_dir_layout(tmp_path):
    assert (
        metadata_cache_dir(backend(cache_dir=str(tmp_path)), "/x") == tmp_path / "huggingface_metadata" / "t"
    )


def test_mix_is_deterministic_given_a_seed_and_follows_probabilities():
    sizes, probs = {"hf": 7000, "local": 3000}, {"hf": 0.7, "local": 0.3}
    plan = mix_plan(sizes, probs, seed=42)
    assert plan == mix_plan(sizes, probs, seed=42)
    assert plan != mix_plan(sizes, probs, seed=43)
    share = sum(1 for b, _ in plan if b == "hf") / len(plan)
    assert 0.65 < share < 0.75
    # each backend's rows are taken in order, none twice
    for name in sizes:
        positions = [i for b, i in plan if b == name]
        assert positions == list(range(len(positions)))


def test_mix_all_exhausted_sees_every_row():
    plan = mix_plan({"a": 5, "b": 50}, {"a": 0.5, "b": 0.5}, seed=1, stopping="all_exhausted")
    assert {i for b, i in plan if b == "a"} == set(range(5)) and {i for b, i in plan if b == "b"} == set(
        range(50)
    )


def test_apply_plan_tags_rows_with_their_backend():
    plan = mix_plan({"a": 2, "b": 2}, {"a": 1, "b": 1}, seed=0, stopping="all_exhausted")
    rows = apply_plan(plan, {"a": [{"v": 0}, {"v": 1}], "b": [{"v": 10}, {"v": 11}]})
    assert {(r["backend_id"], r["v"]) for r in rows} >= {("a", 0), ("b", 10)}


def test_mix_rejects_zero_probabilities():
    with pytest.raises(ConfigError):
        mix_plan({"a": 1}, {"a": 0}, seed=0)
