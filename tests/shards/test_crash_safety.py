"""kill -9 the publishing process at random moments and run it again: the Hub only ever shows a
complete version, and the end state equals a clean publish. bench/reliability.py runs 20+ trials;
this runs a few (see bench/crash_trials.py for what each trial checks)."""

from __future__ import annotations

import pytest

from bench.crash_trials import run_trials
from tests.conftest import WRITE_TOKEN

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_killed_publishes_leave_old_or_new_never_a_mix(hub, tmp_path):
    from prefect.settings import PREFECT_API_URL

    # One trial per targeted phase: while building/staging, mid-upload, mid-commit. A kill after
    # the commit is a lost answer (tests/e2e/test_hub_answers.py); the random kill is left to
    # bench/reliability.py, which runs 20+ trials.
    bed, results = run_trials(hub, PREFECT_API_URL.value(), WRITE_TOKEN, tmp_path, trials=3, seed=8)
    failures = [(r.trial, r.phase, r.problems) for r in results if not r.held]
    assert not failures, failures
    landed = [r.phase.split(" -> ")[1] for r in results]
    # The targeted kills really landed where they were aimed (not after the process had exited).
    assert landed[0] == "build/stage" and landed[1] == "upload" and landed[2] == "commit", landed
    assert len(bed.reference) >= 1
