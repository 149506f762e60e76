"""A Hub without Xet storage (older and self-hosted Hubs; the test Hub with --no-xet), published to
by a client that takes Xet (hf_xet installed, HF_HUB_DISABLE_XET unset): the first upload finds no
Xet write token and every upload goes through LFS, said once in one line. The repo is created by
the first upload, so a run that fails before it leaves no empty repo behind."""

from __future__ import annotations

import json
import uuid

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import WRITE_TOKEN, requires_xet
from tests.e2e.test_hub_answers import cli, error_lines
from tests.hubserver import HubServer

pytestmark = [requires_xet, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture
def old_hub(tmp_path):
    """A test Hub of its own without Xet storage (--no-xet)."""
    with HubServer(tmp_path / "old-hub", tokens={WRITE_TOKEN: ("alice", "write")}, xet=False) as old:
        yield old


def publish(old_hub, tmp_path, samples: int, *args: str, **env: str):
    """One `hubpress publish-dataset` of a new synthetic dataset to `old_hub`: (repo, the run)."""
    src = tmp_path / "src"
    write_dataset(src, samples=samples, image_size=32, seed=8)
    repo = f"alice/noxet-{uuid.uuid4().hex[:8]}"
    env = {"HF_ENDPOINT": old_hub.url, **env}  # the verify step reads the repo back through datasets
    return repo, cli("publish-dataset", str(src), repo, *args, endpoint=old_hub.url, tmp_path=tmp_path, **env)


def test_a_publish_to_a_hub_without_xet_goes_through_lfs(old_hub, tmp_path):
    old = old_hub
    repo, out = publish(old, tmp_path, 4, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["commit"] == old.head("dataset", repo) and result["transfer"] == "lfs"
    said = [line for line in error_lines(out) if "does not serve Xet storage" in line]
    assert len(said) == 1 and "uploading through LFS instead" in said[0], out.stderr
    assert "Traceback" not in out.stderr and WRITE_TOKEN not in out.stderr
    files = old.commit_history("dataset", repo)[0]["files"]
    shards = [p for p in files if p.endswith(".parquet")]
    assert shards and all(old.is_lfs("dataset", repo, p) for p in shards)
    lfs = [p for p in files if old.is_lfs("dataset", repo, p)]  # the shards and the preview image
    assert old.stats.requests["lfs_upload"] == len(lfs) and old.stats.commits == 1


def test_a_run_that_fails_before_its_first_upload_leaves_no_repo(old_hub, tmp_path):
    repo, out = publish(
        old_hub, tmp_path, 30, "--max-shard-size", "12KB", HUBPRESS_HUB_LFS_FILES_PER_COMMIT="3"
    )
    assert out.returncode == 1 and "at most 3 LFS files per commit" in out.stderr
    assert old_hub.head("dataset", repo) is None and "repo_create" not in old_hub.stats.requests
