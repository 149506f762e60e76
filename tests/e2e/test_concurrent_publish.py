"""Two publishes of the same data to the same target at the same time, as two people (or a schedule
and a person) start them: two CLI processes sharing one staging folder. Each run stages in its own
folder under a lease (hubpress.shards.runs), so neither sees the other's half-written manifest.
Both end in exit 0, or the one that lost the race says so in one line; never exit 3 ("the commit was
made, but verifying failed") and never a traceback. The target holds the data once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import WRITE_TOKEN

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {
        **os.environ,
        "HF_TOKEN": WRITE_TOKEN,
        "HUBPRESS_HUB_ENDPOINT": endpoint,
        "HUBPRESS_STAGING": str(tmp_path / "staging"),  # shared by both runs, as in one checkout
        "HUBPRESS_CACHE_DIR": str(tmp_path / "cache"),
        "PREFECT_API_URL": PREFECT_API_URL.value(),
    }


def publish_twice_at_once(
    tmp_path: Path, source: Path, target: str, endpoint: str
) -> list[tuple[int, str, str]]:
    """Both processes start before either ends; returns (exit code, stdout, stderr) of each."""
    args = [sys.executable, "-m", "hubpress.commands.cli", "publish-dataset", str(source), target, "--json"]
    env = _env(tmp_path, endpoint)
    procs = [
        subprocess.Popen(
            args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        outs.append((proc.returncode, out, err))
    return outs


LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d+ \| (WARNING|INFO) +\| |^warning: ")


def error_lines(stderr: str) -> list[str]:
    """stderr without the banner every command prints (where Prefect records the run)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("Prefect: ")]


def assert_won_or_lost_in_one_line(outs: list[tuple[int, str, str]]) -> list[dict]:
    """Every run exits 0, or 1 with one line; at least one publishes. Returns the winners' results."""
    results = []
    for code, out, err in outs:
        assert "Traceback" not in err, err[-3000:]
        assert "verification failed" not in err, err[-3000:]
        assert code in (0, 1), (code, err[-3000:])
        if code == 0:
            results.append(json.loads(out))
            # Each log line is one line: a re-plan's warning quoted the Hub's 412 over five.
            assert all(LOG_LINE.match(line) for line in error_lines(err)), err[-3000:]
        else:
            assert len(error_lines(err)) == 1, err[-3000:]
    assert results, [err[-2000:] for _, _, err in outs]
    # The data is committed once: the loser of the race re-plans against the winner's commit and
    # finds nothing to do (its manifest differed only in flow_run_id, which it committed).
    assert len({r["commit"] for r in results} - {None}) == 1, [r["commit"] for r in results]
    return results


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "src"
    write_dataset(src, samples=6, image_size=16, seed=8)
    return src


def test_two_concurrent_publishes_to_one_local_target_both_succeed(tmp_path, source, hub):
    target = tmp_path / "out" / "same"
    outs = publish_twice_at_once(tmp_path, source, str(target), hub.url)
    results = assert_won_or_lost_in_one_line(outs)
    manifest = json.loads((target / "manifest.json").read_text())  # whole, not half-written
    assert manifest and len({r["target"] for r in results}) == 1
    assert (target / "README.md").exists()
    assert not list((tmp_path / "staging").glob("runs/*")), "a run's own staging folder stayed behind"


def test_two_concurrent_publishes_to_one_hub_repo_both_succeed(tmp_path, source, hub):
    repo = f"alice/race-{uuid.uuid4().hex[:8]}"
    outs = publish_twice_at_once(tmp_path, source, repo, hub.url)
    results = assert_won_or_lost_in_one_line(outs)
    head = hub.head("dataset", repo)
    assert head in {r["commit"] for r in results}  # the repo's head is a commit one of them reported
    assert not list((tmp_path / "staging").glob("runs/*")), "a run's own staging folder stayed behind"
