"""Each new source byte is read once on S3: intake keeps the objects it fetches to hash and check
them, and the build reads them from there (hubpress.storage.fetched) instead of fetching them
again. Counted with a proxy in front of moto, through the publish-dataset flow."""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

import boto3
import numpy as np
import pytest
from PIL import Image

from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.settings import get_settings
from hubpress.storage.fetched import FetchedSpool
from hubpress.testdata.synth import write_dataset
from tests.faultproxy import FaultProxy


@pytest.fixture
def counted_s3(s3, monkeypatch, tmp_path):
    """moto behind a proxy that records every request; hubpress talks to the proxy."""
    endpoint, bucket = s3
    proxy = FaultProxy(endpoint).start()
    monkeypatch.setenv("HUBPRESS_S3_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    yield proxy, boto3.client("s3", endpoint_url=endpoint), bucket
    proxy.stop()


def image_gets(proxy: FaultProxy, bucket: str) -> Counter[str]:
    """GET requests per image key (listings and the CSV are not images)."""
    gets: Counter[str] = Counter()
    for line in proxy.requests:
        match = re.match(rf"GET /{bucket}/([^?]+\.png)(\?|$)", line)
        if match:
            gets[match.group(1)] += 1
    return gets


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def upload_tree(client, bucket: str, local: Path) -> None:
    for path in local.rglob("*"):
        if path.is_file():
            client.put_object(
                Bucket=bucket, Key=f"ds/{path.relative_to(local).as_posix()}", Body=path.read_bytes()
            )


def add_samples(client, bucket: str, local: Path, ids: list[str]) -> set[str]:
    """New samples (a target and a control each) in the CSV layout; returns their image keys."""
    keys = set()
    csv = (local / "train.csv").read_text(encoding="utf-8")
    for n, sample in enumerate(ids):
        for kind in ("target", "control"):
            rel = f"train/{kind}/{sample}.png"
            client.put_object(Bucket=bucket, Key=f"ds/{rel}", Body=png(1000 + 2 * n + (kind == "control")))
            keys.add(f"ds/{rel}")
        csv += f"train/target/{sample}.png,train/control/{sample}.png,Make {sample} look new\n"
    (local / "train.csv").write_text(csv, encoding="utf-8")
    client.put_object(Bucket=bucket, Key="ds/train.csv", Body=csv.encode())
    return keys


@pytest.mark.usefixtures("prefect_harness")
def test_a_night_on_s3_fetches_each_new_object_once(counted_s3, tmp_path, monkeypatch):
    proxy, client, bucket = counted_s3
    local = tmp_path / "src"
    write_dataset(local, samples=40, layout="csv", image_size=16, seed=3)
    upload_tree(client, bucket, local)
    first_keys = {f"ds/{p.relative_to(local).as_posix()}" for p in local.rglob("*.png")}
    params = PublishDatasetParams(
        source=f"s3://{bucket}/ds", target=str(tmp_path / "out"), max_shard_size="8KB"
    )

    # The first publish reads every object once: intake fetches it, the build takes it from the spool.
    first = publish_dataset(params)
    assert sum(first["samples"].values()) == 40
    gets = image_gets(proxy, bucket)
    assert set(gets) == first_keys and set(gets.values()) == {1}, gets
    assert FetchedSpool.of(get_settings()).held_bytes() == 0  # the build took everything it kept

    # +5%: one sample sorting before every id, one after. Each new object is fetched once; an
    # unchanged object only by the build of a shard that holds it, and never by intake.
    new_keys = add_samples(client, bucket, local, ["a00000", "z00000"])
    proxy.clear()
    night = publish_dataset(params)
    assert night["changes"]["added"] == 2
    gets = image_gets(proxy, bucket)
    assert {key: gets[key] for key in new_keys} == {key: 1 for key in new_keys}, gets
    assert all(gets[key] <= 1 for key in first_keys), gets
    assert FetchedSpool.of(get_settings()).held_bytes() == 0

    # The count can fail: with the spool off, the same kind of night fetches each new object twice.
    monkeypatch.setenv("HUBPRESS_FETCH_SPOOL_BYTES", "0")
    more_keys = add_samples(client, bucket, local, ["b00000"])
    proxy.clear()
    publish_dataset(params)
    gets = image_gets(proxy, bucket)
    assert {key: gets[key] for key in more_keys} == {key: 2 for key in more_keys}, gets


def test_the_spool_is_bounded_swept_and_named_by_content(tmp_path):
    spool = FetchedSpool(tmp_path / "fetched", max_bytes=10)
    assert spool.keep("a" * 64, b"12345678")
    assert not spool.keep("b" * 64, b"12345")  # over the budget: the build fetches it again
    assert not spool.keep("../../etc/passwd", b"x")  # only sha256 names are ever paths
    assert spool.take("b" * 64) is None
    assert spool.take("a" * 64) == b"12345678"
    assert spool.take("a" * 64) is None  # taken once
    assert spool.keep("c" * 64, b"1")
    assert spool.sweep(max_age_seconds=3600) == 0
    assert spool.sweep(max_age_seconds=-1) == 1 and spool.held_bytes() == 0
    off = FetchedSpool(tmp_path / "off", max_bytes=0)
    assert not off.keep("d" * 64, b"1") and not (tmp_path / "off").exists()


def test_a_damaged_spool_entry_is_fetched_again_never_published(counted_s3):
    """An entry a crash left damaged fails the sha256 the build holds it to: the build's reader
    fetches the object again instead of publishing the damaged bytes or failing."""
    import hashlib

    from hubpress.sources.models import FileRef
    from hubpress.sources.reader import SourceReader

    proxy, client, bucket = counted_s3
    data = png(7)
    client.put_object(Bucket=bucket, Key="ds/one.png", Body=data)
    sha = hashlib.sha256(data).hexdigest()
    settings = get_settings()
    spool = FetchedSpool.of(settings)
    assert spool.keep(sha, data[:-10])  # truncated, as a crash mid-write on a full disk could leave it
    ref = FileRef(
        uri=f"s3://{bucket}/ds/one.png", relpath="one.png", size=len(data), format="png", sha256=sha
    )
    proxy.clear()
    assert SourceReader(settings)(ref) == data
    assert image_gets(proxy, bucket) == {"ds/one.png": 1}
    assert spool.held_bytes() == 0
    # A whole entry is read from the spool: no GET.
    assert spool.keep(sha, data)
    proxy.clear()
    assert SourceReader(settings)(ref) == data
    assert image_gets(proxy, bucket) == {}
