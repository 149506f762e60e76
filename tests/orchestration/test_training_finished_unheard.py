"""`hubpress training-finished` to a server where nothing listens for `training.job.finished` (no
`hubpress serve` ever ran there, no work-pool deployment) said "Announced ..." and exited 0: the
outsider's release never happened, and a trigger created later does not see a past event. Now it is
one warning with the command to release by hand (exit 0, as ever), and an event is announced only
when an enabled trigger on the server expects it."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from tests.conftest import harness_api, run_cli


@pytest.fixture
def api(prefect_harness):
    with httpx.Client(base_url=harness_api()["PREFECT_API_URL"], timeout=30) as client:
        yield client


def _delete(api, automation: str) -> None:
    """Delete an automation, asking again while the server answers 503 (its database busy with the
    automation that just fired): one left behind listens for every later test of the session."""
    status = None
    for _ in range(20):
        status = api.delete(f"/automations/{automation}").status_code
        if status in (204, 404):
            return
        time.sleep(0.5)
    raise AssertionError(f"automation {automation} could not be deleted (HTTP {status})")


def test_an_event_nobody_listens_for_is_not_announced_and_one_that_is_heard_is(tmp_path, api):
    run = tmp_path / "run 42"
    (run / "checkpoint-10").mkdir(parents=True)
    code, out, err = run_cli("training-finished", str(run), "--repo", "acme-org/lora")
    assert code == 0 and out == ""
    assert err.startswith("warning: nothing on http://127.0.0.1:") and len(err.splitlines()) == 1, err
    assert "listens for training.job.finished (run `hubpress serve` there" in err
    assert err.rstrip().endswith(f"release it by hand with: hubpress release '{run}' --repo acme-org/lora")

    _announced_while_listening(api, run, {"type": "event", "posture": "Reactive", "expect": ["training.*"]})


def _automation(api, name: str, trigger: dict) -> str:
    created = api.post(
        "/automations/",
        json={"name": name, "trigger": trigger, "actions": [{"type": "do-nothing"}], "enabled": True},
    )
    created.raise_for_status()
    return created.json()["id"]


def _announced_while_listening(api, run, trigger: dict) -> None:
    """training-finished announces the event while an automation with `trigger` is on the server."""
    made = _automation(api, f"listens-{uuid.uuid4().hex[:8]}", {**trigger, "threshold": 1})
    try:
        code, out, err = run_cli("training-finished", str(run), "--repo", "acme-org/lora")
        assert code == 0 and "warning" not in err, err
        assert err.startswith("Announced training.job.finished")
        assert json.loads(out)["payload"]["output_uri"] == str(run)
    finally:
        _delete(api, made)


def test_a_trigger_expecting_every_event_hears_it_so_it_is_announced(tmp_path, api):
    """Prefect's event trigger with an empty `expect` reacts to every event (its `match` narrows
    them): it was taken for nothing listening, and the release it would start was dropped."""
    run = tmp_path / "run 43"
    (run / "checkpoint-10").mkdir(parents=True)
    # Narrowed by `match` to training runs' events: expecting every event of the harness's server
    # (each task run's), it fired without pause and its delete met 503s until the test gave up.
    trigger = {"type": "event", "posture": "Reactive", "expect": []}
    _announced_while_listening(
        api, run, {**trigger, "match": {"prefect.resource.id": "hubpress.training-run.*"}}
    )


def test_a_glob_trigger_past_the_first_page_of_automations_is_found(api, monkeypatch):
    """The server matches `expect` as a glob (`*` anywhere, `!` negates) and lists automations a
    page at a time: a listener named later than a page's worth, or spelt `training.*.finished`,
    was missed."""
    from hubpress.orchestration import events

    monkeypatch.setattr(events, "AUTOMATIONS_PAGE", 1)
    url = harness_api()["PREFECT_API_URL"]
    tag = uuid.uuid4().hex[:8]
    reactive = {"type": "event", "posture": "Reactive", "threshold": 1}
    made = [
        _automation(api, f"aaaa-{tag}-other", {**reactive, "expect": ["other.thing"]}),
        _automation(api, f"aaaa-{tag}-not-this", {**reactive, "expect": ["!training.job.finished"]}),
    ]
    try:
        assert events.listens_for(url, "training.job.finished", timeout=30) is False
        made.append(_automation(api, f"zzzz-{tag}-glob", {**reactive, "expect": ["training.*.finished"]}))
        assert events.listens_for(url, "training.job.finished", timeout=30) is True
    finally:
        for automation in made:
            _delete(api, automation)
