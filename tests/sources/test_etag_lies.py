"""An S3 listing whose version of an object (its ETag and size) says "unchanged" while the bytes
changed: intake trusts the facts it kept for that version, and the build, which holds the bytes to
the recorded sha256, refuses them in one line asking for a run again. That run must then read and
validate the object afresh, not fail the same way for ever on the facts the lie left behind.

The lie is made as a store that reuses ETags would make it: the object is replaced in moto, and
the facts cache is told the new listing entry is the old content (what an unchanged ETag says)."""

from __future__ import annotations

import boto3
import pytest

from hubpress.errors import HubpressError
from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.settings import get_settings
from hubpress.sources.facts_cache import intake_cache
from hubpress.testdata.synth import write_dataset
from tests.sources.test_fetch_once_s3 import png, upload_tree


@pytest.mark.usefixtures("prefect_harness")
def test_a_lying_etag_costs_one_failed_run_not_every_run(s3, tmp_path, monkeypatch):
    endpoint, bucket = s3
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("HUBPRESS_FETCH_SPOOL_BYTES", "0")  # the build reads S3, as on another machine
    client = boto3.client("s3", endpoint_url=endpoint)
    local = tmp_path / "src"
    write_dataset(local, samples=3, layout="csv", image_size=16, seed=5)
    upload_tree(client, bucket, local)
    source = f"s3://{bucket}/ds"
    first = publish_dataset(PublishDatasetParams(source=source, target=str(tmp_path / "out1")))
    assert sum(first["samples"].values()) == 3

    key = next(
        o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"] if o["Key"].endswith(".png")
    )
    uri = f"s3://{bucket}/{key}"
    cache = intake_cache(get_settings())
    listed = client.head_object(Bucket=bucket, Key=key)
    [(old_sha, old_info)] = [
        v
        for (u, _, _), v in cache.get_many(
            [(uri, listed["ContentLength"], listed["ETag"].strip('"'))]
        ).items()
        if u == uri
    ]
    client.put_object(Bucket=bucket, Key=key, Body=png(77))
    now = client.head_object(Bucket=bucket, Key=key)
    cache.put(uri, now["ContentLength"], now["ETag"].strip('"'), old_sha, old_info)  # the lie

    with pytest.raises(HubpressError, match="changed after validation"):
        publish_dataset(PublishDatasetParams(source=source, target=str(tmp_path / "out2")))
    again = publish_dataset(PublishDatasetParams(source=source, target=str(tmp_path / "out2")))
    assert sum(again["samples"].values()) == 3
