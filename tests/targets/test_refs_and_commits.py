"""Refs and commits: an existing tag is found before committing; a failure after the commit still
names the commit (message, exit status 3, --json); commit URLs are absolute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from huggingface_hub import HfApi

from hubpress.errors import CommittedButFailed, PublishError
from hubpress.flows.params import PublishLoraParams
from hubpress.flows.publish_lora import publish_lora
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import WRITE_TOKEN, harness_api, requires_xet

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_a_tag_on_another_commit_stops_the_publish_before_it_commits(hub, tmp_path, write_token):
    repo = f"alice/tags-{uuid.uuid4().hex[:8]}"
    first = publish_lora(
        PublishLoraParams(src_path=str(write_lora(tmp_path / "a.safetensors", seed=1)), target=repo, tag="v1")
    )
    head = hub.head("model", repo)
    assert first["commit"] == head and first["commit_url"].startswith(hub.url + "/")
    hub.reset_stats()
    with pytest.raises(PublishError, match="already exists.*nothing was committed"):
        publish_lora(
            PublishLoraParams(
                src_path=str(write_lora(tmp_path / "b.safetensors", seed=2)), target=repo, tag="v1"
            )
        )
    assert hub.head("model", repo) == head and hub.stats.commits == 0
    # The same weights again: nothing to commit, the tag already names the head: fine.
    again = publish_lora(PublishLoraParams(src_path=str(tmp_path / "a.safetensors"), target=repo, tag="v1"))
    assert again["commit"] is None


def test_a_tag_on_another_local_version_is_found_before_committing(tmp_path):
    target = tmp_path / "out"
    publish_lora(
        PublishLoraParams(
            src_path=str(write_lora(tmp_path / "a.safetensors", seed=1)), target=str(target), tag="v1"
        )
    )
    before = os.path.realpath(target)
    with pytest.raises(PublishError, match="already exists"):
        publish_lora(
            PublishLoraParams(
                src_path=str(write_lora(tmp_path / "b.safetensors", seed=2)), target=str(target), tag="v1"
            )
        )
    assert os.path.realpath(target) == before


def test_a_failure_after_the_commit_names_the_commit(hub, tmp_path, write_token, monkeypatch):
    # The tag keeps failing through every attempt: short backoffs (this is not about the backoff).
    monkeypatch.setenv("HUBPRESS_HUB_RETRY_BASE_SECONDS", "0.01")
    repo = f"alice/after-{uuid.uuid4().hex[:8]}"
    weights = write_lora(tmp_path / "a.safetensors", seed=3)
    hub.arm_fault("tag_create", "500", count=50)
    try:
        with pytest.raises(CommittedButFailed) as failed:
            publish_lora(PublishLoraParams(src_path=str(weights), target=repo, tag="v1"))
    finally:
        hub.clear_faults()
    head = hub.head("model", repo)
    assert failed.value.commit == head and head[:12] in str(failed.value)
    assert failed.value.commit_url.startswith(hub.url) and "\n" not in str(failed.value)

    # The CLI: exit status 3, one line naming the commit, and --json names it too.
    weights2 = write_lora(tmp_path / "b.safetensors", seed=4)
    hub.arm_fault("tag_create", "500", count=50)
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "hubpress.commands.cli",
                "publish-lora",
                str(weights2),
                repo,
                "--tag",
                "v2",
                "--json",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "HF_TOKEN": WRITE_TOKEN, **harness_api()},
            timeout=300,
        )
    finally:
        hub.clear_faults()
    new_head = hub.head("model", repo)
    assert new_head != head and out.returncode == 3, out.stderr
    assert json.loads(out.stdout)["commit"] == new_head
    assert f"committed {new_head[:12]}" in out.stderr and "Traceback" not in out.stderr
    assert [t.name for t in HfApi(token=WRITE_TOKEN).list_repo_refs(repo).tags] == []


@pytest.mark.lfs_only
def test_uploaded_bytes_leave_out_content_the_hub_already_held(hub, tmp_path, write_token):
    repo = f"alice/bytes-{uuid.uuid4().hex[:8]}"
    weights = write_lora(tmp_path / "a.safetensors", seed=7)
    size = weights.stat().st_size
    first = publish_lora(PublishLoraParams(src_path=str(weights), target=repo))
    assert first["commit"] and first["already_present_files"] == []
    assert first["uploaded_bytes"] >= size
    hub.reset_stats()
    # The same bytes under a second name: committed, but the LFS object is not sent again.
    second = publish_lora(
        PublishLoraParams(src_path=str(weights), target=repo, remote_name="copy.safetensors")
    )
    assert second["commit"] and "copy.safetensors" in second["uploaded_files"]
    assert second["already_present_files"] == ["copy.safetensors"]
    assert second["already_present_bytes"] == size
    assert second["uploaded_bytes"] < size  # only the card travelled
    assert hub.stats.requests.get("lfs_upload", 0) == 0


@requires_xet
def test_on_xet_sent_bytes_report_what_crossed_the_wire_after_deduplication(hub, tmp_path, write_token):
    """On the Xet path nobody asks whether an object is "already held" (the LFS batch question):
    hf_xet deduplicates chunk by chunk, and its report says what crossed the wire. A file of which
    no chunk was new is one the Hub held whole: reported as already held, as on LFS."""
    repo = f"alice/xetbytes-{uuid.uuid4().hex[:8]}"
    weights = write_lora(tmp_path / "a.safetensors", seed=7, hidden=512, dtype="F32")  # ~260 kB
    size = weights.stat().st_size
    first = publish_lora(PublishLoraParams(src_path=str(weights), target=repo))
    assert first["transfer"] == "xet" and first["uploaded_bytes"] >= size
    assert first["sent_bytes"] >= size * 0.9 and first["deduped_bytes"] < size * 0.1
    # What hubpress reports is what the Hub received: the CAS's growth and the commit's inline files.
    assert first["sent_bytes"] == pytest.approx(hub.stats.upload_bytes, rel=0.02)
    hub.reset_stats()
    # The same bytes under a second name: a file of the commit, but its chunks are stored already.
    second = publish_lora(
        PublishLoraParams(src_path=str(weights), target=repo, remote_name="copy.safetensors")
    )
    assert second["commit"] and "copy.safetensors" in second["uploaded_files"]
    assert second["already_present_files"] == ["copy.safetensors"] and second["uploaded_bytes"] < size
    assert second["deduped_bytes"] >= size * 0.9 and second["sent_bytes"] < size * 0.1
    stats = hub.stats
    assert stats.requests["lfs_batch"] == 0 and stats.xet_bytes < size * 0.1
    assert abs(second["sent_bytes"] - stats.upload_bytes) < 1024  # a shard's bookkeeping at most
    assert hub.read_file("model", repo, "copy.safetensors") == weights.read_bytes()
