"""The build tasks in a real Prefect flow: build once, reuse the complete stage after."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from prefect import flow

from hubpress.errors import SourceError
from hubpress.models import IntakeReport, SplitManifest
from hubpress.staging import DatasetCardOptions, dataset_fingerprint
from tasks.build import build_shard, is_transient_storage_error, lookup_stage, plan_split_shards, seal
from tests.build_helpers import make_sample


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
def build_dataset(staging: str, report: IntakeReport, options: dict, card: DatasetCardOptions):
    """A minimal version of the publish flow's build stage."""
    fingerprint = dataset_fingerprint(report, options, card)
    found = lookup_stage(staging, fingerprint)
    if found is not None:
        return "reused", found
    plans = [
        p
        for split in sorted(report.splits)
        for p in plan_split_shards(split, report.splits[split].samples, options["max_shard_size"])
    ]
    shards = build_shard.map(plans, staging, fingerprint).result()
    return "built", seal(staging, fingerprint, report, shards, options, card, None, "run-123")


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
    options = {"max_shard_size": 60_000}
    card = DatasetCardOptions(repo_id="alice/ds", tags=("faces",))

    kind, files = build_dataset(staging, report, options, card)
    assert kind == "built"
    paths = [f.path for f in files]
    assert "README.md" in paths and "manifest.json" in paths
    shards = [p for p in paths if p.endswith(".parquet")]
    assert len(shards) > 2 and {p.split("-")[0] for p in shards} == {"data/train", "data/test"}

    kind, again = build_dataset(staging, report, options, card)
    assert kind == "reused" and again == files

    from hubpress.staging import Staging

    with Staging(staging).local_paths(files, only=["manifest.json"]) as local:
        manifest = json.loads(Path(local["manifest.json"]).read_text())
    assert manifest["flow_run_id"] == "run-123"
    assert sorted(manifest["files"]) == sorted(shards)
    assert manifest["splits"]["train"]["num_examples"] == 12
