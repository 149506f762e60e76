"""Hostile names through the flows and the CLI: each class of #13's security breaks, driven end to
end (the pure gate is tested in tests/storage/test_names.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import boto3
import pytest
from huggingface_hub import HfApi

from hubpress.api import upload_lora_safetensors
from hubpress.errors import ConfigError, HubpressError
from hubpress.flows.params import ReleaseTrainingRunParams
from hubpress.flows.release_training_run import release_training_run
from hubpress.refresh.config import parse_refresh_config
from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import OTHER_WRITE_TOKEN, WRITE_TOKEN, harness_api

pytestmark = pytest.mark.usefixtures("prefect_harness")
TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HUBPRESS_TOKEN")


def hubpress(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **harness_api(), **(env or {})},
        cwd=cwd,
        timeout=300,
    )


def one_line_error(out) -> str:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert "Traceback" not in out.stderr and 1 <= len(lines) <= 2, out.stderr
    return out.stderr


def test_release_s3_keys_that_would_leave_staging_are_reported_not_written(
    hub, s3, tmp_path, write_token, monkeypatch
):
    endpoint, bucket = s3
    # The release's temporary folders (where it fetches the checkpoint's files) go under tmp_path,
    # searched whole below with everything else it writes to.
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    client = boto3.client("s3", endpoint_url=endpoint)
    weights = write_lora(tmp_path / "w.safetensors", seed=3)
    client.upload_file(str(weights), bucket, "run/checkpoint-10/pytorch_lora_weights.safetensors")
    client.put_object(Bucket=bucket, Key="run/samples/ok.png", Body=b"png-ok")
    marker = f"escape-{uuid.uuid4().hex[:8]}.png"
    hostile = [f"run/samples/../../../../{marker}", "run/samples//double.png", "run/samples/./dot.png"]
    for key in hostile:
        client.put_object(Bucket=bucket, Key=key, Body=b"attacker bytes")
    listed = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert set(hostile) <= listed  # the store really holds these keys

    repo = f"alice/rel-{uuid.uuid4().hex[:8]}"
    result = release_training_run(ReleaseTrainingRunParams(output_uri=f"s3://{bucket}/run", repo_id=repo))
    assert result["commit"]
    files = set(HfApi(token=WRITE_TOKEN).list_repo_files(repo))
    assert "samples/ok.png" in files and not any("double" in f or "dot.png" in f for f in files)
    problems = " ".join(result["problems"])
    for key in hostile:  # each hostile key is reported, none is dropped silently
        assert repr(key.removeprefix("run/")) in problems
    # Every folder the release writes in (staging and caches under the session's folder, its
    # temporary folders, the working directory) is searched whole; a key's `..` steps can only
    # climb out of one, and what they name lands directly in a folder above it, up to /. (Searching
    # all of /tmp instead, a shared machine's millions of files, took 16-25 s.)
    staging = Path(os.environ["HUBPRESS_STAGING"])
    written_in = {staging.parent, tmp_path, Path.cwd()}
    for base in written_in:
        assert not any(marker in names for _, dirs, files in os.walk(base) for names in (dirs, files))
    for above in {folder for base in written_in for folder in base.parents}:
        assert not (above / marker).exists(), above / marker


def test_publish_lora_extra_destination_outside_the_target_is_refused_before_anything(hub, tmp_path):
    weights = write_lora(tmp_path / "w.safetensors")
    (tmp_path / "x.txt").write_text("x")
    target = tmp_path / "out"
    for dest in ("../../x", "/abs/x", "a//b", ".git/config"):
        out = hubpress("publish-lora", str(weights), str(target), "--extra", f"{tmp_path / 'x.txt'}={dest}")
        assert out.returncode == 2 and repr(dest) in one_line_error(out)
    assert not target.exists() and not (tmp_path.parent / "x").exists()

    repo = f"alice/extra-{uuid.uuid4().hex[:8]}"
    out = hubpress(
        "publish-lora",
        str(weights),
        repo,
        "--extra",
        f"{tmp_path / 'x.txt'}=../../x",
        env={"HF_TOKEN": WRITE_TOKEN},
    )
    assert out.returncode == 2 and "'../../x'" in one_line_error(out)
    assert hub.head("model", repo) is None  # checked before create_repo: nothing was sent


def test_refresh_backend_id_cannot_name_a_folder_outside_the_cache(tmp_path):
    backend = {
        "id": "../../x",
        "type": "huggingface",
        "dataset_name": "alice/up",
        "caption_strategy": "huggingface",
        "metadata_backend": "huggingface",
        "caption_column": "caption",
        "cache_dir": str(tmp_path / "cache"),
    }
    with pytest.raises(ConfigError, match=r"backend id '\.\./\.\./x'"):
        parse_refresh_config(backend)
    out = hubpress("refresh", "--help")
    assert out.returncode == 0


def test_a_token_given_to_the_api_never_reaches_another_thread(hub, tmp_path, monkeypatch):
    """Thread A publishes with token= (alice); thread B, at the same time, has no token of its own
    and HF_TOKEN names bob. B must publish as bob, never as alice, and os.environ never changes."""
    for var in TOKEN_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_TOKEN", OTHER_WRITE_TOKEN)
    weights = write_lora(tmp_path / "w.safetensors")
    tag = uuid.uuid4().hex[:8]
    results: dict[str, object] = {}
    environ_before = dict(os.environ)
    start = threading.Barrier(2)

    def publish(who: str, repo: str, token: str | None) -> None:
        start.wait()
        try:
            results[who] = upload_lora_safetensors(str(weights), repo, token=token)
        except Exception as exc:  # recorded, asserted below
            results[who] = exc

    threads = [
        threading.Thread(target=publish, args=("a", f"alice/tok-{tag}", WRITE_TOKEN)),
        threading.Thread(target=publish, args=("b", f"alice/tok-b-{tag}", None)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(results["a"], str)  # alice's token wrote alice's repo
    assert hub.head("model", f"alice/tok-{tag}") is not None
    # B had bob's token only: the server refuses bob in alice's namespace, and B never borrowed A's.
    assert isinstance(results["b"], HubpressError) and hub.head("model", f"alice/tok-b-{tag}") is None
    assert dict(os.environ) == environ_before


def test_resolve_token_in_another_thread_never_sees_a_call_token(monkeypatch):
    from hubpress.settings import call_token, resolve_token

    for var in TOKEN_VARS:
        monkeypatch.delenv(var, raising=False)
    inside, done = threading.Event(), threading.Event()
    seen: list[object] = []

    def holder() -> None:
        with call_token("hf_secret_A"):
            seen.append(resolve_token().value)
            inside.set()
            done.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    inside.wait(10)
    seen.append(resolve_token().value)
    done.set()
    t.join()
    assert seen == ["hf_secret_A", None] and "HUBPRESS_TOKEN" not in os.environ


@pytest.mark.parametrize("where", ["same", "inside", "parent"])
def test_a_local_target_overlapping_the_source_is_refused(tmp_path, where):
    src = tmp_path / "data" / "src"
    write_dataset(src, samples=2)
    target = {"same": src, "inside": src / "out", "parent": src.parent}[where]
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    out = hubpress("publish-dataset", str(src), str(target))
    assert out.returncode == 2 and "source" in one_line_error(out)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == before
    assert src.is_dir() and not src.is_symlink()


@pytest.mark.parametrize(
    ("option", "value"), [("--tag", "../x"), ("--tag", "a..b"), ("--revision", "refs/pr/1"), ("--tag", "v 1")]
)
def test_tags_and_revisions_are_checked_as_git_refs_before_any_work(hub, tmp_path, option, value):
    src = tmp_path / "src"
    write_dataset(src, samples=2)
    repo = f"alice/ref-{uuid.uuid4().hex[:8]}"
    out = hubpress("publish-dataset", str(src), repo, option, value, env={"HF_TOKEN": WRITE_TOKEN})
    assert out.returncode == 2 and "not a valid git ref" in one_line_error(out)
    assert hub.head("dataset", repo) is None
