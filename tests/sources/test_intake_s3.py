"""Intake from an S3 prefix (moto server): same rules, one paginated listing, ETag-keyed cache."""

from __future__ import annotations

import boto3
import pytest

from hubpress.errors import SourceError
from hubpress.sources.intake import IntakeOptions, discover_source, fix_source, run_intake
from hubpress.storage.files import open_storage
from hubpress.storage.hashcache import HashCache
from hubpress.testdata.synth import DEFECTS, write_dataset


def kept(report):
    return {name: [s.id for s in m.samples] for name, m in report.splits.items()}


@pytest.mark.parametrize("layout", ["folder", "csv"])
def test_defective_tree_on_s3(s3, tmp_path, layout):
    endpoint, bucket = s3
    source = f"s3://{bucket}/datasets/{layout}"
    s = write_dataset(
        source,
        layout=layout,
        samples=12,
        test_fraction=0.25,
        masks=True,
        extra_controls=1,
        defects=DEFECTS,
        seed=4,
    )
    cache = HashCache(tmp_path / "cache.sqlite")
    report = run_intake(source, cache=cache, workers=2)
    assert report.source == source
    assert kept(report) == s.expected
    assert {n: {x.id: x.reasons[0] for x in m.skipped} for n, m in report.splits.items()} == s.skipped
    ref = report.splits["train"].samples[0].controls[0]
    assert ref.uri.startswith(f"s3://{bucket}/datasets/{layout}/train/") and len(ref.version) == 32  # ETag
    assert any(c.kind == "extension_mismatch" for c in report.corrections)

    again = run_intake(source, cache=cache, workers=2)
    assert again.stats["files_read"] == 0 and again.stats["cache_hits"] == again.stats["files"]

    # Replacing an object changes its ETag: only that object is read again.
    first_id = report.splits["train"].samples[0].id
    other = write_dataset(tmp_path / "one", samples=1, image_size=20)
    body = (tmp_path / "one" / other.files[0]).read_bytes()
    boto3.client("s3", endpoint_url=endpoint).put_object(
        Bucket=bucket, Key=f"datasets/{layout}/{ref.relpath}", Body=body
    )
    third = run_intake(source, cache=cache, workers=1)
    assert third.stats["files_read"] == 1
    assert {x.id: x.reasons for x in third.splits["train"].skipped}[first_id] == ["mask_size_mismatch"]


class CountingS3:
    def __init__(self, storage):
        self.storage, self.calls = storage, {}
        self.root = storage.root

    def __getattr__(self, name):
        attr = getattr(self.storage, name)
        if not callable(attr):
            return attr

        def counted(*a, **kw):
            self.calls[name] = self.calls.get(name, 0) + 1
            return attr(*a, **kw)

        return counted


def test_one_paginated_listing_on_s3(s3):
    _, bucket = s3
    source = f"s3://{bucket}/many"
    s = write_dataset(source, samples=340, repeat_bytes=True, image_size=8)  # 1,020 objects: 2 pages
    storage = CountingS3(open_storage(source))
    found = discover_source(storage, IntakeOptions())
    assert [x.id for x in found.samples["train"]] == s.expected["train"]
    assert storage.calls == {"list": 1}


def test_fix_source_on_s3(s3):
    _, bucket = s3
    source = f"s3://{bucket}/fix"
    s = write_dataset(source, layout="csv", samples=5, defects=("ext_mismatch",), seed=1)
    report = run_intake(source, workers=1, cache=HashCache(None))
    fixes = fix_source(report)
    assert [f.action for f in fixes] == ["renamed", "backed_up", "rewrote"]
    after = run_intake(source, workers=1, cache=HashCache(None))
    assert after.corrections == [] and kept(after) == s.expected


def test_missing_bucket_and_empty_prefix(s3):
    _, bucket = s3
    with pytest.raises(SourceError, match="NoSuchBucket"):
        run_intake("s3://no-such-bucket-hubpress/x", workers=1)
    with pytest.raises(SourceError, match="nothing under"):
        run_intake(f"s3://{bucket}/empty", workers=1)
