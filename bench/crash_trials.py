"""Crash trials: kill -9 a publishing process at a random moment, run it again, and check the Hub.

Shared by tests/shards/test_crash_safety.py (a few trials) and bench/reliability.py (20 or more). Each
trial publishes version 1 of a tiny dataset to a fresh repo, then starts a process publishing
version 2 (`hubpress.api.upload_editing_dataset`, i.e. the publish-dataset flow) against a Prefect
API shared by all trials (no ephemeral server per process), kills it with SIGKILL after a random
delay, records what the process was doing then (building/staging, uploading, committing, done),
and runs the publish again to completion. It holds when:
- every commit on the branch is the initial commit, version 1 or version 2 in full (never a mix),
  and version 2 is committed exactly once;
- the final data files equal those of a clean publish of version 2 (same git blob ids).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PUBLISH = (
    "import sys; from hubpress.api import upload_editing_dataset; "
    "upload_editing_dataset(sys.argv[1], sys.argv[2])"
)


@dataclass
class TrialResult:
    trial: int
    delay: float
    phase: str  # what the killed process was doing: build/stage, upload, commit, finished
    held: bool
    problems: list[str] = field(default_factory=list)


def data_files(history_entry: dict) -> dict[str, str]:
    return {p: oid for p, oid in history_entry["files"].items() if p.startswith("data/")}


class CrashBed:
    """Two versions of a dataset, a server to publish to, and the environment of the processes."""

    def __init__(self, hub, prefect_api_url: str, token: str, workdir: Path, samples: int = 6):
        from hubpress.testdata.synth import write_dataset

        self.hub = hub
        self.workdir = Path(workdir)
        self.sources = []
        for version, seed in ((1, 101), (2, 202)):
            src = self.workdir / f"v{version}"
            write_dataset(src, samples=samples + version - 1, image_size=24, seed=seed)
            self.sources.append(src)
        self.env = {
            **os.environ,
            "HF_TOKEN": token,
            "HF_ENDPOINT": hub.url,
            "PREFECT_API_URL": prefect_api_url,
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "",
            "PYTHONPATH": str(ROOT),
        }
        self.env.pop("PREFECT_FLOWS_HEARTBEAT_FREQUENCY")
        self.reference: dict[str, str] = {}
        self.clean_seconds = 0.0

    def run(
        self, version: int, repo: str, staging: Path, kill_when=None, timeout: float = 120
    ) -> float | None:
        """Publish `version` to `repo`. With `kill_when` (a function polled every 10 ms), SIGKILL
        the process as soon as it returns True. Returns the run's wall time when it finished by
        itself, None when it was killed."""
        env = {**self.env, "HUBPRESS_STAGING": str(staging)}
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", _PUBLISH, str(self.sources[version - 1]), repo],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if kill_when is None:
            _, err = proc.communicate(timeout=300)
            if proc.returncode != 0:
                raise RuntimeError(f"publish of v{version} to {repo} failed:\n{err.decode()[-3000:]}")
            return time.monotonic() - started
        try:
            while time.monotonic() - started < timeout:
                if proc.poll() is not None:
                    return time.monotonic() - started  # finished before the kill
                if kill_when():
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return None
                time.sleep(0.01)
            raise RuntimeError(f"the kill condition never held within {timeout} s")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()

    def prepare(self) -> None:
        """A clean publish of version 2: the reference, and the run's duration for kill delays."""
        repo = f"alice/crash-ref-{uuid.uuid4().hex[:8]}"
        self.clean_seconds = self.run(2, repo, self.workdir / "staging-ref") or 0.0
        self.reference = data_files(self.hub.commit_history("dataset", repo)[0])

    def phase(self, sealed_before: int, staging: Path) -> str:
        """Where the run was when it died, from the Hub's request counts and the staging area.
        (The flow checks the repo before building, so Hub reads alone do not mean "planning".)"""
        requests = self.hub.stats.requests
        if self.hub.stats.commits:
            return "after commit (verify/tag)"
        if requests.get("commit"):
            return "commit"
        # A preupload question alone is not sending: built shards are offered while others still
        # build, so only the exchange that moves bytes counts as the upload phase: the LFS batch
        # and PUT, or on the Xet path the CAS token the client asks for right before it sends.
        if requests.get("lfs_batch") or requests.get("lfs_upload") or requests.get("xet_write_token"):
            return "upload"
        if _sealed_stages(staging) > sealed_before:
            return "plan"
        return "build/stage"

    def kill_condition(self, phase: str, staging: Path, rng: random.Random):
        """When to kill, for a target phase. Uploads and commits are stalled by the server for a
        moment so that the kill lands while the request is in flight (a stalled commit still
        lands after the client is gone, as on the real Hub when a response is lost)."""
        if phase == "build/stage":
            # The first built shard is offered to the Hub at once (early upload); holding that
            # question keeps its bytes from moving before the kill lands, however slow the poll.
            self.hub.arm_fault("preupload", "stall", count=1, stall_seconds=3)
            before = {p for p in staging.rglob("*")} if staging.exists() else set()
            return lambda: staging.exists() and any(p not in before for p in staging.rglob("*.parquet*"))
        if phase in ("upload", "commit"):
            # On the Xet path the bytes go to the CAS, not through the Hub: the write-token request
            # that precedes them is what the server can hold.
            endpoint = {"commit": "commit", "upload": "xet_write_token" if self.hub.xet else "lfs_upload"}[
                phase
            ]
            self.hub.arm_fault(endpoint, "stall", count=1, stall_seconds=1.5)
            return lambda: self.hub.stats.requests.get(endpoint, 0) > 0
        if phase == "after commit (verify/tag)":
            return lambda: self.hub.stats.commits > 0
        delay = rng.uniform(0.3, 1.0) * self.clean_seconds  # "random": anywhere in the run
        started = time.monotonic()
        return lambda: time.monotonic() - started >= delay

    def trial(self, number: int, rng: random.Random, phase: str = "random") -> TrialResult:
        repo = f"alice/crash-{number}-{uuid.uuid4().hex[:6]}"
        staging = self.workdir / f"staging-{number}"
        self.run(1, repo, staging)
        v1 = data_files(self.hub.commit_history("dataset", repo)[0])
        self.hub.reset_stats()
        self.hub.clear_faults()
        sealed_before = _sealed_stages(staging)
        started = time.monotonic()
        finished = self.run(2, repo, staging, kill_when=self.kill_condition(phase, staging, rng))
        delay = time.monotonic() - started
        landed = "exited before the kill" if finished is not None else self.phase(sealed_before, staging)
        self.hub.clear_faults()
        time.sleep(1.6)  # let a stalled request the dead client left behind play out
        self.run(2, repo, staging)  # run again after the crash
        problems = []
        history = self.hub.commit_history("dataset", repo)
        v2_commits = 0
        for commit in history:
            files = data_files(commit)
            if commit["title"] == "initial commit":
                continue
            if files == self.reference:
                v2_commits += 1
            elif files != v1:
                problems.append(f"commit {commit['id'][:10]} holds a mix of versions: {sorted(files)}")
        if v2_commits != 1:
            problems.append(f"version 2 committed {v2_commits} times")
        if data_files(history[0]) != self.reference:
            problems.append(
                f"the final state differs from a clean publish of version 2: {sorted(data_files(history[0]))} "
                f"vs {sorted(self.reference)}"
            )
        for required in ("README.md", "manifest.json"):
            if required not in history[0]["files"]:
                problems.append(f"{required} missing at the head")
        return TrialResult(number, round(delay, 2), f"{phase} -> {landed}", not problems, problems)


def _sealed_stages(staging: Path) -> int:
    """Runs that got past the build: the stage step writes manifest.json into the run's folder."""
    return len(list(staging.glob("runs/*/manifest.json"))) if staging.exists() else 0


PHASES = ("build/stage", "upload", "commit", "after commit (verify/tag)", "random")


def run_trials(hub, prefect_api_url: str, token: str, workdir: Path, trials: int, seed: int = 0):
    bed = CrashBed(hub, prefect_api_url, token, workdir)
    bed.prepare()
    rng = random.Random(seed)
    # Every phase is targeted in turn, so a few trials already cover each way a run can die.
    return bed, [bed.trial(i, rng, PHASES[i % len(PHASES)]) for i in range(trials)]
