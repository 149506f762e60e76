"""Every hubpress deployment, served from one process (`hubpress serve` or `python -m hubpress.deployments.serve`).

- publish-dataset/manual and publish-lora/manual: started by hand from the Prefect UI (the form is
  the flow's pydantic parameter model; the server refuses values the schema rejects).
- release-training-run/on-training-finished: started by a `training.job.finished` event whose
  payload carries output_uri, repo_id and optionally tag, base_model, select.
- refresh-dataset/nightly: a cron example (03:00 UTC), created INACTIVE with example parameters; activate it in the UI
  after filling in its parameters. It also carries a DISABLED trigger example: a run when an
  upstream dataset's publish materializes it (`prefect.asset.materialization.succeeded` about
  `hf://datasets/YOUR-ORG/YOUR-UPSTREAM`); with the parameters filled in, set the upstream's key
  and enable it in the UI.
- publish-dataset/scheduled: publish a growing dataset (S3 or a shared disk) every night (02:00
  UTC), created INACTIVE with example parameters; at most one run at a time (a run due while
  another is still running is cancelled: concurrency limit 1, CANCEL_NEW).

prefect.yaml describes the same deployments for `prefect deploy` onto a work pool, under distinct
names (`pool_name`: publish-dataset/manual-pool): a `serve` process only ever runs the deployments
it serves, so it never picks up (and crashes) a run meant for a work pool's workers.
"""

from __future__ import annotations

import logging
from typing import Any

TRAINING_FINISHED_EVENT = "training.job.finished"
TAGS = ["hubpress"]
REFRESH_CRON = "0 3 * * *"

PUBLISH_DATASET = "publish-dataset/manual"
PUBLISH_LORA = "publish-lora/manual"
RELEASE_TRAINING_RUN = "release-training-run/on-training-finished"
REFRESH_DATASET = "refresh-dataset/nightly"
SCHEDULED_PUBLISH = "publish-dataset/scheduled"
SCHEDULED_PUBLISH_CRON = "0 2 * * *"
# What the scheduled publish starts with: replace both with your own (UI: Edit deployment, or
# `prefect deployment run publish-dataset/scheduled --param params='{...}'` to try it once).
# A run whose target is still YOUR-ORG/... stops at its start and says to fill them in
# (hubpress.flows.params.refuse_example_parameters).
SCHEDULED_PUBLISH_EXAMPLE = {"source": "s3://YOUR-BUCKET/datasets/edits", "target": "YOUR-ORG/edits"}
# The nightly refresh's, likewise: without any, a schedule switched on would start runs that crash
# binding `params` (a traceback in the serve log, every night).
REFRESH_EXAMPLE = {"config": "/path/to/multidatabackend.json", "target": "YOUR-ORG/refreshed"}
# One run at a time: a run that comes due while the previous one still runs is cancelled, so two
# nights never publish over each other (the next night picks up whatever the cancelled one missed).
SCHEDULED_PUBLISH_CONCURRENCY = {"limit": 1, "collision_strategy": "CANCEL_NEW"}

# prefect.yaml's deployments are these names plus POOL_SUFFIX.
POOL_SUFFIX = "-pool"

log = logging.getLogger("hubpress")


def pool_name(served: str) -> str:
    """The work-pool deployment (prefect.yaml) that matches a served one."""
    return served + POOL_SUFFIX


def release_trigger_parameters() -> dict[str, Any]:
    """How an event's payload becomes release-training-run's `params`.

    Prefect renders a template that is one `{{ expression }}` through `| tojson`, so it keeps its
    JSON type: a missing optional field becomes null (the flow's default applies), not the text
    "None". The parentheses keep `or` from binding after that filter."""
    return {
        "params": {
            "output_uri": "{{ event.payload.output_uri }}",
            "repo_id": "{{ event.payload.repo_id }}",
            "tag": "{{ (event.payload.get('tag') or None) }}",
            "base_model": "{{ (event.payload.get('base_model') or None) }}",
            "select": "{{ (event.payload.get('select') or 'latest') }}",
        }
    }


def release_trigger():
    from prefect.events import DeploymentEventTrigger

    return DeploymentEventTrigger(
        name="Release when training finishes",
        description=f"Runs release-training-run for every `{TRAINING_FINISHED_EVENT}` event.",
        expect={TRAINING_FINISHED_EVENT},
        match={"prefect.resource.id": "*"},
        parameters=release_trigger_parameters(),
    )


# A publish materializes its repo as a Prefect asset (hubpress.orchestration.assets); a refresh can
# start when one of its upstreams is materialized, instead of (or besides) at a fixed hour.
ASSET_MATERIALIZED_EVENT = "prefect.asset.materialization.succeeded"
REFRESH_UPSTREAM_EXAMPLE = "hf://datasets/YOUR-ORG/YOUR-UPSTREAM"


def refresh_upstream_trigger(upstream: str = REFRESH_UPSTREAM_EXAMPLE, enabled: bool = False):
    """Run the refresh when `upstream` (an asset key) is materialized by a publish. The served
    example is disabled and names a placeholder: set the key, then enable it."""
    from prefect.events import DeploymentEventTrigger

    return DeploymentEventTrigger(
        name="Refresh when the upstream is published",
        description=f"Runs refresh-dataset when `{upstream}` is materialized ({ASSET_MATERIALIZED_EVENT}).",
        expect={ASSET_MATERIALIZED_EVENT},
        match={"prefect.resource.id": upstream},
        enabled=enabled,
    )


