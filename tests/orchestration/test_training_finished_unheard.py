"""`hubpress training-finished` to a server where nothing listens for `training.job.finished` (no
`hubpress serve` ever ran there, no work-pool deployment) said "Announced ..." and exited 0: the
outsider's release never happened, and a trigger created later does not see a past event. Now it is
one warning with the command to release by hand (exit 0, as ever), and an event is announced only
when an enabled trigger on the server expects it."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.conftest import harness_api, run_cli


@pytest.fixture
def api(prefect_harness):
    with httpx.Client(base_url=harness_api()["PREFECT_API_URL"], timeout=30) as client:
        yield client


def test_an_event_nobody_listens_for_is_not_announced_and_one_that_is_heard_is(tmp_path, api):
    run = tmp_path / "run 42"
    (run / "checkpoint-10").mkdir(parents=True)
    code, out, err = run_cli("training-finished", str(run), "--repo", "acme-org/lora")
    assert code == 0 and out == ""
    assert err.startswith("warning: nothing on http://127.0.0.1:") and len(err.splitlines()) == 1, err
    assert "listens for training.job.finished (run `hubpress serve` there" in err
    assert err.rstrip().endswith(f"release it by hand with: hubpress release '{run}' --repo acme-org/lora")

    created = api.post(
        "/automations/",
        json={
            "name": f"listens-{uuid.uuid4().hex[:8]}",
            "trigger": {"type": "event", "posture": "Reactive", "expect": ["training.*"], "threshold": 1},
            "actions": [{"type": "do-nothing"}],
            "enabled": True,
        },
    )
    created.raise_for_status()
    try:
        code, out, err = run_cli("training-finished", str(run), "--repo", "acme-org/lora")
        assert code == 0 and "warning" not in err, err
        assert err.startswith("Announced training.job.finished")
        assert json.loads(out)["payload"]["output_uri"] == str(run)
    finally:
        api.delete(f"/automations/{created.json()['id']}")
