"""Reading upstream datasets from the project's Hub-protocol server with the real clients.

Small datasets are pushed with datasets' push_to_hub, then read through hubpress.refresh.upstream
exactly as a refresh reads the Hub: revision resolved to a sha, rows read at that sha.
"""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image as PILImage

from hubpress.errors import ConfigError, SourceError
from hubpress.refresh.config import parse_refresh_config
from hubpress.refresh.reading import output_features, read_backend, read_mixed
from hubpress.refresh.upstream import read_huggingface, resolve_revision
from tests.conftest import WRITE_TOKEN


def png(width: int, height: int, colour=(0, 0, 0)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


def push(rows: dict, features=None, private: bool = False) -> str:
    from datasets import Dataset

    name = f"alice/refresh-{uuid.uuid4().hex[:8]}"
    Dataset.from_dict(rows, features=features).push_to_hub(name, token=WRITE_TOKEN, private=private)
    return name


def backend(dataset_name: str, tmp_path, **options):
    raw = {
        "id": "up",
        "type": "huggingface",
        "dataset_name": dataset_name,
        "cache_dir": str(tmp_path / "cache"),
        **options,
    }
    return parse_refresh_config(raw).backends[0]


def read_all(cfg, **kwargs):
    read = read_huggingface(cfg, token=WRITE_TOKEN, **kwargs)
    return read, list(read.rows())


@pytest.fixture(scope="module")
def art_dataset(hub_server):
    """Nested captions, quality dicts, missing values, sizes in columns and in headers."""
    from datasets import Features, Image, Value

    features = Features(
        {
            "image": Image(),
            "metadata": {"caption": Value("string")},
            "basic_caption": Value("string"),
            "quality_assessment": {"clip_score": Value("float64"), "aesthetic_score": Value("float64")},
            "collection": Value("string"),
            "width": Value("int32"),
            "height": Value("int32"),
        }
    )
    rows = {
        "image": [{"bytes": png(16 + 8 * i, 16), "path": None} for i in range(6)],
        "metadata": [{"caption": c} for c in ["a red cat", None, "a dog", "", "a bird", "a fish"]],
        "basic_caption": ["b0", "b1", None, None, "b4", "b5"],
        "quality_assessment": [
            {"clip_score": 0.5, "aesthetic_score": 6.0},
            {"clip_score": 0.1, "aesthetic_score": 9.0},
            {"clip_score": 0.9, "aesthetic_score": 5.0},
            {"clip_score": 0.9, "aesthetic_score": 7.0},
            None,
            {"clip_score": 0.3, "aesthetic_score": None},
        ],
        "collection": ["photo", "artwork", "meme", "photo", "photo", "artwork"],
        "width": [16 + 8 * i for i in range(6)],
        "height": [16] * 6,
    }
    return push(rows, features)


def test_captions_with_nested_path_and_fallback(art_dataset, tmp_path):
    cfg = backend(
        art_dataset, tmp_path, caption_column="metadata.caption", fallback_caption_column="basic_caption"
    )
    read, rows = read_all(cfg)
    assert [r["captions"] for r in rows] == [["a red cat"], ["b1"], ["a dog"], ["a bird"], ["a fish"]]
    assert read.report.dropped == {"no_caption": 1} and read.report.examples["no_caption"] == [3]
    assert rows[0]["width"] == 16 and rows[0]["height"] == 16 and rows[0]["source_index"] == 0
    assert len(read.revision_sha) == 40
    assert read.index() == {"0.jpg": 0, "1.jpg": 1, "2.jpg": 2, "3.jpg": 4, "4.jpg": 5}


def test_quality_and_collection_filters(art_dataset, tmp_path):
    cfg = backend(
        art_dataset,
        tmp_path,
        caption_column="basic_caption",
        fallback_caption_column="metadata.caption",
        huggingface={
            "filter_func": {
                "quality_thresholds": {"clip_score": 0.3, "aesthetic_score": 5.0},
                "collection": ["photo", "meme", "artwork"],
            }
        },
    )
    read, rows = read_all(cfg)
    assert [r["source_index"] for r in rows] == [0, 2]
    # row 1: clip 0.1; row 4: no quality dict at all; row 5: no aesthetic score; row 3: no caption
    assert read.report.filter_failures == {
        "quality.clip_score": 2,
        "quality.aesthetic_score": 2,
        "no_caption": 1,
    }
    assert read.report.kept == 2 and read.report.seen == 6


def test_size_filters_from_columns_and_from_headers_agree(art_dataset, tmp_path):
    common = {"caption_column": "basic_caption", "fallback_caption_column": "metadata.caption"}
    by_columns = backend(
        art_dataset,
        tmp_path,
        width_column="width",
        height_column="height",
        filter_func={"min_width": 40},
        **common,
    )
    by_header = backend(art_dataset, tmp_path, filter_func={"min_width": 40}, **common)
    _, rows_a = read_all(by_columns)
    _, rows_b = read_all(by_header)
    assert [r["source_index"] for r in rows_a] == [r["source_index"] for r in rows_b] == [4, 5]


def test_streaming_equals_non_streaming(art_dataset, tmp_path):
    options = {
        "caption_column": "metadata.caption",
        "fallback_caption_column": "basic_caption",
        "filter_func": {"min_width": 24},
    }
    _, scanned = read_all(backend(art_dataset, tmp_path, **options))
    stream_read, streamed = read_all(backend(art_dataset, tmp_path, streaming=True, **options))
    assert streamed == scanned
    assert stream_read.report.dropped == {"min_width": 1, "no_caption": 1}


def test_streaming_reads_the_hub_parquet_files_one_row_group_at_a_time(hub, tmp_path):
    """ParquetStream gives exactly datasets' streaming rows (media undecoded), reads the files
    datasets resolves for the split, and never holds more than one row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features, Image, Value, load_dataset
    from huggingface_hub import HfApi

    from hubpress.refresh.parquet_stream import ParquetStream
    from hubpress.refresh.upstream import load_upstream

    features = Features({"image": Image(), "caption": Value("string"), "score": {"a": Value("float64")}})
    rows = [
        {"image": {"bytes": png(4 + i, 4), "path": f"{i}.png"}, "caption": f"c{i}", "score": {"a": i / 2}}
        for i in range(50)
    ]
    local = tmp_path / "train-00000-of-00001.parquet"
    # 10-row row groups, as the Hub's image datasets have small ones.
    pq.write_table(pa.Table.from_pylist(rows, schema=features.arrow_schema), local, row_group_size=10)
    name = f"alice/rg-{uuid.uuid4().hex[:8]}"
    api = HfApi(token=WRITE_TOKEN)
    api.create_repo(name, repo_type="dataset")
    api.upload_file(
        path_or_fileobj=str(local), path_in_repo=f"data/{local.name}", repo_id=name, repo_type="dataset"
    )
    cfg = backend(name, tmp_path, streaming=True, caption_column="caption")
    sha = resolve_revision(cfg, token=WRITE_TOKEN)

    stream = load_upstream(cfg, sha, WRITE_TOKEN)
    assert isinstance(stream, ParquetStream)
    assert [f.rsplit("/", 1)[-1] for f in stream.files] == [local.name] and f"@{sha}/" in stream.files[0]
    theirs = load_dataset(name, split="train", streaming=True, revision=sha, token=WRITE_TOKEN)
    theirs = theirs.cast_column("image", Image(decode=False))
    assert list(stream) == list(theirs) == rows
    assert list(stream.select_columns(["caption"]))[:2] == [{"caption": "c0"}, {"caption": "c1"}]

    # One row group at a time: the reader is asked for row groups singly, in order.
    asked = []
    real = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        asked.append((kwargs.get("row_groups"), kwargs.get("use_threads")))
        return real(self, *args, **kwargs)

    pq.ParquetFile.iter_batches = spy
    try:
        assert len(list(stream)) == 50
    finally:
        pq.ParquetFile.iter_batches = real
    assert asked == [([g], False) for g in range(5)]

    with pytest.raises(SourceError, match="Unknown split 'validation'.*'train'"):
        load_upstream(backend(name, tmp_path, streaming=True, split="validation"), sha, WRITE_TOKEN)


def test_first_phase_is_cached_under_the_fingerprint(art_dataset, tmp_path):
    cfg = backend(
        art_dataset, tmp_path, caption_column="metadata.caption", fallback_caption_column="basic_caption"
    )
    first, rows = read_all(cfg)
    cache = tmp_path / "cache" / "huggingface_metadata" / "up"
    assert len(list(cache.glob("refresh-*.json"))) == 1
    again, rows_again = read_all(cfg)
    assert rows_again == rows and again.report.to_dict() == first.report.to_dict()
    changed = backend(art_dataset, tmp_path, caption_column="basic_caption")
    read_all(changed)
    assert len(list(cache.glob("refresh-*.json"))) == 2


def test_missing_column_is_a_one_line_error_listing_columns(art_dataset, tmp_path):
    cfg = backend(art_dataset, tmp_path, caption_column="title")
    with pytest.raises(ConfigError, match=r"caption_column='title' not found.*'basic_caption'"):
        read_huggingface(cfg, token=WRITE_TOKEN)


def test_dataset_that_does_not_exist(hub, tmp_path):
    cfg = backend("alice/no-such-dataset", tmp_path, caption_column="c")
    with pytest.raises(SourceError, match=rf"Dataset 'alice/no-such-dataset' not found at {hub.url}") as err:
        resolve_revision(cfg, token=WRITE_TOKEN)
    assert "\n" not in str(err.value) and WRITE_TOKEN not in str(err.value)


def test_private_dataset_without_a_token(hub, tmp_path):
    name = push({"caption": ["x"], "image": [{"bytes": png(4, 4), "path": None}]}, private=True)
    cfg = backend(name, tmp_path)
    with pytest.raises(SourceError, match="token"):
        resolve_revision(cfg, token=None)
    assert len(resolve_revision(cfg, token=WRITE_TOKEN)) == 40


def test_bad_revision(art_dataset, tmp_path):
    cfg = backend(art_dataset, tmp_path, revision="no-such-branch", caption_column="basic_caption")
    with pytest.raises(SourceError, match="Revision 'no-such-branch' not found"):
        resolve_revision(cfg, token=WRITE_TOKEN)


def test_revision_pins_the_snapshot(hub, tmp_path):
    from huggingface_hub import HfApi

    name = push({"caption": ["one"], "image": [{"bytes": png(4, 4), "path": None}]})
    api = HfApi(token=WRITE_TOKEN)
    api.create_tag(name, tag="v1", repo_type="dataset")
    push_again = {"caption": ["one", "two"], "image": [{"bytes": png(4, 4), "path": None}] * 2}
    from datasets import Dataset

    Dataset.from_dict(push_again).push_to_hub(name, token=WRITE_TOKEN)
    _, rows_v1 = read_all(backend(name, tmp_path, revision="v1"))
    _, rows_main = read_all(backend(name, tmp_path))
    assert len(rows_v1) == 1 and len(rows_main) == 2


def test_composite_strips(hub, tmp_path):
    strip = PILImage.new("RGB", (40, 10))
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (9, 9, 9)]):
        strip.paste(colour, (i * 10, 0, (i + 1) * 10, 10))
    buf = io.BytesIO()
    strip.save(buf, format="PNG")
    name = push({"caption": ["strip"], "image": [{"bytes": buf.getvalue(), "path": None}]})
    cfg = backend(
        name,
        tmp_path,
        huggingface={"composite_image_config": {"enabled": True, "image_count": 4, "select_index": 1}},
    )
    _, (row,) = read_all(cfg)
    assert (row["width"], row["height"]) == (10, 10)
    with PILImage.open(io.BytesIO(row["image"]["bytes"])) as img:
        assert img.convert("RGB").getpixel((5, 5)) == (0, 255, 0)


def test_video_metadata_dataset(hub, tmp_path):
    from datasets import Features, Value, Video

    features = Features(
        {
            "video": Video(),
            "description": Value("string"),
            "frame_count": Value("int32"),
            "fps": Value("float32"),
        }
    )
    rows = {
        "video": [{"bytes": f"fake-mp4-{i}".encode(), "path": f"{i}.mp4"} for i in range(3)],
        "description": ["short", "long enough", "longest"],
        "frame_count": [90, 125, 200],
        "fps": [24.0, 30.0, 25.0],
    }
    name = push(rows, features)
    cfg = parse_refresh_config(
        {
            "id": "video-dataset",
            "type": "huggingface",
            "dataset_type": "video",
            "dataset_name": name,
            "cache_dir": str(tmp_path),
            "huggingface": {
                "caption_column": "description",
                "num_frames_column": "frame_count",
                "fps_column": "fps",
            },
            "video": {"num_frames": 125, "min_frames": 100},
        }
    ).backends[0]
    read, out = read_all(cfg)
    assert [(r["source_index"], r["num_frames"], r["fps"], r["captions"]) for r in out] == [
        (1, 125, 30.0, ["long enough"]),
        (2, 200, 25.0, ["longest"]),
    ]
    assert out[0]["video"]["bytes"] == b"fake-mp4-1"
    assert read.index() == {"0.mp4": 1, "1.mp4": 2}
    assert read.report.dropped == {"video.min_frames": 1}


def test_audio_metadata_dataset(hub, tmp_path):
    from datasets import Audio, Features, Value

    features = Features({"audio": Audio(), "tags": Value("string"), "norm_lyrics": Value("string")})
    rows = {
        "audio": [{"bytes": b"RIFF-fake-" + bytes([i]), "path": f"{i}.wav"} for i in range(2)],
        "tags": ["lofi, piano", None],
        "norm_lyrics": ["la la", "na na"],
    }
    name = push_audio(rows, features)
    cfg = parse_refresh_config(
        {
            "id": "audio-dataset",
            "type": "huggingface",
            "dataset_type": "audio",
            "dataset_name": name,
            "audio_column": "audio",
            "cache_dir": str(tmp_path),
            "config": {"audio_caption_fields": ["tags"], "lyrics_column": "lyrics"},
        }
    ).backends[0]
    read, out = read_all(cfg)
    assert [(r["source_index"], r["captions"], r["lyrics"]) for r in out] == [(0, ["lofi, piano"], "la la")]
    assert out[0]["audio"]["bytes"] == b"RIFF-fake-\x00"
    assert read.index() == {"0.wav": 0} and read.report.dropped == {"no_caption": 1}


def push_audio(rows: dict, features) -> str:
    """Audio(decode=...) encoding needs torchcodec: build as bytes/path structs, then cast."""
    from datasets import Dataset, Features, Value

    struct = Features(
        {
            k: ({"bytes": Value("binary"), "path": Value("string")} if k == "audio" else v)
            for k, v in features.items()
        }
    )
    name = f"alice/refresh-{uuid.uuid4().hex[:8]}"
    Dataset.from_dict(rows, features=struct).cast_column("audio", features["audio"]).push_to_hub(
        name, token=WRITE_TOKEN
    )
    return name


def test_editing_mapping_from_an_instruction_dataset(hub, tmp_path):
    from datasets import Features, Image, Value

    features = Features({"source_img": Image(), "edited_img": Image(), "edit_prompt": Value("string")})
    rows = {
        "source_img": [{"bytes": png(8, 8), "path": None}] * 2,
        "edited_img": [{"bytes": png(8, 8, (255, 0, 0)), "path": None}] * 2,
        "edit_prompt": ["make it red", ""],
    }
    name = push(rows, features)
    cfg = backend(
        name,
        tmp_path,
        editing={
            "control_columns": ["source_img"],
            "target_column": "edited_img",
            "prompt_column": "edit_prompt",
        },
    )
    read, out = read_all(cfg)
    # An empty prompt is kept as "", as publish-dataset keeps it (docs/refresh-semantics.md)
    assert [(r["id"], r["prompt"], len(r["control_images"])) for r in out] == [
        ("00000000", "make it red", 1),
        ("00000001", "", 1),
    ]
    assert read.report.dropped == {} and read.report.empty_prompts == 1
    from datasets import Dataset

    ds = Dataset.from_list(out, features=output_features(cfg))
    assert ds[0]["prompt"] == "make it red"


def test_mixing_hub_and_local_is_deterministic(art_dataset, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    for i in range(6):
        (local / f"a_local_photo_{i}.png").write_bytes(png(8, 8))
    (local / "a_local_photo_0.txt").write_text("captioned by a text file")
    config = parse_refresh_config(
        [
            {
                "id": "hf-dataset",
                "type": "huggingface",
                "dataset_name": art_dataset,
                "caption_column": "metadata.caption",
                "fallback_caption_column": "basic_caption",
                "cache_dir": str(tmp_path / "c"),
                "probability": 0.7,
            },
            {"id": "local-dataset", "type": "local", "instance_data_dir": str(local), "probability": 0.3},
        ]
    )
    first = read_mixed(config, seed=7, token=WRITE_TOKEN, stopping="all_exhausted")
    second = read_mixed(config, seed=7, token=WRITE_TOKEN, stopping="all_exhausted")
    order = [(r["backend_id"], r["source_index"]) for r in first.dataset]
    assert order == [(r["backend_id"], r["source_index"]) for r in second.dataset]
    assert {b for b, _ in order} == {"hf-dataset", "local-dataset"}
    local_rows = {
        r["source_index"]: r["captions"] for r in first.dataset if r["backend_id"] == "local-dataset"
    }
    assert local_rows[0] == ["captioned by a text file"] and local_rows[1] == ["a local photo 1"]
    assert first.reports["hf-dataset"].kept == 5 and first.indexes["local-dataset"]["0.jpg"] == 0


def test_local_backend_reads_a_folder(tmp_path):
    (tmp_path / "cat.png").write_bytes(png(8, 4))
    (tmp_path / "cat.txt").write_text("a cat\n")
    cfg = parse_refresh_config({"id": "l", "type": "local", "instance_data_dir": str(tmp_path)}).backends[0]
    (row,) = read_backend(cfg).rows()
    assert (row["captions"], row["width"], row["height"]) == (["a cat"], 8, 4)


def test_a_dataset_that_is_not_parquet_is_read_through_datasets(hub, tmp_path):
    """An imagefolder dataset (images + metadata.jsonl) is not parquet: datasets reads it, in both
    modes, with the same rows."""
    import json

    from huggingface_hub import CommitOperationAdd, HfApi

    from hubpress.refresh.parquet_stream import ParquetStream
    from hubpress.refresh.upstream import load_upstream

    name = f"alice/folder-{uuid.uuid4().hex[:8]}"
    api = HfApi(token=WRITE_TOKEN)
    api.create_repo(name, repo_type="dataset")
    meta = "".join(json.dumps({"file_name": f"{i}.png", "caption": f"pic {i}"}) + "\n" for i in range(3))
    ops = [CommitOperationAdd(f"train/{i}.png", png(10 + i, 8)) for i in range(3)]
    ops.append(CommitOperationAdd("train/metadata.jsonl", meta.encode()))
    api.create_commit(name, ops, commit_message="folder", repo_type="dataset")
    results = []
    for streaming in (False, True):
        cfg = backend(name, tmp_path, streaming=streaming, caption_column="caption")
        sha = resolve_revision(cfg, token=WRITE_TOKEN)
        assert not isinstance(load_upstream(cfg, sha, WRITE_TOKEN), ParquetStream)
        _, rows = read_all(cfg)
        results.append([(r["captions"], r["width"], r["height"]) for r in rows])
    assert results[0] == results[1] == [(["pic 0"], 10, 8), (["pic 1"], 11, 8), (["pic 2"], 12, 8)]
