"""Parquet shards: the qflux schema as datasets reads it, reproducible bytes, stable boundaries."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shutil
import time
from pathlib import Path

import boto3
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from hubpress.errors import ConfigError, SourceError
from hubpress.shards.shards import estimate_sample_size, plan_shards, write_shard
from hubpress.shards.sizes import parse_size
from hubpress.sources.models import FileRef
from hubpress.sources.reader import SourceReader
from tests.shard_helpers import fake_sample, make_sample, write_image


def pixels(data_or_image) -> np.ndarray:
    image = data_or_image if isinstance(data_or_image, Image.Image) else Image.open(io.BytesIO(data_or_image))
    return np.asarray(image.convert("RGB"))


def source_pixels(ref: FileRef) -> np.ndarray:
    return pixels(Image.open(ref.uri))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (123, 123),
        ("500MB", 500_000_000),
        ("1GB", 10**9),
        ("2 gb", 2 * 10**9),
        ("1GiB", 2**30),
        ("10kb", 10_000),
        ("64", 64),
    ],
)
def test_parse_size_reads_ints_and_human_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "lots", "5 parsecs", 0, -3, "0MB"])
def test_parse_size_refuses_what_is_not_a_size(bad):
    with pytest.raises(ConfigError, match="size"):
        parse_size(bad)


def test_shard_decodes_with_datasets_to_the_source_pixels(tmp_path):
    from datasets import Image as ImageFeature
    from datasets import List, load_dataset

    samples = [
        make_sample(tmp_path / "src", "a", controls=1, mask=True, target=True, fmt="png"),
        make_sample(tmp_path / "src", "b", controls=2, mask=False, target=True, fmt="jpeg"),
        make_sample(tmp_path / "src", "c", controls=3, mask=True, target=False, fmt="webp"),
    ]
    (plan,) = plan_shards("train", samples, "10MB")
    built = write_shard(plan, tmp_path / "out")
    assert built.path_in_repo == plan.path_in_repo and built.path_in_repo.startswith("data/train-")
    assert built.num_rows == 3 and built.size == (tmp_path / "out" / built.path_in_repo).stat().st_size

    ds = load_dataset(
        "parquet", data_files=built.local_path, split="train", cache_dir=str(tmp_path / "cache")
    )
    assert list(ds.features) == ["id", "control_images", "control_mask", "target_image", "prompt"]
    assert ds.features["control_images"] == List(ImageFeature())
    assert ds.features["control_mask"] == ImageFeature()
    by_id = {row["id"]: row for row in ds}
    assert [row["id"] for row in ds] == ["a", "b", "c"]
    for sample in samples:
        row = by_id[sample.id]
        assert row["prompt"] == sample.prompt
        assert len(row["control_images"]) == len(sample.controls)
        for image, ref in zip(row["control_images"], sample.controls, strict=True):
            assert np.array_equal(pixels(image), source_pixels(ref))
        for key, ref in (("control_mask", sample.mask), ("target_image", sample.target)):
            if ref is None:
                assert row[key] is None
            else:
                assert np.array_equal(pixels(row[key]), source_pixels(ref))

    # Bytes are stored as they are, each named with its true format's extension.
    raw = ds.cast_column("control_images", List(ImageFeature(decode=False)))
    raw = raw.cast_column("target_image", ImageFeature(decode=False))
    b = raw[1]
    assert [c["path"] for c in b["control_images"]] == ["b_control_0.jpg", "b_control_1.jpg"]
    assert b["control_images"][1]["bytes"] == Path(samples[1].controls[1].uri).read_bytes()
    assert b["target_image"]["path"] == "b_target.jpg"


def test_image_name_follows_the_true_format_not_the_file_extension(tmp_path):
    sample = make_sample(tmp_path, "x", controls=1, target=False)
    # A JPEG saved under a .png name: intake records format="jpeg".
    sample.controls[0] = write_image(tmp_path / "x_control_0", 7, "jpeg", ext="png")
    (plan,) = plan_shards("train", [sample], "10MB")
    built = write_shard(plan, tmp_path / "out")
    table = pq.read_table(built.local_path)
    assert table.column("control_images")[0].as_py()[0]["path"] == "x_control_0.jpg"


def test_load_dataset_on_a_directory_finds_every_split(tmp_path):
    from datasets import load_dataset

    out = tmp_path / "repo"
    for split, ids in (("train", ["t1", "t2"]), ("test", ["v1"])):
        samples = [make_sample(tmp_path / "src", i, split=split, target=split == "train") for i in ids]
        for plan in plan_shards(split, samples, "10MB"):
            write_shard(plan, out)
    dsd = load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert sorted(dsd) == ["test", "train"]
    assert sorted(dsd["train"]["id"]) == ["t1", "t2"]
    assert dsd["test"][0]["target_image"] is None


def test_identical_input_gives_identical_names_and_bytes(tmp_path):
    samples = [make_sample(tmp_path / "src", f"s{i}", controls=1 + i % 2, mask=i % 2 == 0) for i in range(6)]
    first = [write_shard(p, tmp_path / "one") for p in plan_shards("train", samples, "10MB")]
    shuffled = list(reversed(samples))
    second = [write_shard(p, tmp_path / "two") for p in plan_shards("train", shuffled, "10MB")]
    assert [b.path_in_repo for b in first] == [b.path_in_repo for b in second]
    for a, b in zip(first, second, strict=True):
        assert a.sha256 == b.sha256
        assert Path(a.local_path).read_bytes() == Path(b.local_path).read_bytes()
        assert hashlib.sha256(Path(a.local_path).read_bytes()).hexdigest() == a.sha256


def test_a_changed_prompt_renames_only_its_shard():
    samples = [fake_sample(f"id{i:05d}") for i in range(400)]
    before = plan_shards("train", samples, "4MB")
    samples[123].prompt = "something else"
    after = plan_shards("train", samples, "4MB")
    assert len(set(p.name for p in before) ^ set(p.name for p in after)) == 2  # one out, one in


def test_boundaries_are_content_defined():
    samples = [fake_sample(f"id{i:05d}") for i in range(2000)]
    before = plan_shards("train", samples, "4MB")
    assert len(before) > 20
    assert plan_shards("train", list(reversed(samples)), "4MB") == before

    # Insert 1% new samples scattered through the id space: only the shards they land in change.
    inserted = [fake_sample(f"id{i:05d}x") for i in range(0, 2000, 100)]
    after = plan_shards("train", samples + inserted, "4MB")
    old, new = {p.name for p in before}, {p.name for p in after}
    touched = {p.name for p in after if any(s.id.endswith("x") for s in p.samples)}
    assert touched <= new - old
    assert len(new - old - touched) <= 2 * len(inserted)  # neighbours re-cut by a size bound, if any
    assert len(new - old) <= 3 * len(inserted) and len(new - old) < len(new) / 2
    # Every sample is in exactly one shard, in id order.
    ids = [s.id for p in after for s in p.samples]
    assert ids == sorted(s.id for s in samples + inserted)

    # Removing samples is as local.
    removed = plan_shards("train", samples[:500] + samples[510:], "4MB")
    assert len({p.name for p in removed} - old) <= 3


def test_shards_stay_under_the_maximum_and_average_about_half():
    samples = [fake_sample(f"id{i:05d}", size=50_000 + (i % 7) * 10_000) for i in range(3000)]
    plans = plan_shards("train", samples, "8MB")
    sizes = [p.estimated_size for p in plans]
    assert max(sizes) <= 8_000_000
    assert 2_000_000 < sum(sizes) / len(sizes) < 6_000_000
    assert sum(sizes) == sum(estimate_sample_size(s) for s in samples)


def test_a_sample_larger_than_the_maximum_gets_a_shard_of_its_own():
    samples = [fake_sample("a", 1000), fake_sample("b", 5000), fake_sample("c", 1000)]
    plans = plan_shards("train", samples, 3000, min_shard_size=2000)
    assert [[s.id for s in p.samples] for p in plans] == [["a"], ["b"], ["c"]]


def test_small_dataset_fits_one_shard_and_empty_split_none():
    assert len(plan_shards("train", [fake_sample(f"{i}") for i in range(50)])) == 1
    assert plan_shards("train", []) == []


def test_unusable_split_names_and_bounds_are_refused():
    with pytest.raises(ConfigError, match="Split name"):
        plan_shards("train/../x", [fake_sample("a")])
    with pytest.raises(ConfigError, match="min_shard_size"):
        plan_shards("train", [fake_sample("a")], "1MB", min_shard_size="2MB")


def test_row_groups_hold_about_row_group_rows(tmp_path):
    samples = [make_sample(tmp_path / "src", f"r{i:03d}", target=False) for i in range(25)]
    (plan,) = plan_shards("train", samples, "50MB", row_group_rows=10)
    built = write_shard(plan, tmp_path / "out")
    meta = pq.ParquetFile(built.local_path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [10, 10, 5]

    # Large images close a row group early: memory stays bounded by bytes too.
    (plan,) = plan_shards(
        "train", samples, "50MB", row_group_rows=10, row_group_bytes=3 * estimate_sample_size(samples[0])
    )
    meta = pq.ParquetFile(write_shard(plan, tmp_path / "out2").local_path).metadata
    assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) == 3
    assert meta.num_rows == 25


def test_a_source_file_changed_since_validation_is_an_error_naming_it(tmp_path):
    sample = make_sample(tmp_path / "src", "m", target=True)
    (plan,) = plan_shards("train", [sample], "10MB")
    path = write_image(tmp_path / "src" / "train" / "m_target", 999).uri  # overwritten after validation
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))  # ...a moment later, as edits are
    with pytest.raises(SourceError, match="m_target.png.*changed after validation"):
        write_shard(plan, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.parquet*"))  # nothing half-written is left

    (tmp_path / "src" / "train" / "m_control_0.png").unlink()
    with pytest.raises(SourceError, match="m_control_0.png.*disappeared"):
        write_shard(plan, tmp_path / "out")


def test_a_local_source_is_held_to_its_listed_size_and_mtime_without_rehashing(tmp_path):
    sample = make_sample(tmp_path / "src", "v", target=True)
    reader = SourceReader()
    assert reader(sample.target) == Path(sample.target.uri).read_bytes()

    # Same bytes, newer mtime: refused (the file was written after validation).
    st = os.stat(sample.target.uri)
    os.utime(sample.target.uri, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    with pytest.raises(SourceError, match="v_target.png.*changed after validation.*modification time"):
        reader(sample.target)

    # Different bytes of the same size, with the validated mtime put back: the inode change time
    # (ctime), which user space cannot restore, moved, so this is refused too (issue 24); a ref
    # without a version is still held to its sha256.
    os.utime(sample.target.uri, ns=(st.st_atime_ns, st.st_mtime_ns))
    data = bytearray(Path(sample.target.uri).read_bytes())
    data[-1] ^= 0xFF
    Path(sample.target.uri).write_bytes(bytes(data))
    os.utime(sample.target.uri, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(SourceError, match="v_target.png.*changed after validation.*change time"):
        reader(sample.target)
    with pytest.raises(SourceError, match="sha256 no longer matches"):
        reader(dataclasses.replace(sample.target, version=None))


def test_reads_and_verifies_s3_sources(tmp_path, s3):
    endpoint, bucket = s3
    sample = make_sample(tmp_path / "src", "s3s", controls=2, mask=True)
    client = boto3.client("s3", endpoint_url=endpoint)
    moved = []
    for ref in sample.images():
        key = f"ds/train/{ref.relpath}"
        client.upload_file(ref.uri, bucket, key)
        moved.append(
            FileRef(f"s3://{bucket}/{key}", ref.relpath, ref.size, ref.format, ref.sha256, version="etag")
        )
    sample.controls, sample.mask, sample.target = moved[:2], moved[2], moved[3]
    (plan,) = plan_shards("train", [sample], "10MB")
    built = write_shard(plan, tmp_path / "out", read_bytes=SourceReader())
    row = pq.read_table(built.local_path).to_pylist()[0]
    assert row["control_images"][1]["bytes"] == Path(tmp_path / "src/train/s3s_control_1.png").read_bytes()

    client.put_object(Bucket=bucket, Key="ds/train/s3s_mask.png", Body=b"not the same")
    with pytest.raises(SourceError, match="s3s_mask.png"):
        SourceReader()(sample.mask)
    client.delete_object(Bucket=bucket, Key="ds/train/s3s_mask.png")
    with pytest.raises(SourceError, match="disappeared"):
        SourceReader()(sample.mask)


def test_write_to_an_explicit_path(tmp_path):
    sample = make_sample(tmp_path / "src", "p")
    (plan,) = plan_shards("train", [sample], "10MB")
    built = write_shard(plan, tmp_path / "x" / "mine.parquet")
    assert built.local_path == str(tmp_path / "x" / "mine.parquet")
    assert built.path_in_repo == plan.path_in_repo
    shutil.rmtree(tmp_path / "x")


def test_a_file_larger_than_listed_is_still_stored_whole(tmp_path):
    sample = make_sample(tmp_path / "src", "g", controls=2, target=True)
    # No sha256 to hold the bytes to and a listed size that is too small (a file still being written).
    small = [dataclasses.replace(r, sha256=None, size=10) for r in sample.controls]
    sample.controls = small
    (plan,) = plan_shards("train", [sample], "10MB")
    row = pq.read_table(write_shard(plan, tmp_path / "out").local_path).to_pylist()[0]
    assert [c["bytes"] for c in row["control_images"]] == [Path(r.uri).read_bytes() for r in small]
