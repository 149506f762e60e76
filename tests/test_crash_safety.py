"""kill -9 the publishing process at random moments and run it again: the Hub only ever shows a
complete version, and the end state equals a clean publish. bench/reliability.py runs 20+ trials;
this runs a few (see bench/crash_trials.py for what each trial checks)."""

from __future__ import annotations

import pytest

from bench.crash_trials import run_trials
from tests.conftest import WRITE_TOKEN

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.mark.xfail(
    reason="open finding: a kill after the commit, then a re-run, can end on data files that differ "
    "from a clean publish of the same version (seen in 2 of 4 trials); under investigation",
    strict=False,
)
def test_killed_publishes_leave_old_or_new_never_a_mix(hub, tmp_path):
    from prefect.settings import PREFECT_API_URL

    bed, results = run_trials(hub, PREFECT_API_URL.value(), WRITE_TOKEN, tmp_path, trials=3, seed=8)
    failures = [(r.trial, r.phase, r.problems) for r in results if not r.held]
    assert not failures, failures
    assert len(bed.reference) >= 1
