"""A training output whose files are symbolic links leading out of the run directory.

A config.yaml linked to a credentials file, a sample linked to any file of this machine, or
checkpoint weights linked elsewhere would be read and published as the run's own. Each is
listed in the release's problems and never read (as a source's `path_outside_root`).
"""

from __future__ import annotations

import json

import pytest

from hubpress.testdata.synth_lora import write_lora
from tests.conftest import run_cli

SECRET = "aws_secret_access_key: not-a-real-secret-but-never-published"


@pytest.mark.usefixtures("prefect_harness")
def test_release_reads_no_link_that_leaves_the_run_directory(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "credentials").write_text(SECRET)
    outside_weights = write_lora(elsewhere / "other.safetensors", seed=3)
    run = tmp_path / "run"
    write_lora(run / "checkpoint-10" / "pytorch_lora_weights.safetensors", seed=2)
    (run / "checkpoint-20").mkdir()
    (run / "checkpoint-20" / "pytorch_lora_weights.safetensors").symlink_to(outside_weights)
    (run / "config.yaml").symlink_to(elsewhere / "credentials")
    (run / "checkpoint-10" / "samples").mkdir()
    (run / "checkpoint-10" / "samples" / "a.png").symlink_to(elsewhere / "credentials")
    target = tmp_path / "out" / "lora"

    code, out, err = run_cli("release", str(run), "--repo", str(target), "--json")

    assert code == 0, err
    result = json.loads(out)
    assert result["checkpoint"] == "checkpoint-10", result  # checkpoint-20's weights are not its own
    problems = " ".join(result["problems"])
    for name in (
        "config.yaml",
        "checkpoint-10/samples/a.png",
        "checkpoint-20/pytorch_lora_weights.safetensors",
    ):
        assert f"'{name}' is a symbolic link to a file outside the training output" in problems, problems
    published = [p for p in target.rglob("*") if p.is_file()]
    assert published, "the release published nothing"
    for path in published:
        assert SECRET.encode() not in path.read_bytes(), path
    assert not (target / "train_config.yaml").exists()
    assert SECRET not in out + err


def test_a_config_swapped_for_a_link_out_after_the_listing_is_not_read(tmp_path):
    """The listing saw the run's own config.yaml; a link to a credentials file put in its place
    before the release reads it is refused in one line, not read as the run's config."""
    from hubpress.lora.release import discover_training_output, load_training_config
    from hubpress.storage.listed_reads import NotTheListedFile

    (tmp_path / "credentials").write_text(SECRET)
    run = tmp_path / "run"
    write_lora(run / "checkpoint-10" / "pytorch_lora_weights.safetensors", seed=2)
    (run / "config.yaml").write_text("learning_rate: 0.0001\n")
    output = discover_training_output(str(run))
    (run / "config.yaml").unlink()
    (run / "config.yaml").symlink_to(tmp_path / "credentials")
    with pytest.raises(NotTheListedFile, match="config.yaml") as refused:
        load_training_config(output)
    assert SECRET not in str(refused.value)
