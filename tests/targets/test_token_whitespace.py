"""A token read from a file or a secret store often ends in a newline. HF_TOKEN was stripped, but
HUBPRESS_TOKEN (and the token argument, and a Secret block's value) went into the Authorization
header as it was: an outsider's HUBPRESS_TOKEN="$TOKEN_WITH_NEWLINE" failed with "Illegal header
value", and the line told them to check the endpoint and any proxy."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import WRITE_TOKEN, lora_on_the_hub, run_cli


@pytest.fixture
def private_lora(hub, tmp_path):
    return lora_on_the_hub(hub, tmp_path, "token-ws", seed=6, private=True)


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
