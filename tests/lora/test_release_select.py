"""The post-training hook's decisions: what a training output holds (local or S3), which checkpoint
a `select` string picks, and where each released file goes."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from hubpress.errors import ConfigError, SourceError
from hubpress.lora.release import (
    ReleaseManifest,
    default_tag,
    discover_training_output,
    load_training_config,
    release_files,
)
from hubpress.lora.selection import metric_value, parse_select, select_checkpoint
from hubpress.testdata.synth_lora import write_broken, write_lora

# eval_loss is best at 1000; psnr is best at 1500; loss falls steadily.
LOG_HISTORY = [
    {"step": 250, "loss": 0.9},
    {"step": 500, "loss": 0.7, "eval_loss": 0.50, "psnr": 20.0},
    {"step": 750, "loss": 0.6},
    {"step": 1000, "loss": 0.5, "eval_loss": 0.30, "psnr": 22.0},
    {"step": 1250, "loss": 0.45},
    {"step": 1500, "loss": 0.4, "eval_loss": 0.40, "psnr": 25.0},
]


def make_training_output(root: Path, *, final: bool = False, metrics: str = "trainer_state") -> Path:
    for step in (500, 1000, 1500):
        ckpt = root / f"checkpoint-{step}"
        write_lora(ckpt / "pytorch_lora_weights.safetensors", seed=step)
        (ckpt / "optimizer.bin").write_bytes(b"\x80\x04 not read")
        (ckpt / "samples").mkdir()
        (ckpt / "samples" / f"edit_{step}.png").write_bytes(b"png")
    (root / "train_config.yaml").write_text(
        "model:\n  pretrained_model_name_or_path: Qwen/Qwen-Image-Edit\ntrain:\n  learning_rate: 0.0001\n"
    )
    if metrics == "trainer_state":
        (root / "trainer_state.json").write_text(
            json.dumps({"global_step": 1500, "log_history": LOG_HISTORY})
        )
    elif metrics == "jsonl":
        lines = [json.dumps(r) for r in LOG_HISTORY] + ["{not json"]
        (root / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if final:
        write_lora(root / "pytorch_lora_weights.safetensors", seed=9999)
    return root


def upload_tree(local: Path, endpoint: str, bucket: str, prefix: str) -> str:
    client = boto3.client("s3", endpoint_url=endpoint)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(local).as_posix()}")
    return f"s3://{bucket}/{prefix}"


@pytest.fixture
def local_output(tmp_path):
    return str(make_training_output(tmp_path / "run"))


@pytest.fixture
def s3_output(tmp_path, s3):
    endpoint, bucket = s3
    return upload_tree(make_training_output(tmp_path / "run"), endpoint, bucket, "runs/exp1")


@pytest.fixture(params=["local", "s3"])
def output_uri(request):
    return request.getfixturevalue(f"{request.param}_output")


def test_discovery_finds_checkpoints_config_metrics(output_uri):
    output = discover_training_output(output_uri)
    assert [(c.name, c.step) for c in output.checkpoints] == [
        ("checkpoint-500", 500),
        ("checkpoint-1000", 1000),
        ("checkpoint-1500", 1500),
    ]
    assert all(c.weights.name == "pytorch_lora_weights.safetensors" for c in output.checkpoints)
    assert output.config.relpath == "train_config.yaml"
    assert output.metric_names() == ["eval_loss", "loss", "psnr"]
    assert output.global_step == 1500
    assert output.checkpoints[0].samples[0].relpath == "checkpoint-500/samples/edit_500.png"
    assert output.checkpoints[0].weights.uri.startswith(output_uri.rstrip("/"))


def test_latest_picks_the_highest_step(output_uri):
    output = discover_training_output(output_uri)
    chosen = select_checkpoint(output, "latest")
    assert chosen.step == 1500 and default_tag(chosen) == "step-1500"


def test_best_metric_min_and_max(output_uri):
    output = discover_training_output(output_uri)
    assert select_checkpoint(output, "best:eval_loss").step == 1000
    assert select_checkpoint(output, "best:eval_loss:min").step == 1000
    assert select_checkpoint(output, "best:eval_loss:max").step == 500
    assert select_checkpoint(output, "best:psnr:max").step == 1500
    assert select_checkpoint(output, "best:loss:min").step == 1500


def test_release_files_from_s3(s3_output):
    output = discover_training_output(s3_output)
    chosen = select_checkpoint(output, "best:eval_loss")
    files = {f.path_in_repo: f.source_uri for f in release_files(output, chosen)}
    assert files == {
        "pytorch_lora_weights.safetensors": f"{s3_output}/checkpoint-1000/pytorch_lora_weights.safetensors",
        "train_config.yaml": f"{s3_output}/train_config.yaml",
        "samples/edit_1000.png": f"{s3_output}/checkpoint-1000/samples/edit_1000.png",
    }
    assert load_training_config(output)["train"]["learning_rate"] == 0.0001


def test_best_uses_the_value_logged_since_the_previous_checkpoint(local_output):
    output = discover_training_output(local_output)
    by_step = {c.step: c for c in output.checkpoints}
    assert metric_value(output, by_step[1000], "loss") == 0.5
    assert metric_value(output, by_step[1500], "eval_loss") == 0.4


def test_top_level_weights_are_the_final_checkpoint(tmp_path):
    output = discover_training_output(str(make_training_output(tmp_path / "run", final=True)))
    final = select_checkpoint(output, "latest")
    assert final.is_final and final.name == "final" and final.step == 1500
    files = {f.path_in_repo: f.source_uri for f in release_files(output, final)}
    assert files["pytorch_lora_weights.safetensors"] == str(
        tmp_path / "run" / "pytorch_lora_weights.safetensors"
    )
    # A named step still means the checkpoint directory, not the final weights.
    assert select_checkpoint(output, "step:1500").name == "checkpoint-1500"


def test_final_weights_without_step_information(tmp_path):
    write_lora(tmp_path / "pytorch_lora_weights.safetensors")
    (tmp_path / "config.json").write_text('{"rank": 4}')
    output = discover_training_output(str(tmp_path))
    final = select_checkpoint(output)
    assert final.step is None and default_tag(final) == "final"
    assert [f.path_in_repo for f in release_files(output, final)] == [
        "pytorch_lora_weights.safetensors",
        "train_config.json",
    ]


def test_missing_metric_names_the_metrics_that_exist(local_output):
    output = discover_training_output(local_output)
    with pytest.raises(ConfigError) as caught:
        select_checkpoint(output, "best:val_loss")
    message = str(caught.value)
    assert "no metric 'val_loss'" in message
    assert "eval_loss, loss, psnr" in message and "trainer_state.json" in message


def test_no_metrics_at_all_says_where_it_looked(tmp_path):
    root = make_training_output(tmp_path / "run", metrics="none")
    with pytest.raises(ConfigError, match="no metrics were found.*metrics.json"):
        select_checkpoint(discover_training_output(str(root)), "best:loss")


@pytest.mark.parametrize("select", ["", "newest", "best", "best:", "step:abc", "best:loss:sideways:x:y:"])
def test_bad_select_shows_the_accepted_forms(local_output, select):
    output = discover_training_output(local_output)
    with pytest.raises(
        ConfigError, match="Accepted forms: 'latest', 'step:N'.*'best:METRIC\\[:min\\|max\\]'"
    ):
        select_checkpoint(output, select)


def test_higher_is_better_names_need_a_direction(local_output):
    with pytest.raises(ConfigError, match="best:psnr:max or best:psnr:min"):
        select_checkpoint(discover_training_output(local_output), "best:psnr")
    assert parse_select("best:val_loss").direction == "min"
    assert parse_select("best:clip_score:max").direction == "max"
    with pytest.raises(ConfigError, match="must be min or max, not 'up'"):
        parse_select("best:loss:up")


def test_unknown_step_lists_the_steps(local_output):
    with pytest.raises(ConfigError, match="no checkpoint at step 42. Steps present: 500, 1000, 1500"):
        select_checkpoint(discover_training_output(local_output), "step:42")


def test_metrics_jsonl_with_a_bad_line_is_read_and_the_line_reported(tmp_path):
    output = discover_training_output(str(make_training_output(tmp_path / "run", metrics="jsonl")))
    assert select_checkpoint(output, "best:eval_loss").step == 1000
    assert output.problems == ("metrics.jsonl: 1 line(s) are not JSON and were skipped",)


def test_ambiguous_or_pickled_checkpoint_weights_are_errors_not_fallbacks(tmp_path):
    root = make_training_output(tmp_path / "run")
    newest = root / "checkpoint-1500"
    (newest / "pytorch_lora_weights.safetensors").rename(newest / "a.safetensors")
    write_lora(newest / "b.safetensors")
    output = discover_training_output(str(root))
    with pytest.raises(
        SourceError, match="checkpoint-1500 holds several .safetensors files \\(a.safetensors, b"
    ):
        select_checkpoint(output, "latest")

    for f in newest.glob("*.safetensors"):
        f.unlink()
    (newest / "pytorch_lora_weights.bin").write_bytes(b"\x80\x04")
    with pytest.raises(SourceError, match="only pickle-based weights.*never unpickles"):
        select_checkpoint(discover_training_output(str(root)), "latest")


def test_broken_weights_in_a_checkpoint_are_found_at_inspection(tmp_path):
    from hubpress.lora.weights import InvalidWeightsError, inspect_safetensors

    root = make_training_output(tmp_path / "run")
    write_broken(root / "checkpoint-1500" / "pytorch_lora_weights.safetensors", "truncated")
    chosen = select_checkpoint(discover_training_output(str(root)), "latest")
    with pytest.raises(InvalidWeightsError, match="truncated"):
        inspect_safetensors(chosen.weights.uri)


def test_top_level_samples_follow_the_checkpoint_step(tmp_path):
    root = tmp_path / "run"
    for step in (500, 1000):
        write_lora(root / f"checkpoint-{step}" / "pytorch_lora_weights.safetensors")
        (root / "samples").mkdir(parents=True, exist_ok=True)
        (root / "samples" / f"step_{step}_0.png").write_bytes(b"png")
    (root / "samples" / "reference.jpg").write_bytes(b"jpg")
    output = discover_training_output(str(root))
    first = next(c for c in output.checkpoints if c.step == 500)
    paths = sorted(f.path_in_repo for f in release_files(output, first))
    assert paths == ["pytorch_lora_weights.safetensors", "samples/reference.jpg", "samples/step_500_0.png"]


def test_empty_or_missing_output_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="empty or does not exist"):
        discover_training_output(str(tmp_path / "nothing"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SourceError, match="No checkpoints in"):
        select_checkpoint(discover_training_output(str(tmp_path)))


def test_manifest_round_trips(local_output):
    output = discover_training_output(local_output)
    chosen = select_checkpoint(output, "best:eval_loss")
    manifest = ReleaseManifest(
        source=output.root,
        checkpoint=chosen.name,
        checkpoint_step=chosen.step,
        select="best:eval_loss",
        files={"pytorch_lora_weights.safetensors": "ab" * 32},
        commit="c" * 40,
        tag=default_tag(chosen),
        flow_run_id="run-1",
    )
    data = json.loads(manifest.to_json())
    assert data["checkpoint_step"] == 1000 and data["tag"] == "step-1000" and data["hubpress_version"]
    assert ReleaseManifest.from_json(manifest.to_json()) == manifest


def test_metric_file_shapes_are_all_read():
    from hubpress.lora.metrics import parse_metrics

    problems: list[str] = []
    texts = {
        "metrics.json": json.dumps(
            {"100": {"loss": 1.0}, "200": {"loss": 0.5, "note": "text ignored"}}
        ).encode(),
        "checkpoint-200/trainer_state.json": json.dumps(
            {"global_step": 200, "log_history": [{"step": 200, "loss": 9.9, "eval_loss": 0.7}]}
        ).encode(),
        "metrics.jsonl": b'{"global_step": 300.0, "loss": 0.25}\n{"loss": 1.0}\n',
    }
    metrics, global_step = parse_metrics(texts, problems)
    # Top-level files win over a checkpoint's copy; records without a step are ignored.
    assert metrics == {100: {"loss": 1.0}, 200: {"loss": 0.5, "eval_loss": 0.7}, 300: {"loss": 0.25}}
    assert global_step == 200 and problems == []
    parse_metrics({"metrics.json": b"{oops"}, problems)
    assert problems and "metrics.json is not valid JSON" in problems[0]


def test_step_folders_of_samples_and_deepspeed_states_are_not_checkpoints(tmp_path):
    root = tmp_path / "run"
    for step in (500, 1000):
        write_lora(root / f"checkpoint-{step}" / "pytorch_lora_weights.safetensors")
        states = root / f"checkpoint-{step}" / f"global_step{step}"
        states.mkdir()
        (states / "mp_rank_00_model_states.pt").write_bytes(b"\x80\x04")
        (root / "samples" / f"step_{step}").mkdir(parents=True)
        (root / "samples" / f"step_{step}" / "0.png").write_bytes(b"png")
    output = discover_training_output(str(root))
    assert [c.name for c in output.checkpoints] == ["checkpoint-500", "checkpoint-1000"]
    latest = select_checkpoint(output, "latest")
    assert sorted(f.path_in_repo for f in release_files(output, latest)) == [
        "pytorch_lora_weights.safetensors",
        "samples/step_1000/0.png",
    ]


def test_a_newest_checkpoint_without_weights_names_the_step_to_release(tmp_path):
    # A save interrupted by the end of a job leaves checkpoint-1500 without its weights: hubpress
    # still refuses to pick another checkpoint on its own, and says which step:N would work.
    root = make_training_output(tmp_path / "run")
    (root / "checkpoint-1500" / "pytorch_lora_weights.safetensors").unlink()
    output = discover_training_output(str(root))
    for select in ("latest", "step:1500", "best:psnr:max"):
        with pytest.raises(SourceError, match="Cannot release checkpoint-1500") as caught:
            select_checkpoint(output, select)
        assert "release it with --select step:1000" in str(caught.value)
    assert select_checkpoint(output, "step:1000").name == "checkpoint-1000"


def test_the_hint_names_a_selection_that_releases_the_checkpoint_it_names(tmp_path):
    # The final weights carry the last step (1500), as checkpoint-1500 does: `--select step:1500`
    # picks checkpoint-1500, so a hint "release it with --select step:1500" for the final weights
    # repeated the selection that had just failed. The final weights are released by `latest`.
    root = make_training_output(tmp_path / "run", final=True)
    (root / "checkpoint-1500" / "pytorch_lora_weights.safetensors").unlink()
    output = discover_training_output(str(root))
    with pytest.raises(SourceError, match="Cannot release checkpoint-1500") as caught:
        select_checkpoint(output, "step:1500")
    assert "--select step:1500" not in str(caught.value)
    assert "release it with --select latest" in str(caught.value)
    assert select_checkpoint(output, "latest").is_final
