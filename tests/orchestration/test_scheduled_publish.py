"""The scheduled publish (publish-dataset/scheduled) on three nights, from moto's S3 server to the
Hub-protocol server: the first night publishes; an unchanged night lists the source, asks the Hub
for its head and stops (no object body read, no commit); a night after samples were added sends
only the shards they land in. Every S3 request goes through a counting proxy in front of moto."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import boto3
import pytest

from hubpress.deployments.serve import SCHEDULED_PUBLISH, build_deployments
from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.testdata.synth import write_dataset
from tests.conftest import sent_phrase
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def s3_proxy(s3, monkeypatch):
    """hubpress talks to moto through a proxy that records every request ("METHOD /path?query")."""
    endpoint, bucket = s3
    proxy = FaultProxy(endpoint).start()
    monkeypatch.setenv("HUBPRESS_S3_ENDPOINT_URL", proxy.url)
    yield proxy, endpoint, bucket
    proxy.stop()


def _upload_tree(client, local: Path, bucket: str, prefix: str, rename=lambda name: name) -> None:
    for path in sorted(local.rglob("*")):
        if path.is_file():
            rel = path.relative_to(local)
            key = f"{prefix}/{rel.parent.as_posix()}/{rename(rel.name)}".replace("/./", "/")
            client.upload_file(str(path), bucket, key)


def _object_reads(requests: list[str], bucket: str) -> list[str]:
    """GETs of an object (a key after the bucket), as opposed to listings of the bucket."""
    return [line for line in requests if re.match(rf"^GET /{bucket}/[^?]+", line)]


def _summary_first_line(state) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
                key=ArtifactFilterKey(like_="publish-summary-"),
            )
        )
    (artifact,) = found
    return str(artifact.data).splitlines()[0]


def _scheduled_params(**values) -> PublishDatasetParams:
    """The scheduled deployment's own parameters, with a real source and target filled in."""
    deployment = {f"{d.flow_name}/{d.name}": d for d in build_deployments()}[SCHEDULED_PUBLISH]
    return PublishDatasetParams(**{**deployment.parameters["params"], **values})


def test_three_nights_publish_then_nothing_then_only_the_new_shards(
    s3_proxy, hub, write_token, tmp_path, monkeypatch
):
    proxy, endpoint, bucket = s3_proxy
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))  # this worker's first night
    client = boto3.client("s3", endpoint_url=endpoint)
    src = tmp_path / "src"
    write_dataset(src, samples=120, image_size=16, masks=True, seed=3)
    _upload_tree(client, src, bucket, "datasets/edits")
    repo = f"alice/nightly-{uuid.uuid4().hex[:8]}"
    params = _scheduled_params(source=f"s3://{bucket}/datasets/edits", target=repo, max_shard_size="30KB")

    # Night 1: everything is new.
    state = publish_dataset(params, return_state=True)
    first = state.result()
    shards = {p for p in first["uploaded_files"] if p.startswith("data/")}
    assert first["commit"] and hub.head("dataset", repo) == first["commit"] and len(shards) >= 6
    assert first["samples"] == {"train": 120}
    assert _summary_first_line(state) == f"120 samples added, 0 changed, 0 removed: {sent_phrase(first)}"
    assert _object_reads(proxy.requests, bucket)  # the first night did read the images

    # Night 2: nothing changed. One listing of the source, one Hub round trip, nothing else.
    proxy.clear()
    hub.reset_stats()
    state = publish_dataset(params, return_state=True)
    second = state.result()
    assert second["commit"] is None and second["listing_unchanged"] is True
    assert _object_reads(proxy.requests, bucket) == []
    assert all(line.startswith(f"GET /{bucket}") and "list-type=2" in line for line in proxy.requests)
    assert hub.stats.commits == 0 and hub.stats.upload_bytes == 0
    assert sum(hub.stats.requests.values()) == 1 and hub.stats.requests["repo_info"] == 1
    assert _summary_first_line(state) == "unchanged"
    assert hub.head("dataset", repo) == first["commit"]

    # Night 3: two samples were added, with ids that sort after the others.
    extra = tmp_path / "extra"
    write_dataset(extra, samples=2, image_size=16, masks=True, seed=77)
    _upload_tree(client, extra, bucket, "datasets/edits", rename=lambda name: f"zz_{name}")
    hub.reset_stats()
    state = publish_dataset(params, return_state=True)
    third = state.result()
    new_shards = {p for p in third["uploaded_files"] if p.startswith("data/")}
    assert third["commit"] and third["samples"] == {"train": 122}
    assert 1 <= len(new_shards) <= 2 and not new_shards & shards  # only the shards they land in
    # A replaced shard is deleted; the untouched ones stay.
    assert set(third["deleted_files"]) < shards and len(third["deleted_files"]) <= len(new_shards)
    assert hub.stats.commits == 1
    sent_shards = sum(len(hub.read_file("dataset", repo, p)) for p in new_shards)
    assert third["uploaded_bytes"] < first["uploaded_bytes"] / 3
    assert hub.stats.upload_bytes <= third["uploaded_bytes"] and sent_shards <= third["uploaded_bytes"]
    assert third["changes"] == {"added": 2, "changed": 0, "removed": 0}
    assert _summary_first_line(state) == f"2 samples added, 0 changed, 0 removed: {sent_phrase(third)}"


def test_a_failed_night_says_so_in_the_summary_first_line(s3_proxy, write_token, tmp_path, monkeypatch):
    _, _, bucket = s3_proxy
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    params = _scheduled_params(
        source=f"s3://{bucket}/no/such/prefix", target=f"alice/x-{uuid.uuid4().hex[:6]}"
    )
    state = publish_dataset(params, return_state=True)
    assert state.is_failed()
    line = _summary_first_line(state)
    assert line.startswith("failed: nothing under s3://") and "Traceback" not in line
