"""HF_HUB_OFFLINE=1, as a training node without the network sets it. huggingface_hub and `datasets`
hand over cached files offline (load_editing_dataset did), but download-lora of a LoRA it had
downloaded retried "transient failure (OfflineModeIsEnabled)" six times over 12 s, then told the
outsider to check HF_ENDPOINT and the network; a publish to the Hub did the same. Now: the cached
copy, still checked against the blob name the cache gives it; anything else that needs the Hub is
one line naming HF_HUB_OFFLINE, at once."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import WRITE_TOKEN, harness_api, lora_on_the_hub, run_cli


def offline_cli(*args: str) -> subprocess.CompletedProcess:
    """huggingface_hub reads HF_HUB_OFFLINE when it is imported: a process of its own (on the
    harness's Prefect server when one runs, not a temporary one of its own)."""
    env = {**os.environ, **harness_api(), "HF_HUB_OFFLINE": "1", "HF_TOKEN": WRITE_TOKEN}
    return subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", *args], env=env, capture_output=True, text=True
    )


@pytest.fixture
def lora_repo(hub, tmp_path):
    return lora_on_the_hub(hub, tmp_path, "offline", seed=5)


def test_download_lora_offline_hands_over_the_checked_cached_copy(lora_repo, write_token):
    repo, weights = lora_repo
    code, online, err = run_cli("download-lora", repo)
    assert code == 0, err
    offline = offline_cli("download-lora", repo)
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.strip() == online.strip()
    assert Path(offline.stdout.strip()).read_bytes() == weights.read_bytes()

    blob = Path(os.path.realpath(online.strip()))  # bytes that are not the blob the cache names
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")
    tampered = offline_cli("download-lora", repo, "--json")
    assert tampered.returncode == 1 and "Traceback" not in tampered.stderr
    assert tampered.stderr.startswith("error: HF_HUB_OFFLINE is set and the cached copy of")
    assert '"kind": "DownloadCheckFailed"' in tampered.stdout
    assert not blob.exists() and not Path(online.strip()).exists()


def test_what_needs_the_hub_offline_is_one_line_at_once(lora_repo, tmp_path, prefect_harness):
    repo, _ = lora_repo
    write_dataset(tmp_path / "src", samples=1)
    uncached = offline_cli("download-lora", repo, "--revision", "v7")
    publish = offline_cli("publish-dataset", str(tmp_path / "src"), f"alice/offline-{uuid.uuid4().hex[:8]}")
    for run, needle in (
        (uncached, "no copy of pytorch_lora_weights.safetensors of model repo"),
        (publish, "hubpress cannot check the token for dataset repo"),
    ):
        assert run.returncode == 1 and run.stdout == ""
        assert run.stderr.startswith("error: HF_HUB_OFFLINE is set") and needle in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "retrying" not in run.stderr
