"""Downloads are checked: `download-lora` returns a file only when its bytes are what the Hub lists
(sha256) and, for weights, when they pass the publish's safetensors header check; otherwise one
line, exit 1, and the file is gone from the cache. A --filename that leaves the repo is refused
in one line, for a local target and for the Hub, in every spelling. Through the CLI, against the
test Hub (whose stored object is swapped, as a lying server or proxy would)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import uuid
from pathlib import Path

import pytest

from hubpress.testdata.synth_lora import write_lora
from tests.conftest import HUB_URL, WRITE_TOKEN, run_cli

WEIGHTS = "pytorch_lora_weights.safetensors"

ESCAPES = [
    "../../etc/passwd",
    "/etc/passwd",
    "..\\..\\etc\\passwd",
    "%2e%2e/%2e%2e/etc/passwd",
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "sub/../../../etc/passwd",
    "file:///etc/passwd",
    "./../etc/passwd",
    "sub//passwd",
    "C:/Windows/win.ini",
    "x\x00.safetensors",
]


def _upload(repo: str, files: dict[str, bytes]) -> str:
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=HUB_URL, token=WRITE_TOKEN)
    api.create_repo(repo, exist_ok=True)
    ops = [CommitOperationAdd(path, data) for path, data in files.items()]
    return api.create_commit(repo, ops, commit_message="weights").oid


def _lora_bytes(tmp_path) -> bytes:
    path = tmp_path / WEIGHTS
    write_lora(path)
    return path.read_bytes()


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("filename", ESCAPES)
def test_a_filename_leaving_the_repo_is_refused_locally_and_from_the_hub(
    hub, write_token, tmp_path, filename
):
    local = tmp_path / "target"
    local.mkdir()
    (local / WEIGHTS).write_bytes(_lora_bytes(tmp_path))
    repo = f"alice/dl-escape-{uuid.uuid4().hex[:8]}"
    _upload(repo, {WEIGHTS: (local / WEIGHTS).read_bytes()})
    for where in (str(local), repo):
        code, out, err = run_cli("download-lora", where, "--filename", filename)
        assert code == 1, (where, out, err)
        line = _one_error_line(err)
        assert "--filename" in line, line
        assert "root:" not in out + err


def test_a_symlink_in_a_local_target_is_not_followed_out_of_it(tmp_path):
    local = tmp_path / "target"
    local.mkdir()
    os.symlink("/etc/passwd", local / WEIGHTS)
    code, out, err = run_cli("download-lora", str(local))
    assert code == 1 and "outside" in _one_error_line(err) and "root:" not in out


@pytest.mark.parametrize("lie", ["pickle_same_size", "flipped_byte"])
def test_bytes_other_than_the_listed_sha256_are_refused_and_removed(hub, write_token, tmp_path, lie):
    good = _lora_bytes(tmp_path)
    repo = f"alice/dl-lie-{uuid.uuid4().hex[:8]}"
    _upload(repo, {WEIGHTS: good})
    oid = hashlib.sha256(good).hexdigest()
    stored = hub.store.get("model", repo).lfs_path(oid)
    if lie == "pickle_same_size":
        bad = pickle.dumps({"w": b"x" * len(good)})[: len(good)].ljust(len(good), b".")
    else:
        bad = good[:-1] + bytes([good[-1] ^ 0xFF])
    stored.write_bytes(bad)  # the server now answers other bytes than it lists

    code, out, err = run_cli("download-lora", repo, "--json")
    assert code == 1, out
    line = _one_error_line(err)
    assert "sha256" in line and "removed from the cache" in line
    assert json.loads(out.strip().splitlines()[-1])["kind"] == "DownloadCheckFailed"
    cache = os.environ["HF_HOME"]
    for dirpath, _, files in os.walk(cache):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and os.path.getsize(path) == len(bad):
                assert Path(path).read_bytes() != bad, f"{path} kept the refused bytes"
    # Asked again, it is refused again: nothing was left for a later run to find.
    code, _, err = run_cli("download-lora", repo)
    assert code == 1 and "sha256" in _one_error_line(err)


def test_committed_weights_that_fail_the_header_check_are_refused_and_removed(hub, write_token, tmp_path):
    good = _lora_bytes(tmp_path)
    pickled = pickle.dumps({"lora": list(range(100))})
    repo = f"alice/dl-pickle-{uuid.uuid4().hex[:8]}"
    _upload(repo, {WEIGHTS: pickled, "adapter_model.safetensors": good[:100]})
    for filename in (WEIGHTS, "adapter_model.safetensors"):
        code, out, err = run_cli("download-lora", repo, "--filename", filename)
        assert code == 1, out
        line = _one_error_line(err)
        assert "removed from the cache" in line and filename in line
        assert not out.strip()


def test_an_honest_download_still_works(hub, write_token, tmp_path):
    good = _lora_bytes(tmp_path)
    repo = f"alice/dl-ok-{uuid.uuid4().hex[:8]}"
    _upload(repo, {WEIGHTS: good, "train_config.yaml": b"rank: 4\n"})
    code, out, err = run_cli("download-lora", repo)
    assert code == 0, err
    assert Path(out.strip()).read_bytes() == good
    code, out, err = run_cli("download-lora", repo, "--filename", "train_config.yaml")
    assert code == 0, err
    assert Path(out.strip()).read_bytes() == b"rank: 4\n"
