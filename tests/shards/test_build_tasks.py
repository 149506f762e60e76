"""The build tasks in a real Prefect flow: build once, reuse the complete stage after."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from prefect import flow

from hubpress.errors import SourceError
from hubpress.shards.fingerprint import dataset_fingerprint
from hubpress.shards.pipeline import plan_all_shards
from hubpress.shards.staging import Staging
from hubpress.sources.models import IntakeReport, SplitManifest
from hubpress.targets.retries import is_transient_storage_error
from hubpress.tasks.build import build_shard
from hubpress.tasks.publish import reuse_stage_task, seal_stage_task
from tests.shard_helpers import make_sample


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (client_error("SlowDown", 503), True),
        (client_error("InternalError", 500), True),
        (client_error("AccessDenied", 403), False),
        (client_error("NoSuchBucket", 404), False),
        (EndpointConnectionError(endpoint_url="http://s3"), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (OSError(errno.ENOSPC, "No space left on device"), False),
        (FileNotFoundError(2, "gone"), False),
        (SourceError("x.png changed after validation"), False),
        (ValueError("bug"), False),
    ],
)
def test_only_transient_storage_errors_are_retried(exc, transient):
    assert is_transient_storage_error(exc) is transient


@flow
def build_dataset(staging: str, report: IntakeReport, options: dict):
    """The publish flow's build stage, with the same tasks."""
    fingerprint = dataset_fingerprint(report, options)
    store = Staging(staging)
    found = reuse_stage_task(store, fingerprint)
    if found is not None:
        return "reused", found.files
    shards = build_shard.map(plan_all_shards(report, options), staging, fingerprint).result()
    return "built", seal_stage_task(store, fingerprint, report, shards, options, "run-123").files


@pytest.mark.parametrize("where", ["local", "s3"])
def test_flow_builds_once_then_reuses_the_stage(tmp_path, prefect_harness, where, request):
    if where == "s3":
        _, bucket = request.getfixturevalue("s3")
        staging = f"s3://{bucket}/staging"
    else:
        staging = str(tmp_path / "staging")
    samples = {
        s: [make_sample(tmp_path / "src", f"{s}{i}", split=s) for i in range(12)] for s in ("train", "test")
    }
    report = IntakeReport(
        source=str(tmp_path / "src"),
        layout="folder",
        splits={s: SplitManifest(s, samples[s]) for s in samples},
    )
    options = {"max_shard_size": 60_000, "repo_id": "alice/ds", "tags": ["faces"]}

    kind, files = build_dataset(staging, report, options)
    assert kind == "built"
    paths = [f.path for f in files]
    # README.md is not staged: it is merged with the target's card at publish time.
    assert "manifest.json" in paths and "README.md" not in paths
    shards = [p for p in paths if p.endswith(".parquet")]
    assert len(shards) > 2 and {p.split("-")[0] for p in shards} == {"data/train", "data/test"}

    kind, again = build_dataset(staging, report, options)
    assert kind == "reused" and again == files

    with Staging(staging).local_paths(files, only=["manifest.json"]) as local:
        manifest = json.loads(Path(local["manifest.json"]).read_text())
    assert manifest["flow_run_id"] == "run-123"
    assert sorted(manifest["files"]) == sorted(shards)
    assert manifest["splits"]["train"]["num_examples"] == 12