def _deployment_name(full: str) -> str:
    return full.split("/", 1)[1]


def scheduled_publish_parameters() -> dict[str, Any]:
    """The scheduled publish's example parameters: the flow's full form, defaults included."""
    from hubpress.flows.params import PublishDatasetParams, deployment_parameters

    return deployment_parameters(PublishDatasetParams(**SCHEDULED_PUBLISH_EXAMPLE))


def refresh_parameters() -> dict[str, Any]:
    """The nightly refresh's example parameters: the flow's full form, defaults included."""
    from hubpress.flows.params import RefreshParams, deployment_parameters

    return deployment_parameters(RefreshParams(**REFRESH_EXAMPLE))


def build_deployments() -> list:
    """RunnerDeployments for every hubpress flow."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from hubpress.flows.publish_dataset import publish_dataset
    from hubpress.flows.publish_lora import publish_lora
    from hubpress.flows.refresh_dataset import refresh_dataset
    from hubpress.flows.release_training_run import release_training_run

    # A module entrypoint (hubpress.flows.publish_dataset.publish_dataset): each run imports the
    # installed flow, whatever the serving process's working directory holds, instead of loading a
    # file by a path relative to it.
    common: dict[str, Any] = {
        "tags": TAGS,
        "enforce_parameter_schema": True,
        "entrypoint_type": EntrypointType.MODULE_PATH,
    }
    deployments = [
        publish_dataset.to_deployment(
            name=_deployment_name(PUBLISH_DATASET),
            description="Publish an image-editing dataset to the Hub or a local directory. Start it from the UI.",
            **common,
        ),
        publish_lora.to_deployment(
            name=_deployment_name(PUBLISH_LORA),
            description="Publish LoRA safetensors weights to a Hub model repo. Start it from the UI.",
            **common,
        ),
        release_training_run.to_deployment(
            name=_deployment_name(RELEASE_TRAINING_RUN),
            description=f"Release a finished training run; started by `{TRAINING_FINISHED_EVENT}` events.",
            triggers=[release_trigger()],
            **common,
        ),
        refresh_dataset.to_deployment(
            name=_deployment_name(REFRESH_DATASET),
            description="Refresh a published dataset from its upstream sources. An example schedule "
            "(03:00 UTC), inactive: fill in the parameters, then activate it in the UI.",
            schedules=[Cron(REFRESH_CRON, timezone="UTC", active=False)],
            triggers=[refresh_upstream_trigger()],
            parameters=refresh_parameters(),
            **common,
        ),
        publish_dataset.to_deployment(
            name=_deployment_name(SCHEDULED_PUBLISH),
            description="Publish a growing dataset from S3 or a shared disk every night (02:00 UTC), "
            "inactive: fill in source and target, then activate the schedule. An unchanged night costs "
            "a listing and one Hub round trip; one run at a time (a run due while another runs is cancelled).",
            schedules=[Cron(SCHEDULED_PUBLISH_CRON, timezone="UTC", active=False)],
            parameters=scheduled_publish_parameters(),
            concurrency_limit=ConcurrencyLimitConfig(**SCHEDULED_PUBLISH_CONCURRENCY),
            **common,
        ),
    ]
    return deployments


def ui_address() -> str | None:
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    return PREFECT_UI_URL.value() or (PREFECT_API_URL.value() or "").removesuffix("/api") or None


# How often `serve` asks the server for runs to start (Prefect's default: 10 s). A run that an
# event or the UI creates waits for the next poll: most of the event-to-release time was this wait.
SERVE_POLL_SECONDS = 1.0


def serve_all(
    limit: int | None = None, pause_on_shutdown: bool = False, poll_seconds: float | None = None
) -> None:
    """Serve every deployment until interrupted.

    Runs are picked up within `poll_seconds` (default SERVE_POLL_SECONDS, 1 s) of being created.
    pause_on_shutdown defaults to False (Prefect's default is True): a `training.job.finished`
    event that arrives while this process is down then still creates a run, which starts when
    serving resumes, instead of being dropped by a paused deployment."""
    import os

    from prefect import serve
    from prefect.settings import PREFECT_RUNNER_POLL_FREQUENCY, temporary_settings

    deployments = build_deployments()
    address = ui_address()
    if address:
        print(f"hubpress: serving {len(deployments)} deployment(s); Prefect UI: {address}", flush=True)
    if poll_seconds is None:  # PREFECT_RUNNER_POLL_FREQUENCY, when the user set it, wins
        poll_seconds = None if os.environ.get("PREFECT_RUNNER_POLL_FREQUENCY") else SERVE_POLL_SECONDS
    overrides = {PREFECT_RUNNER_POLL_FREQUENCY: poll_seconds} if poll_seconds else {}
    with temporary_settings(overrides):
        serve(*deployments, limit=limit, pause_on_shutdown=pause_on_shutdown)


if __name__ == "__main__":
    serve_all()
