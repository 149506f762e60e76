"""S3 refusing staging calls for reasons a retry cannot cure (access denied, keys S3 does not know,
a bucket in another region) and a 500 that outlasts botocore's retries: `staging list`, `staging
clean` and a publish through S3 staging end in one line naming the bucket and what to do, exit 1,
no traceback, nothing written. moto sits behind tests/faultproxy.py, which gives every answer."""

from __future__ import annotations

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli
from tests.faultproxy import FaultProxy

REFUSALS = {
    "access_denied": "Give these credentials access",
    "invalid_key": "credentials",
    "moved": "AWS_DEFAULT_REGION=eu-west-1",
}


@pytest.fixture
def refusing(s3, monkeypatch):
    endpoint, bucket = s3
    proxy = FaultProxy(endpoint).start()
    monkeypatch.setenv("HUBPRESS_S3_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("HUBPRESS_S3_MAX_ATTEMPTS", "2")
    yield proxy, bucket
    proxy.stop()


def _one_line(code: int, out: str, err: str) -> str:
    assert code == 1, (out, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Prefect:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("command", ["list", "clean"])
@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_a_staging_command_refused_by_s3_says_which_bucket_and_what_to_do(refusing, kind, command):
    proxy, bucket = refusing
    proxy.arm(".", kind, count=100)
    line = _one_line(*run_cli("staging", command, "--staging", f"s3://{bucket}/stage"))
    assert repr(bucket) in line and REFUSALS[kind] in line, line
    assert "HF_ENDPOINT" not in line  # not the Hub's settings: S3's
    # A refusal is not retried (botocore's region redirector asks a moved bucket once more itself).
    assert len(proxy.requests) <= (2 if kind == "moved" else 1), proxy.requests


def test_a_persistent_500_ends_after_the_retries_in_one_line(refusing):
    proxy, bucket = refusing
    proxy.arm(".", "500", count=100)
    line = _one_line(*run_cli("staging", "list", "--staging", f"s3://{bucket}/stage"))
    assert "500" in line and f"s3://{bucket}/stage/" in line, line  # which store was down
    assert len(proxy.requests) <= 3  # HUBPRESS_S3_MAX_ATTEMPTS=2: the first try and 2 retries


@pytest.mark.usefixtures("prefect_harness")
def test_a_publish_through_s3_staging_refused_access_writes_nothing(refusing, tmp_path):
    proxy, bucket = refusing
    write_dataset(tmp_path / "src", samples=2, image_size=16)
    proxy.arm(".", "access_denied", count=1000)
    target = tmp_path / "out"
    line = _one_line(
        *run_cli("publish-dataset", str(tmp_path / "src"), str(target), "--staging", f"s3://{bucket}/stage")
    )
    assert repr(bucket) in line and "denied" in line, line
    assert not target.exists() or not any(target.rglob("*.parquet"))
