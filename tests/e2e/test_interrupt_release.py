"""SIGTERM while a release's commit is in flight: one line saying what the repo may hold.

The release flow commits from its `publish` task. Stopped there, the command said its line, and
Prefect's console also printed the task's crash record ("Task run 'publish-...' - Finished in state
Crashed('Execution was aborted by a termination signal.')"), which the one-line rule leaves to the
Prefect UI. The staged checkpoint is kept, so the run again copies nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from hubpress.testdata.synth_lora import write_lora
from tests.commands.test_first_hour import survivors
from tests.conftest import WRITE_TOKEN, harness_api

COMMIT = r"/api/models/[^/]+/[^/]+/commit/"


@pytest.mark.usefixtures("prefect_harness")
def test_a_release_terminated_during_its_commit_says_one_line(tmp_path, hub):
    repo = f"alice/release-stopped-{uuid.uuid4().hex[:8]}"
    write_lora(tmp_path / "run" / "checkpoint-10" / "pytorch_lora_weights.safetensors", seed=3)
    hub.arm_fault(COMMIT, "stall", stall_seconds=30)
    marker = uuid.uuid4().hex
    env = {
        **os.environ,
        "HF_TOKEN": WRITE_TOKEN,
        "HUBPRESS_TEST_MARKER": marker,
        "HUBPRESS_STAGING": str(tmp_path / "staging"),
        "HUBPRESS_CACHE_DIR": str(tmp_path / "cache"),
        **harness_api(),  # the session's Prefect server: no temporary one in the child
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubpress.commands.cli", "release", "run", "--repo", repo],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not hub.stats.faults:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the commit was never sent"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGTERM)  # `kill`, timeout(1), a supervisor stopping the job
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 143, err
    said = [line for line in err.splitlines() if line.strip() and not line.startswith("Prefect: ")]
    assert said == [
        f"terminated (SIGTERM): {repo} (model) may hold this run's commit (it was sent before the interrupt): look at its "
        "history, or run the command again (an unchanged repo gets no second commit)."
    ], err
    assert out == ""
    assert survivors(marker) == []
    stages = [p.name for p in (tmp_path / "staging").iterdir() if p.name.startswith("release-")]
    assert len(stages) == 1 and (tmp_path / "staging" / stages[0] / "_complete.json").exists()
