"""What a publish reports is what happened: the API and the CLI publish the same bytes for the same
data (switching between them commits nothing), the API's result has one shape whether it commits
or not, and the sample counts are right even when this machine's records of earlier publishes are
gone (another machine, another cache): never "32 samples added" for a repo that holds them."""

from __future__ import annotations

import json
import uuid

import pytest

from hubpress.api import upload_editing_dataset
from hubpress.shards.run_result import summary_head
from hubpress.testdata.synth import write_dataset
from tests.conftest import OTHER_WRITE_TOKEN, run_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_api_and_cli_agree_and_counts_survive_a_lost_cache(hub, tmp_path, write_token, monkeypatch):
    src = tmp_path / "face_seg"
    write_dataset(src, samples=8, test_fraction=0.0, image_size=16, seed=21)
    repo = f"alice/agree-{uuid.uuid4().hex[:8]}"

    first = upload_editing_dataset(str(src), repo)  # the API asks for the folder layout
    assert first["commit"] and first["changes"] == {"added": 8, "changed": 0, "removed": 0}
    assert summary_head(first).startswith("8 samples added, 0 changed, 0 removed")

    # The CLI (layout auto) sees the same data: nothing to send, no commit.
    hub.reset_stats()
    code, out, err = run_cli("publish-dataset", str(src), repo, "--json")
    assert code == 0, err
    cli = json.loads(out)
    assert cli["commit"] is None and hub.stats.commits == 0

    # The API's no-op result has the keys and types of its publish result.
    again = upload_editing_dataset(str(src), repo)
    assert again["commit"] is None
    assert set(again) == set(first)
    assert {k: type(v) for k, v in again.items() if v is not None} == {
        k: type(first[k]) for k, v in again.items() if v is not None
    }

    # Another machine: no record of the earlier publishes. A dry run and an identical republish
    # report nothing added; adding 2 samples reports 2 added or "unknown", never 10.
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "other-machine-cache"))
    code, out, err = run_cli("publish-dataset", str(src), repo, "--dry-run", "--json")
    assert code == 0, err
    assert json.loads(out)["changes"] == {"added": 0, "changed": 0, "removed": 0}
    republished = upload_editing_dataset(str(src), repo)
    assert republished["commit"] is None and republished["changes"] == {
        "added": 0,
        "changed": 0,
        "removed": 0,
    }
    assert summary_head(republished) == "unchanged"

    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "third-machine-cache"))
    write_dataset(tmp_path / "more", samples=10, test_fraction=0.0, image_size=16, seed=21)
    grown = upload_editing_dataset(str(tmp_path / "more"), repo)
    assert grown["commit"] is not None
    assert grown["changes"] is None or grown["changes"]["added"] <= 2, grown["changes"]
    assert "10 samples added" not in summary_head(grown)


def test_a_dry_run_that_cannot_see_the_private_repo_says_so(hub, tmp_path, write_token, monkeypatch):
    src = tmp_path / "face_seg"
    write_dataset(src, samples=4, test_fraction=0.0, image_size=16, seed=22)
    repo = f"alice/unseen-{uuid.uuid4().hex[:8]}"
    upload_editing_dataset(str(src), repo)  # private

    code, out, err = run_cli("publish-dataset", str(src), repo, "--dry-run")
    assert code == 0, err
    assert "warning:" not in err
    assert "a publish would send at most 0 bytes" in out  # it can see that the repo holds it all

    for token, who in ((None, "no token"), (OTHER_WRITE_TOKEN, "the token from HF_TOKEN")):
        if token is None:
            monkeypatch.delenv("HF_TOKEN")
        else:
            monkeypatch.setenv("HF_TOKEN", token)
        code, out, err = run_cli("publish-dataset", str(src), repo, "--dry-run", "--json")
        assert code == 0, err
        [warning] = json.loads(out)["warnings"]
        assert f"{repo} could not be seen with {who}" in warning and "assumes an empty repo" in warning
        assert f"warning: {warning}" in err
        assert token is None or token not in out + err


def test_a_warning_the_result_carries_is_one_line_at_the_terminal(hub, tmp_path, write_token):
    """The command prints the result's warnings as `warning:` lines; the flow's log record of the
    same warning stays out of the console (it was printed twice, once in Prefect's log format)."""
    src = tmp_path / "face_seg"
    write_dataset(src, samples=2, test_fraction=0.0, image_size=16, seed=23)
    repo = f"alice/unseen-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("publish-dataset", str(src), repo, "--dry-run")
    assert code == 0, err
    [line] = [line for line in err.splitlines() if "could not be seen" in line]
    assert line.startswith(f"warning: {repo} could not be seen with the token from HF_TOKEN")
