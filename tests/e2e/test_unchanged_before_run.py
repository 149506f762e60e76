"""An unchanged re-publish from the CLI or the Python API creates no flow run: it is answered by
the cheapest check before the run (hubpress.orchestration.before_run), recorded as a
`hubpress.publish.unchanged` event on the Prefect server, sends nothing, makes no commit, and
prints or returns what the flow's own unchanged run gave. A changed source still runs the flow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from hubpress.api import upload_editing_dataset, upload_lora_safetensors
from hubpress.flows.params import PublishDatasetParams, PublishLoraParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.flows.publish_lora import publish_lora
from hubpress.orchestration.events import UNCHANGED_EVENT
from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")

ROOT = Path(__file__).resolve().parents[2]
EVENT_WAIT_S = 120  # the server's event persister writes in batches (every few seconds)


@pytest.fixture
def own_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))


def _flow_runs(name: str) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        return client.count_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[name])))


def _unchanged_events(resource_id: str, expected: int) -> list:
    """The unchanged events about `resource_id` on the server, once `expected` of them are there."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    where = EventFilter(
        event=EventNameFilter(name=[UNCHANGED_EVENT]), resource=EventResourceFilter(id=[resource_id])
    )
    deadline = time.monotonic() + EVENT_WAIT_S
    with get_client(sync_client=True) as client:
        while True:
            events = client.read_events(where, limit=50).events  # the server allows at most 50
            if len(events) >= expected or time.monotonic() > deadline:
                return events
            time.sleep(0.5)


def _json_line(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_unchanged_dataset_from_the_cli_and_the_api_is_an_event_not_a_run(
    hub, tmp_path, write_token, own_dirs
):
    src = tmp_path / "src"
    write_dataset(src, samples=6, image_size=16, seed=11, defects=("truncated",))
    repo = f"alice/before-run-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("publish-dataset", str(src), repo, "--json")
    assert code == 0, err
    first = _json_line(out)
    assert first["commit"] and sum(first["skipped"].values()) == 1

    # What the flow itself answers for the unchanged source (the served-run path); the sample
    # left out at the publish is still reported as left out, not `{}`.
    in_flow = publish_dataset(PublishDatasetParams(source=str(src), target=repo))
    assert in_flow["listing_unchanged"] and in_flow["commit"] is None
    assert in_flow["skipped"] == first["skipped"]

    runs = _flow_runs("publish-dataset")
    hub.reset_stats()
    code, out, err = run_cli("publish-dataset", str(src), repo, "--json")
    assert code == 0, err
    assert _json_line(out) == in_flow
    code, text, err = run_cli("publish-dataset", str(src), repo)
    assert code == 0, err
    assert text.splitlines()[0] == f"{repo} is up to date: nothing uploaded, no commit made."
    assert "hubpress.publish.unchanged event" in err and "no flow run" in err
    assert upload_editing_dataset(str(src), repo) == in_flow

    assert _flow_runs("publish-dataset") == runs  # no run for any of the three
    stats = hub.stats
    assert stats.commits == 0 and stats.upload_bytes == 0
    assert stats.requests["preupload"] == 0 and stats.requests["commit"] == 0
    events = _unchanged_events(f"huggingface.dataset.{repo}", expected=3)
    assert len(events) == 3
    assert sorted(e.payload["entry"] for e in events) == ["api", "cli", "cli"]
    for event in events:
        assert event.payload["flow"] == "publish-dataset" and event.payload["target"] == repo
        assert event.payload["source"] == str(src) and len(event.payload["head"]) == 40
        assert write_token not in json.dumps(event.model_dump(mode="json"))

    # A changed source (the train split's prompts; the skipped sample's does not count): the flow
    # runs, and publishes.
    for prompt in (src / "train" / "training_images").glob("*.txt"):
        prompt.write_text(prompt.read_text(encoding="utf-8") + " (edited)", encoding="utf-8")
    code, out, err = run_cli("publish-dataset", str(src), repo, "--json")
    assert code == 0, err
    assert _flow_runs("publish-dataset") == runs + 1
    changed = _json_line(out)
    edited = first["samples"]["train"]
    assert changed["commit"] and changed["changes"] == {"added": 0, "changed": edited, "removed": 0}


def test_unchanged_lora_from_the_cli_and_the_api_is_an_event_not_a_run(hub, tmp_path, write_token, own_dirs):
    weights = write_lora(tmp_path / "pytorch_lora_weights.safetensors", rank=4)
    repo = f"alice/before-run-lora-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("publish-lora", str(weights), repo, "--json")
    assert code == 0, err
    assert _json_line(out)["commit"]
    in_flow = publish_lora(PublishLoraParams(src_path=str(weights), target=repo))
    assert in_flow["unchanged"] and in_flow["commit"] is None

    runs = _flow_runs("publish-lora")
    hub.reset_stats()
    code, out, err = run_cli("publish-lora", str(weights), repo, "--json")
    assert code == 0, err
    assert _json_line(out) == in_flow
    code, text, err = run_cli("publish-lora", str(weights), repo)
    assert code == 0, err
    assert text.strip() == f"{repo} is up to date: nothing uploaded, no commit made."
    url = upload_lora_safetensors(str(weights), repo)
    assert url.endswith(f"/{repo}")

    assert _flow_runs("publish-lora") == runs
    stats = hub.stats
    assert stats.commits == 0 and stats.upload_bytes == 0 and stats.requests["preupload"] == 0
    events = _unchanged_events(f"huggingface.model.{repo}", expected=3)
    assert sorted(e.payload["entry"] for e in events) == ["api", "cli", "cli"]
    assert {e.payload["flow"] for e in events} == {"publish-lora"}
    assert {e.related[0].id for e in events} == {f"hubpress.source.{weights}"}

    # A tag asks for more than "anything new?": the flow runs (and tags).
    code, out, err = run_cli("publish-lora", str(weights), repo, "--tag", "v1", "--json")
    assert code == 0, err
    assert _flow_runs("publish-lora") == runs + 1
    # Changed weights: the flow runs and commits.
    write_lora(weights, rank=8)
    code, out, err = run_cli("publish-lora", str(weights), repo, "--json")
    assert code == 0, err
    assert _json_line(out)["commit"] and _flow_runs("publish-lora") == runs + 2


# What the unchanged path must not import, in a fresh process (`python -X importtime` lists every
# module imported): Prefect's flow engine, datasets, pyarrow.
HEAVY = ("prefect.flow_engine", "prefect.flows", "datasets", "pyarrow", "pandas")


def test_an_unchanged_cli_publish_does_not_load_the_flow_engine(hub, tmp_path, write_token, own_dirs):
    from prefect.settings import PREFECT_API_URL

    weights = write_lora(tmp_path / "pytorch_lora_weights.safetensors", rank=4)
    repo = f"alice/before-run-imports-{uuid.uuid4().hex[:8]}"
    assert publish_lora(PublishLoraParams(src_path=str(weights), target=repo))["commit"]
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "hubpress.commands.cli",
            "publish-lora",
            str(weights),
            repo,
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == f"{repo} is up to date: nothing uploaded, no commit made."
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "hubpress.shards.unchanged" in imported  # the check ran in this process
    assert sorted(m for m in imported if m in HEAVY or m.split(".")[0] in HEAVY[2:]) == []
