"""A served release (a deployment run from the Prefect UI, a `training.job.finished` trigger) whose
staging (HUBPRESS_STAGING on the worker) lies inside its local target. The CLI refuses this in
one line before Prefect starts (tests/commands/test_staging_inside_target.py), but the check was
the CLI's preflight alone: the flow itself staged into the target and went on. The flow now says
the same line, before anything is staged."""

from __future__ import annotations

import pytest

from hubpress.errors import ConfigError
from hubpress.flows.params import ReleaseTrainingRunParams
from hubpress.flows.release_training_run import release_training_run
from hubpress.testdata.synth_lora import write_lora

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_a_served_release_whose_staging_is_inside_its_local_target_is_refused(tmp_path, monkeypatch):
    write_lora(tmp_path / "run" / "checkpoint-1" / "pytorch_lora_weights.safetensors", rank=4)
    target = tmp_path / "lora"
    monkeypatch.setenv("HUBPRESS_STAGING", str(target / "staging"))
    params = ReleaseTrainingRunParams(output_uri=str(tmp_path / "run"), repo_id=str(target))
    with pytest.raises(ConfigError, match="is inside the local target"):
        release_training_run(params)
    assert not (target / "staging").exists()
