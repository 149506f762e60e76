"""S3 faults on staging: throttling, 5xx and dropped connections on reads and writes are retried by
botocore's adaptive retry mode (hubpress.storage.s3.s3_client); a staged file whose bytes no longer
match its recorded sha256 is never published: the stage is rebuilt.

moto sits behind tests/faultproxy.py, which answers the next N matching requests with a fault."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.settings import Settings
from hubpress.storage.files import open_storage
from hubpress.testdata.synth import write_dataset
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def proxy(s3, monkeypatch):
    endpoint, bucket = s3
    fp = FaultProxy(endpoint).start()
    monkeypatch.setenv("HUBPRESS_S3_ENDPOINT_URL", fp.url)
    yield fp, bucket
    fp.stop()


def test_storage_reads_and_writes_survive_throttling_5xx_and_resets(proxy):
    fp, bucket = proxy
    storage = open_storage(f"s3://{bucket}/stage", Settings())
    fp.arm(r"^PUT ", "slowdown", count=1)
    fp.arm(r"^PUT ", "reset", count=1)
    storage.write_bytes("a/one.bin", b"1" * 1000)
    fp.arm(r"^GET /", "503", count=1)
    fp.arm(r"^GET /", "reset", count=1)
    assert storage.read_bytes("a/one.bin") == b"1" * 1000
    fp.arm(r"^GET /\S*list-type=2", "500", count=1)
    assert [f.relpath for f in storage.list("a")] == ["a/one.bin"]
    kinds = sorted(kind for kind, _ in fp.fired)
    assert kinds == ["500", "503", "reset", "reset", "slowdown"]
    assert fp.pending == 0


def test_a_persistent_outage_is_bounded_and_reported(proxy):
    fp, bucket = proxy
    storage = open_storage(f"s3://{bucket}/stage", Settings(s3_max_attempts=3))
    fp.arm(r"^PUT ", "503", count=50)
    with pytest.raises(Exception) as info:
        storage.write_bytes("x.bin", b"x")
    assert "ServiceUnavailable" in str(info.value) or "503" in str(info.value)
    puts = [line for line in fp.requests if line.startswith("PUT ")]
    # botocore's max_attempts counts retries: the first try plus 3, then a clear error, no endless loop.
    assert len(puts) == 1 + 3


def test_publish_with_s3_staging_through_faults(proxy, hub, tmp_path, write_token):
    fp, bucket = proxy
    src = tmp_path / "src"
    write_dataset(src, samples=6, image_size=16, seed=3)
    # Throttle and break staging writes (shards, card, manifest, completion record) and reads
    # (verification of what landed, the materialised upload copies).
    fp.arm(r"^PUT ", "slowdown", count=1)
    fp.arm(r"^PUT ", "reset", count=1)
    fp.arm(r"^GET /", "500", count=1)
    name = f"alice/s3f-{uuid.uuid4().hex[:8]}"
    result = publish_dataset(
        PublishDatasetParams(source=str(src), target=name, staging=f"s3://{bucket}/stage")
    )
    assert result["commit"] and hub.head("dataset", name) == result["commit"]
    assert result["samples"] == {"train": 6}
    assert len(fp.fired) == 3
    assert [c["title"] for c in hub.commit_history("dataset", name)][1:] == ["initial commit"]


def test_a_corrupted_staged_object_is_never_published_and_the_stage_is_rebuilt(
    proxy, hub, tmp_path, write_token
):
    fp, bucket = proxy
    src = tmp_path / "src"
    write_dataset(src, samples=5, image_size=16, seed=4)
    staging = f"s3://{bucket}/stage"
    name = f"alice/c-{uuid.uuid4().hex[:8]}"
    # A dry run builds and seals the stage for this target without uploading anything.
    first = publish_dataset(PublishDatasetParams(source=str(src), target=name, staging=staging, dry_run=True))
    assert first["commit"] is None and first["stage_reused"] is False

    # Flip bytes of a staged shard in place (same size, so only a checksum can tell).
    s3 = boto3.client("s3", endpoint_url=fp.url)
    # Each built shard is sealed in the shard store: `<key>.parquet` and its seal, `<key>.json`.
    seal_key = next(
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix="stage/shards/")["Contents"]
        if o["Key"].endswith(".json")
    )
    record = json.loads(s3.get_object(Bucket=bucket, Key=seal_key)["Body"].read())
    shard = {"path": record["path_in_repo"], "sha256": record["sha256"]}
    key = seal_key.removesuffix(".json") + ".parquet"
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))

    second = publish_dataset(PublishDatasetParams(source=str(src), target=name, staging=staging))
    assert second["commit"] and second["stage_reused"] is False  # rebuilt, not trusted
    published = hub.read_file("dataset", name, shard["path"])
    assert published != bytes(data)
    import hashlib

    assert hashlib.sha256(published).hexdigest() == shard["sha256"]  # deterministic rebuild
