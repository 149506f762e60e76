"""Publishes as Prefect asset materializations: the events arrive on the (harness) server with the
commit, revision and counts, name the upstream as a referenced asset, and an unchanged publish
emits none. Read back through the Prefect client's events API (POST /events/filter)."""

import time
import uuid
from datetime import UTC

import pytest

from hubpress.flows.params import PublishDatasetParams, PublishLoraParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.flows.publish_lora import publish_lora
from hubpress.orchestration.assets import asset_key, source_key, target_key
from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")

SUCCEEDED = "prefect.asset.materialization.succeeded"
REFERENCED = "prefect.asset.referenced"


def asset_events(resource_id: str, event: str, expect: int, attempts: int = 60) -> list:
    """The events `event` about `resource_id` the server stored, once at least `expect` are there
    (the client sends events in the background and the server persists them in batches); gives up
    after `attempts` polls and returns what it has, so a missing event fails the assertion."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    flt = EventFilter(
        occurred=EventOccurredFilter(since=_since()),
        event=EventNameFilter(name=[event]),
        resource=EventResourceFilter(id=[resource_id]),
    )
    events: list = []
    with get_client(sync_client=True) as client:
        for _ in range(attempts):
            events = client.read_events(filter=flt, limit=50).events
            if len(events) >= expect:
                break
            time.sleep(0.5)
    return events


def _since():
    from datetime import datetime, timedelta

    return datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def staging(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))


def test_dataset_publish_materializes_its_repo_with_commit_and_counts(hub, tmp_path, staging, write_token):
    src = tmp_path / "src"
    write_dataset(src, samples=8, test_fraction=0.25, image_size=24, seed=3)
    repo = f"alice/assets-{uuid.uuid4().hex[:8]}"
    result = publish_dataset(PublishDatasetParams(source=str(src), target=repo))
    assert result["commit"]

    key = f"hf://datasets/{repo}"
    [event] = asset_events(key, SUCCEEDED, expect=1)
    assert event.payload["commit"] == result["commit"] == hub.head("dataset", repo)
    assert event.payload["revision"] == "main"
    assert event.payload["samples"] == {"train": 6, "test": 2} and event.payload["sample_count"] == 8
    assert event.payload["files_uploaded"] == len(result["uploaded_files"]) > 0
    upstream = source_key(src)
    assert upstream == f"file://{src}"
    assert [r.id for r in event.related if r.role == "asset"] == [upstream]
    assert asset_events(upstream, REFERENCED, expect=1)

    # The same data again: no commit, so no materialization (a trigger on the repo does not fire).
    again = publish_dataset(PublishDatasetParams(source=str(src), target=repo))
    assert again["commit"] is None
    assert len(asset_events(key, SUCCEEDED, expect=2, attempts=6)) == 1


def test_lora_publish_through_the_cli_materializes_a_model_asset(hub, tmp_path, write_token):
    write_lora(tmp_path / "pytorch_lora_weights.safetensors", rank=4)
    repo = f"alice/assets-lora-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("publish-lora", str(tmp_path), repo, "--json")
    assert code == 0, err
    [event] = asset_events(f"hf://models/{repo}", SUCCEEDED, expect=1)
    assert event.payload["commit"] == hub.head("model", repo)
    assert [r.id for r in event.related if r.role == "asset"] == [f"file://{tmp_path}"]


def test_local_directory_target_is_a_file_asset(tmp_path, staging):
    src, out = tmp_path / "src", tmp_path / "out dir"
    write_dataset(src, samples=4, test_fraction=0.0, image_size=16, seed=4)
    result = publish_dataset(PublishDatasetParams(source=str(src), target=str(out)))
    key = target_key(str(out), "dataset")
    assert key == f"file://{tmp_path}/out_dir"
    [event] = asset_events(key, SUCCEEDED, expect=1)
    assert event.payload["commit"] == result["commit"]


def test_asset_keys_are_valid_prefect_keys():
    from prefect.assets import Asset

    assert target_key("org/name", "model") == "hf://models/org/name"
    assert source_key("s3://bucket/some prefix/") == "s3://bucket/some_prefix/"
    assert source_key("S3://bucket/x") == "s3://bucket/x"
    long = asset_key("file:///" + "a" * 600)
    other = asset_key("file:///" + "a" * 599 + "b")
    assert len(long) == 512 and long != other
    weird = asset_key("file:///tmp/x\n#?%[]{}|\\^`'\"<>&\x07y")
    assert Asset(key=weird).key == weird and Asset(key=long).key == long


def test_publish_lora_dry_run_materializes_nothing(hub, tmp_path, write_token):
    write_lora(tmp_path / "pytorch_lora_weights.safetensors", rank=4)
    repo = f"alice/assets-dry-{uuid.uuid4().hex[:8]}"
    publish_lora(PublishLoraParams(src_path=str(tmp_path), target=repo, dry_run=True))
    assert asset_events(f"hf://models/{repo}", SUCCEEDED, expect=1, attempts=6) == []


def test_refresh_deployments_carry_the_same_disabled_upstream_trigger():
    """Served and work-pool refresh deployments offer the trigger on an upstream's materialization,
    disabled until the operator names the upstream; the key it matches is the one a publish emits."""
    import yaml

    from hubpress.deployments.serve import (
        ASSET_MATERIALIZED_EVENT,
        REFRESH_DATASET,
        REFRESH_UPSTREAM_EXAMPLE,
        build_deployments,
        refresh_upstream_trigger,
    )
    from tests.orchestration.test_deployments import ROOT

    served = {f"{d.flow_name}/{d.name}": d for d in build_deployments()}[REFRESH_DATASET]
    (trigger,) = served.triggers
    assert trigger.expect == {ASSET_MATERIALIZED_EVENT} == {SUCCEEDED}
    assert trigger.match.model_dump() == {"prefect.resource.id": REFRESH_UPSTREAM_EXAMPLE}
    assert trigger.enabled is False
    assert target_key("YOUR-ORG/YOUR-UPSTREAM", "dataset") == REFRESH_UPSTREAM_EXAMPLE

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    [entry] = [d for d in config["deployments"] if d["entrypoint"].endswith(":refresh_dataset")]
    [pool_trigger] = entry["triggers"]
    assert pool_trigger["expect"] == [ASSET_MATERIALIZED_EVENT]
    assert pool_trigger["match"] == {"prefect.resource.id": REFRESH_UPSTREAM_EXAMPLE}
    assert pool_trigger["enabled"] is False
    enabled = refresh_upstream_trigger("hf://datasets/org/up", enabled=True)
    assert enabled.enabled and enabled.match.model_dump() == {"prefect.resource.id": "hf://datasets/org/up"}


def test_an_upstream_publish_starts_the_refresh_deployment_that_follows_it(
    hub, tmp_path, staging, write_token
):
    """The trigger, enabled on the upstream's key, makes the server create a refresh run when a
    publish materializes that upstream (the run is only created here: no process serves it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.deployments.runner import EntrypointType

    from hubpress.deployments.serve import refresh_upstream_trigger
    from hubpress.flows.params import RefreshParams, deployment_parameters
    from hubpress.flows.refresh_dataset import refresh_dataset
    from tests.refresh.test_refresh_flow import hf_backend

    upstream = f"alice/upstream-{uuid.uuid4().hex[:8]}"
    # Like the nightly deployment, the trigger runs the refresh with the deployment's parameters:
    # without them the server refuses to create the run ('params' is a required property).
    params = RefreshParams(config=hf_backend(upstream, tmp_path), target=f"{upstream}-refreshed")
    deployment = refresh_dataset.to_deployment(
        name=f"follows-{upstream.split('/')[1]}",
        parameters=deployment_parameters(params),
        triggers=[refresh_upstream_trigger(target_key(upstream, "dataset"), enabled=True)],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    deployment_id = deployment.apply()

    src = tmp_path / "src"
    write_dataset(src, samples=4, test_fraction=0.0, image_size=16, seed=5)
    assert publish_dataset(PublishDatasetParams(source=str(src), target=upstream))["commit"]
    asset_events(f"hf://datasets/{upstream}", SUCCEEDED, expect=1)

    runs: list = []
    with get_client(sync_client=True) as client:
        for _ in range(60):
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )
            if runs:
                break
            time.sleep(0.5)
    assert len(runs) == 1
