"""A token read from a file or a secret store often ends in a newline. HF_TOKEN was stripped, but
HUBPRESS_TOKEN (and the token argument, and a Secret block's value) went into the Authorization
header as it was: an outsider's HUBPRESS_TOKEN="$TOKEN_WITH_NEWLINE" failed with "Illegal header
value", and the line told them to check the endpoint and any proxy."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from hubpress.testdata.synth_lora import write_lora
from tests.conftest import WRITE_TOKEN, run_cli


@pytest.fixture
def private_lora(hub, tmp_path):
    repo = f"alice/token-ws-{uuid.uuid4().hex[:8]}"
    weights = write_lora(tmp_path / "pytorch_lora_weights.safetensors", seed=6)
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.create_repo(repo, private=True)
    api.upload_file(path_or_fileobj=str(weights), path_in_repo=weights.name, repo_id=repo)
    return repo, weights


@pytest.mark.parametrize("spelling", [f"{WRITE_TOKEN}\n", f" {WRITE_TOKEN}\r\n"], ids=["lf", "crlf"])
def test_a_hubpress_token_ending_in_a_newline_is_used_as_the_token(private_lora, monkeypatch, spelling):
    repo, weights = private_lora
    monkeypatch.setenv("HUBPRESS_TOKEN", spelling)
    code, out, err = run_cli("download-lora", repo)
    assert code == 0, err
    assert Path(out.strip()).read_bytes() == weights.read_bytes()


def test_the_token_argument_ending_in_a_newline_is_used_as_the_token(private_lora):
    from hubpress.api import download_lora

    repo, weights = private_lora
    assert Path(download_lora(repo, token=f"{WRITE_TOKEN}\n")).read_bytes() == weights.read_bytes()
