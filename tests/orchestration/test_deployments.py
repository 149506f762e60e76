"""prefect.yaml (for `prefect deploy` onto a work pool) and deployments/serve.py (for `hubpress
serve`) describe the same deployments: names, entrypoints, schema enforcement and the trigger."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from hubpress.deployments.serve import (
    PUBLISH_DATASET,
    PUBLISH_LORA,
    REFRESH_CRON,
    REFRESH_DATASET,
    REFRESH_EXAMPLE,
    RELEASE_TRAINING_RUN,
    SCHEDULED_PUBLISH,
    SCHEDULED_PUBLISH_CONCURRENCY,
    SCHEDULED_PUBLISH_CRON,
    SCHEDULED_PUBLISH_EXAMPLE,
    TRAINING_FINISHED_EVENT,
    build_deployments,
    pool_name,
    release_trigger_parameters,
)
from hubpress.deployments.steps import require_checkout

ROOT = Path(__file__).resolve().parents[2]


def _yaml_deployments() -> dict[str, dict]:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    found = {}
    for entry in config["deployments"]:
        module_path, func = entry["entrypoint"].split(":")
        module = module_path.removesuffix(".py").replace("/", ".")
        found[(module, func, entry["name"])] = entry
    return found


def _flow_name(module: str, func: str) -> str:
    return getattr(importlib.import_module(module), func).name


SERVED = {PUBLISH_DATASET, PUBLISH_LORA, RELEASE_TRAINING_RUN, REFRESH_DATASET, SCHEDULED_PUBLISH}


def test_pool_and_served_deployments_have_distinct_names():
    """A `serve` process must never pick up a run meant for the work pool: no name is shared."""
    served = {f"{d.flow_name}/{d.name}" for d in build_deployments()}
    assert served == SERVED
    in_yaml = {f"{_flow_name(m, f)}/{name}" for (m, f, name) in _yaml_deployments()}
    assert in_yaml == {pool_name(s) for s in SERVED}
    assert not in_yaml & served


def test_prefect_deploy_refuses_to_run_without_the_checkout(monkeypatch):
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert config["build"] == [
        {"hubpress.deployments.steps.require_checkout": {"directory": "{{ $HUBPRESS_CHECKOUT }}"}}
    ]
    for bad in ("", "  ", "relative/dir"):
        with pytest.raises(SystemExit) as refused:
            require_checkout(bad)
        message = str(refused.value.code)
        assert message.startswith("error: HUBPRESS_CHECKOUT") and "\n" not in message
    assert require_checkout("/opt/hubpress") == {"directory": "/opt/hubpress"}


def test_prefect_yaml_names_the_served_deployments():
    by_full_name = {}
    for (module, func, name), entry in _yaml_deployments().items():
        flow_name = _flow_name(module, func)
        by_full_name[f"{flow_name}/{name.removesuffix('-pool')}"] = entry
    assert set(by_full_name) == SERVED
    assert all(entry["enforce_parameter_schema"] for entry in by_full_name.values())

    (trigger,) = by_full_name[RELEASE_TRAINING_RUN]["triggers"]
    assert trigger["expect"] == [TRAINING_FINISHED_EVENT]
    assert trigger["parameters"] == release_trigger_parameters()

    (schedule,) = by_full_name[REFRESH_DATASET]["schedules"]
    assert schedule["cron"] == REFRESH_CRON and schedule["active"] is False
    assert by_full_name[REFRESH_DATASET]["parameters"] == {"params": REFRESH_EXAMPLE}

    scheduled = by_full_name[SCHEDULED_PUBLISH]
    (schedule,) = scheduled["schedules"]
    assert schedule["cron"] == SCHEDULED_PUBLISH_CRON and schedule["active"] is False
    assert scheduled["concurrency_limit"] == SCHEDULED_PUBLISH_CONCURRENCY
    assert scheduled["parameters"] == {"params": SCHEDULED_PUBLISH_EXAMPLE}


def test_the_scheduled_publish_is_its_own_inactive_deployment_with_one_run_at_a_time():
    deployments = {f"{d.flow_name}/{d.name}": d for d in build_deployments()}
    scheduled, manual = deployments[SCHEDULED_PUBLISH], deployments[PUBLISH_DATASET]
    assert SCHEDULED_PUBLISH != PUBLISH_DATASET and scheduled.flow_name == manual.flow_name
    (schedule,) = scheduled.schedules
    assert schedule.active is False and schedule.schedule.cron == SCHEDULED_PUBLISH_CRON
    assert scheduled.concurrency_limit == 1
    assert scheduled.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    # The example parameters pass the deployment's own schema (enforced by the server).
    params = scheduled.parameters["params"]
    assert {k: params[k] for k in SCHEDULED_PUBLISH_EXAMPLE} == SCHEDULED_PUBLISH_EXAMPLE
    assert manual.schedules in (None, []) and manual.concurrency_limit is None


def test_served_deployments_enforce_the_schema_and_carry_the_trigger():
    deployments = {f"{d.flow_name}/{d.name}": d for d in build_deployments()}
    assert {PUBLISH_DATASET, PUBLISH_LORA, RELEASE_TRAINING_RUN} <= set(deployments)
    assert all(d.enforce_parameter_schema for d in deployments.values())
    (trigger,) = deployments[RELEASE_TRAINING_RUN].triggers
    assert trigger.expect == {TRAINING_FINISHED_EVENT}
    assert trigger.parameters == release_trigger_parameters()
    # The UI form is the params model: required fields and enums come from pydantic.
    schema = deployments[PUBLISH_DATASET]._parameter_openapi_schema.model_dump()
    assert schema["required"] == ["params"]
    if REFRESH_DATASET in deployments:
        (schedule,) = deployments[REFRESH_DATASET].schedules
        assert schedule.active is False
