"""publish-lora and release-training-run through the real flows, the Hub-protocol server and moto."""

import filecmp
import json
import uuid

import boto3
import pytest
from huggingface_hub import HfApi

from hubpress.api import download_lora, upload_lora_safetensors
from hubpress.errors import ConfigError
from hubpress.flows.params import PublishLoraParams, ReleaseTrainingRunParams
from hubpress.flows.publish_lora import publish_lora
from hubpress.flows.release_training_run import release_training_run
from hubpress.lora.weights import InvalidWeightsError
from hubpress.testdata.synth_lora import write_broken, write_lora
from tests.conftest import WRITE_TOKEN

pytestmark = pytest.mark.usefixtures("prefect_harness")


def name():
    return f"alice/lora-{uuid.uuid4().hex[:8]}"


@pytest.mark.lfs
def test_publish_twice_sends_nothing_the_second_time(hub, tmp_path, write_token):
    weights = write_lora(tmp_path / "pytorch_lora_weights.safetensors", rank=8)
    config = tmp_path / "train_config.yaml"
    config.write_text("learning_rate: 0.0001\nrank: 8\n")
    repo = name()
    url = upload_lora_safetensors(str(tmp_path), repo, extra_files={str(config): "train_config.yaml"})
    assert url.endswith(repo)
    files = {f.path: f for f in HfApi(token=WRITE_TOKEN).list_repo_tree(repo, recursive=True)}
    assert set(files) >= {"pytorch_lora_weights.safetensors", "train_config.yaml", "README.md"}
    card = hub.read_file("model", repo, "README.md").decode()
    assert "lora" in card and "load_lora_weights" in card and "rank" in card.lower()

    hub.reset_stats()
    upload_lora_safetensors(str(weights), repo, extra_files={str(config): "train_config.yaml"})
    assert hub.stats.commits == 0 and hub.stats.upload_bytes == 0
    # The same files (by size, mtime and inode) and the same head: one round trip, nothing read.
    assert sum(hub.stats.requests.values()) == 1 and hub.stats.requests["repo_info"] == 1

    # Change only the extra file: only it (and nothing else) is sent.
    config.write_text("learning_rate: 0.0002\nrank: 8\n")
    hub.reset_stats()
    result = publish_lora(
        PublishLoraParams(src_path=str(weights), target=repo, extra_files={str(config): "train_config.yaml"})
    )
    # The card summarises the training config, so it changes with it; the weights do not move.
    assert result["uploaded_files"] == ["README.md", "train_config.yaml"]
    assert "pytorch_lora_weights.safetensors" in result["unchanged_files"]
    assert hub.stats.commits == 1 and hub.stats.upload_bytes < weights.stat().st_size

    local = download_lora(repo)
    assert filecmp.cmp(local, weights, shallow=False)


@pytest.mark.parametrize("kind", ["truncated", "offsets_past_end", "not_lora", "pickle"])
def test_bad_weights_are_refused_before_any_upload(hub, tmp_path, write_token, kind):
    bad = write_broken(tmp_path / "w.safetensors", kind)
    with pytest.raises(InvalidWeightsError):
        publish_lora(PublishLoraParams(src_path=str(bad), target=name()))
    assert hub.stats.upload_bytes == 0 and hub.stats.commits == 0


def test_bin_and_missing_extra_file_are_refused_up_front(hub, tmp_path, write_token):
    (tmp_path / "model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(Exception, match="safetensors"):
        publish_lora(PublishLoraParams(src_path=str(tmp_path / "model.bin"), target=name()))
    weights = write_lora(tmp_path / "ok.safetensors")
    with pytest.raises(ConfigError, match="not found"):
        publish_lora(
            PublishLoraParams(src_path=str(weights), target=name(), extra_files={"/nope.yaml": "x.yaml"})
        )
    assert hub.stats.upload_bytes == 0 and hub.stats.commits == 0


def write_training_output(s3_endpoint, bucket, prefix):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    import io
    import tempfile
    from pathlib import Path

    tmp = Path(tempfile.mkdtemp())
    losses = {100: 0.5, 200: 0.2, 300: 0.35}
    for step in losses:
        path = write_lora(tmp / f"w{step}.safetensors", seed=step)
        s3.upload_file(str(path), bucket, f"{prefix}/checkpoint-{step}/pytorch_lora_weights.safetensors")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/config.yaml", Body=b"learning_rate: 0.0001\n")
    state = {"log_history": [{"step": s, "loss": v} for s, v in losses.items()], "global_step": 300}
    s3.upload_fileobj(io.BytesIO(json.dumps(state).encode()), bucket, f"{prefix}/trainer_state.json")
    return tmp, losses


def test_release_from_s3_latest_then_best_and_rerun_is_a_noop(hub, s3, tmp_path, write_token):
    endpoint, bucket = s3
    tmp, _ = write_training_output(endpoint, bucket, "run1")
    repo = name()
    first = release_training_run(ReleaseTrainingRunParams(output_uri=f"s3://{bucket}/run1", repo_id=repo))
    assert first["checkpoint"] == "checkpoint-300" and first["tag"] == "step-300" and first["commit"]
    refs = HfApi(token=WRITE_TOKEN).list_repo_refs(repo)
    assert [(t.name, t.target_commit) for t in refs.tags] == [("step-300", first["commit"])]
    release = json.loads(hub.read_file("model", repo, "release.json"))
    assert (
        release["checkpoint"] == "checkpoint-300" and "pytorch_lora_weights.safetensors" in release["files"]
    )
    assert filecmp.cmp(download_lora(repo, revision="step-300"), tmp / "w300.safetensors", shallow=False)

    hub.reset_stats()
    again = release_training_run(ReleaseTrainingRunParams(output_uri=f"s3://{bucket}/run1", repo_id=repo))
    assert again["commit"] is None and hub.stats.commits == 0
    assert len(HfApi(token=WRITE_TOKEN).list_repo_refs(repo).tags) == 1

    best = release_training_run(
        ReleaseTrainingRunParams(output_uri=f"s3://{bucket}/run1", repo_id=repo, select="best:loss:min")
    )
    assert best["checkpoint"] == "checkpoint-200" and best["tag"] == "step-200"
    assert filecmp.cmp(download_lora(repo, revision="step-200"), tmp / "w200.safetensors", shallow=False)


def test_release_with_missing_metric_is_an_error(hub, s3, write_token):
    endpoint, bucket = s3
    write_training_output(endpoint, bucket, "run2")
    with pytest.raises(Exception, match="accuracy"):
        release_training_run(
            ReleaseTrainingRunParams(
                output_uri=f"s3://{bucket}/run2", repo_id=name(), select="best:accuracy:max"
            )
        )


def test_explicit_token_is_used_and_never_left_behind(hub, tmp_path, monkeypatch):
    import os

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HUBPRESS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    weights = write_lora(tmp_path / "w.safetensors")
    repo = name()
    upload_lora_safetensors(str(weights), repo, token=WRITE_TOKEN)
    assert hub.head("model", repo) is not None
    assert "HUBPRESS_TOKEN" not in os.environ  # handed to the run only, not left in the process
