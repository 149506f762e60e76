"""The bed the preflight tests share: a dataset, LoRA weights and a refresh configuration in a
fresh working directory, no token in the environment, the session's Prefect harness running."""

from __future__ import annotations

import json
import os

import pytest

from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora

TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HUBPRESS_TOKEN")


@pytest.fixture
def bed(tmp_cwd, monkeypatch, prefect_harness):
    for var in TOKEN_VARS:
        monkeypatch.delenv(var, raising=False)
    # `--json` quiets Prefect's logging for the rest of the (command's) process: keep that from
    # leaking out of these in-process commands into later tests' subprocesses.
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"))
    write_dataset(tmp_cwd / "src", samples=4, image_size=16)
    write_lora(tmp_cwd / "lora" / "pytorch_lora_weights.safetensors", rank=2)
    (tmp_cwd / "not-a-dir").write_text("a file")
    (tmp_cwd / "backends.json").write_text(
        json.dumps([{"id": "a", "type": "huggingface", "dataset_name": "org/up"}])
    )
    (tmp_cwd / "out").mkdir()
    return tmp_cwd
