"""The build tasks in a real Prefect flow: build once, reuse the sealed shards after."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from prefect import flow

from hubpress.errors import SourceError
from hubpress.settings import get_settings
from hubpress.shards.runs import RunStage
from hubpress.shards.staging import Staging
from hubpress.sources.models import IntakeReport, SplitManifest
from hubpress.targets.publish import open_target
from hubpress.targets.retries import is_transient_storage_error
from hubpress.tasks.build import build_shard
from hubpress.tasks.publish import plan_task, stage_task
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
def build_dataset(staging: str, report: IntakeReport, options: dict, target_dir: str):
    """The publish flow's plan, build and stage steps, with the same tasks."""
    store = Staging(staging)
    target = open_target(target_dir, "dataset", get_settings())
    with RunStage(store, "run-123") as stage:
        build_plan = plan_task(target, "main", report, options, store, stage)
        built = build_shard.map(build_plan.to_build, staging).result()
        by_key = {s.key: s for s in [*build_plan.reused, *built]}
        shards = [by_key[choice.plan.key] for choice in build_plan.choices]
        staged = stage_task(store, stage.relpath, "f" * 32, report, shards, options, "run-123", build_plan)
        with store.local_paths(staged.files, only=["manifest.json"]) as local:
            manifest = json.loads(Path(local["manifest.json"]).read_text())
    return ("built" if build_plan.to_build else "reused"), staged.files, manifest


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

    kind, files, manifest = build_dataset(staging, report, options, str(tmp_path / "out"))
    assert kind == "built"
    paths = [f.path for f in files]
    # README.md is not staged: it is merged with the target's card at publish time.
    assert "manifest.json" in paths and "README.md" not in paths
    shards = [p for p in paths if p.endswith(".parquet")]
    assert len(shards) > 2 and {p.split("-")[0] for p in shards} == {"data/train", "data/test"}

    # Every shard was sealed in staging under its key: the second run builds none of them.
    kind, again, _ = build_dataset(staging, report, options, str(tmp_path / "out"))
    assert kind == "reused"
    assert [(f.path, f.sha256, f.size) for f in again] == [(f.path, f.sha256, f.size) for f in files]

    assert manifest["flow_run_id"] == "run-123"
    assert sorted(manifest["files"]) == sorted(shards)
    assert manifest["splits"]["train"]["num_examples"] == 12
