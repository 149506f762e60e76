"""Deferred decoding (#15), from an independent review: an S3 object overwritten between intake and build with a broken image of the same
size: the build must not publish it. When the build fetches it again (the spool of fetched objects off),
the error is one line and no stage is left behind; with the spool on (the default), the build reads
the bytes intake fetched and checked, so the overwrite never reaches the shards."""

from __future__ import annotations

import boto3
import pyarrow.parquet as pq
import pytest

import hubpress.flows.build_shards as build_steps
import hubpress.flows.publish_dataset as pd
from hubpress.errors import HubpressError
from hubpress.flows.params import PublishDatasetParams
from hubpress.testdata.synth import write_dataset
from tests.shard_helpers import corrupt_png_pixels

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.mark.parametrize("spool", ["off", "on"])
def test_s3_object_overwritten_same_size_between_intake_and_build(s3, tmp_path, monkeypatch, spool):
    endpoint, bucket = s3
    local = tmp_path / "src"
    write_dataset(local, samples=6, seed=7, image_size=32)
    client = boto3.client("s3", endpoint_url=endpoint)
    for p in local.rglob("*"):
        if p.is_file():
            client.put_object(Bucket=bucket, Key=f"ds/{p.relative_to(local).as_posix()}", Body=p.read_bytes())
    key = "ds/train/control_images/s000002.png"
    good = (local / "train" / "control_images" / "s000002.png").read_bytes()
    bad = corrupt_png_pixels(good)
    assert len(bad) == len(good) and bad != good

    original = build_steps.build_shards

    def overwrite_then_build(*a, **k):
        client.put_object(Bucket=bucket, Key=key, Body=bad)
        return original(*a, **k)

    monkeypatch.setattr(build_steps, "build_shards", overwrite_then_build)
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    target = tmp_path / "out"
    if spool == "on":
        pd.publish_dataset(PublishDatasetParams(source=f"s3://{bucket}/ds", target=str(target)))
        published = [
            image["bytes"]
            for shard in target.rglob("*.parquet")
            for row in pq.read_table(shard).to_pylist()
            for image in [
                row.get("target_image") or {},
                row.get("control_mask") or {},
                *(row.get("control_images") or []),
            ]
            if isinstance(image, dict) and image.get("bytes")
        ]
        assert good in published and bad not in published  # what intake checked is what was published
        return
    monkeypatch.setenv("HUBPRESS_FETCH_SPOOL_BYTES", "0")
    with pytest.raises(HubpressError) as info:
        pd.publish_dataset(PublishDatasetParams(source=f"s3://{bucket}/ds", target=str(target)))
    msg = str(info.value)
    print("ERROR:", type(info.value).__name__, msg)
    assert "\n" not in msg and "s000002" in msg
    assert not list(target.rglob("*.parquet"))
    assert not [p for p in (tmp_path / "staging").rglob("*") if p.is_file()], list(
        (tmp_path / "staging").rglob("*")
    )
