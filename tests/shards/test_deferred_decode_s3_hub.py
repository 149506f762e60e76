"""Deferred decoding (#15), from an independent review: a CSV-layout source on S3 (moto) with one image broken behind intact PNG chunks,
published to the test Hub: the deferred publish retakes intake and must commit exactly what a
full-validation publish commits; a second publish must send nothing."""

from __future__ import annotations

import hashlib
import json
import uuid

import boto3
import pytest
from huggingface_hub import HfApi

from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.settings import get_settings
from hubpress.sources.intake import run_intake
from hubpress.testdata.synth import write_dataset
from tests.conftest import WRITE_TOKEN
from tests.shard_helpers import corrupt_png_pixels

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _data_files(hub, name):
    files = sorted(f for f in HfApi(token=WRITE_TOKEN).list_repo_files(name, repo_type="dataset"))
    return {
        f: hashlib.sha256(hub.read_file("dataset", name, f)).hexdigest()
        for f in files
        if f.startswith("data/")
    }, files


def test_s3_csv_source_broken_image_to_hub(hub, s3, tmp_path, monkeypatch, write_token, caplog):
    endpoint, bucket = s3
    local = tmp_path / "src"
    write_dataset(local, samples=10, seed=5, layout="csv", image_size=32)
    broken = local / "train" / "control" / "s000003.png"
    broken.write_bytes(corrupt_png_pixels(broken.read_bytes()))
    client = boto3.client("s3", endpoint_url=endpoint)
    for p in local.rglob("*"):
        if p.is_file():
            client.put_object(Bucket=bucket, Key=f"ds/{p.relative_to(local).as_posix()}", Body=p.read_bytes())
    src = f"s3://{bucket}/ds"

    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    deferred = f"alice/def-{uuid.uuid4().hex[:8]}"
    out = publish_dataset(PublishDatasetParams(source=src, target=deferred, max_shard_size="20KB"))
    assert any("taking the intake again" in r.getMessage() for r in caplog.records)
    manifest = json.loads(hub.read_file("dataset", deferred, "manifest.json"))
    assert {s["id"] for s in manifest["skipped"]} == {"s000003"}, manifest["skipped"]
    assert sum(out["samples"].values()) == 9 and sum(out["skipped"].values()) == 1, out
    d_data, d_files = _data_files(hub, deferred)
    assert set(out["uploaded_files"]) <= set(d_files)

    # A second publish: nothing sent, no commit.
    hub.reset_stats()
    again = publish_dataset(PublishDatasetParams(source=src, target=deferred, max_shard_size="20KB"))
    assert hub.stats.commits == 0 and hub.stats.upload_bytes == 0, (hub.stats, again)

    # Full validation first, then a publish, from a fresh cache and staging.
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache-full"))
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging-full"))
    full = run_intake(src, settings=get_settings(), workers=1)
    assert {s.id for m in full.splits.values() for s in m.skipped} == {"s000003"}
    validated = f"alice/full-{uuid.uuid4().hex[:8]}"
    publish_dataset(PublishDatasetParams(source=src, target=validated, max_shard_size="20KB"))
    v_data, v_files = _data_files(hub, validated)
    assert d_data == v_data
    assert d_files == v_files
