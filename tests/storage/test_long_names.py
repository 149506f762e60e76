"""Names too long for a file system or the Hub: S3 keys may be 1,024 bytes with no bound on one
segment, a Linux file name at most 255 bytes. A remote naming such a file (an S3 key in a training
output, a row's media path, a listed file) is reported and left out, like any other name the gate
refuses, never a traceback half-way through staging. A key ending in '/' (a folder marker) that
holds bytes is reported too: never read, and never dropped silently."""

from __future__ import annotations

import uuid

import boto3
import pytest
from huggingface_hub import HfApi

from hubpress.flows.params import ReleaseTrainingRunParams
from hubpress.flows.release_training_run import release_training_run
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import WRITE_TOKEN

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_release_s3_keys_too_long_for_a_file_name_are_reported_not_staged(hub, s3, tmp_path, write_token):
    endpoint, bucket = s3
    client = boto3.client("s3", endpoint_url=endpoint)
    weights = write_lora(tmp_path / "w.safetensors", seed=3)
    client.upload_file(str(weights), bucket, "run/checkpoint-10/pytorch_lora_weights.safetensors")
    client.put_object(Bucket=bucket, Key="run/samples/ok.png", Body=b"png-ok")
    long_segment = f"run/samples/{'x' * 300}.png"  # one segment over 255 bytes
    long_multibyte = f"run/samples/{'é' * 200}.png"  # 200 characters, 400 bytes
    marker = "run/samples/hidden.png/"  # a folder marker that holds bytes
    for key in (long_segment, long_multibyte, marker):
        client.put_object(Bucket=bucket, Key=key, Body=b"attacker bytes")

    repo = f"alice/rel-long-{uuid.uuid4().hex[:8]}"
    result = release_training_run(ReleaseTrainingRunParams(output_uri=f"s3://{bucket}/run", repo_id=repo))
    assert result["commit"]
    files = set(HfApi(token=WRITE_TOKEN).list_repo_files(repo))
    assert "samples/ok.png" in files and not any(len(f) > 255 for f in files)
    problems = " ".join(result["problems"])
    assert "255 bytes" in problems and problems.count("left out") >= 3, problems
    assert "'samples/hidden.png/'" in problems and "folder marker" in problems, problems
    assert not any("hidden" in f for f in files)
