"""A preupload answer marking the plan's files `shouldIgnore` (a `.gitignore` in the repo, or an
answer that lies): huggingface_hub drops them from the commit with a warning. Before, the publish
made a commit without them (an empty commit in a new repo's history) and then failed verification
(exit 3). Now it stops before committing: one line naming the files, exit 1, nothing committed.
Through the CLI, tests/hubproxy.py rewriting the test Hub's preupload answers."""

from __future__ import annotations

import json

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import WRITE_TOKEN
from tests.e2e.test_hub_answers import cli, error_lines, name, ours

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _ignore_every_file(body: bytes) -> bytes:
    answer = json.loads(body)
    for entry in answer.get("files", []):
        entry["shouldIgnore"] = True
    return json.dumps(answer).encode()


def test_files_the_hub_would_ignore_stop_the_publish_before_the_commit(hub, hub_proxy, tmp_path):
    from huggingface_hub import HfApi

    source = tmp_path / "src"
    write_dataset(source, samples=4, image_size=16, seed=5)
    repo = name()
    HfApi(endpoint=hub.url, token=WRITE_TOKEN).create_repo(repo, repo_type="dataset")
    hub_proxy.rewrite(r"/preupload/", _ignore_every_file, count=100)

    run = cli("publish-dataset", str(source), repo, endpoint=hub_proxy.url, tmp_path=tmp_path)

    assert run.returncode == 1, run.stderr
    lines = error_lines(run)
    assert len(lines) == 1 and "shouldIgnore" in lines[0] and "Nothing was committed" in lines[0], run.stderr
    assert "manifest.json" in lines[0] or "README.md" in lines[0], lines[0]
    assert ours(hub, repo) == []
