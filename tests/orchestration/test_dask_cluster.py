"""A publish whose tasks run on a real Dask cluster: `dask scheduler` and two `dask worker`
processes (the distributed package's own command lines), with the source and the staging area on
S3 (moto's server) and the Hub-protocol server as the target, end to end.

The workers are separate processes with their own environment, as they would be on other
machines: they import hubpress, flows and tasks themselves and reach S3 through the endpoint in
their environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest

from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.orchestration.runners import TaskRunnerChoice, with_task_runner
from hubpress.testdata.synth import write_dataset

pytestmark = pytest.mark.usefixtures("prefect_harness")

DASK = Path(sys.executable).with_name("dask")
START_TIMEOUT_S = 60


def _wait_for(predicate, what: str, procs: list[subprocess.Popen], logs: list[Path]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not predicate():
        for proc, log in zip(procs, logs, strict=True):
            assert proc.poll() is None, f"{what}: a dask process exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what} did not happen in {START_TIMEOUT_S} s"
        time.sleep(0.2)


@pytest.fixture
def dask_cluster(tmp_path, s3):
    """(scheduler address, [worker addresses]) of a scheduler and two single-threaded workers."""
    endpoint, _ = s3
    env = {**os.environ, "HUBPRESS_S3_ENDPOINT_URL": endpoint, "PYTHONUNBUFFERED": "1"}
    env.pop("PREFECT_API_URL", None)  # Prefect sends its settings with every task
    scheduler_file = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen] = []
    logs: list[Path] = []

    def start(name: str, args: list[str]) -> None:
        log = tmp_path / f"{name}.log"
        with open(log, "wb") as out:
            procs.append(subprocess.Popen([str(DASK), *args], env=env, stdout=out, stderr=subprocess.STDOUT))
        logs.append(log)

    try:
        start(
            "scheduler",
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
        )
        _wait_for(scheduler_file.exists, "the scheduler's address file", procs, logs)
        address = json.loads(scheduler_file.read_text())["address"]
        for i in (1, 2):
            start(
                f"worker{i}",
                [
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                    "--name",
                    f"w{i}",
                ],
            )
        from distributed import Client

        with Client(address, timeout=START_TIMEOUT_S) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT_S)
            workers = sorted(client.scheduler_info()["workers"])
        yield address, workers
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_publish_builds_its_shards_on_a_dask_scheduler_and_two_workers(
    dask_cluster, s3, hub, write_token, tmp_path, monkeypatch
):
    from distributed import Client, get_task_stream

    address, workers = dask_cluster
    endpoint, bucket = s3
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    write_dataset(src, samples=40, test_fraction=0.25, image_size=16, masks=True, seed=21)
    client = boto3.client("s3", endpoint_url=endpoint)
    for path in sorted(src.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"datasets/edits/{path.relative_to(src).as_posix()}")
    repo = f"alice/dask-{uuid.uuid4().hex[:8]}"
    params = PublishDatasetParams(
        source=f"s3://{bucket}/datasets/edits",
        target=repo,
        staging=f"s3://{bucket}/staging",
        max_shard_size="20KB",
    )

    flow = with_task_runner(publish_dataset, TaskRunnerChoice(kind="dask", dask_address=address))
    with Client(address) as observer, get_task_stream(client=observer) as stream:
        result = flow(params)

    assert result["commit"] and hub.head("dataset", repo) == result["commit"]
    assert result["samples"] == {"train": 30, "test": 10} and result["stage_reused"] is False
    shards = [p for p in result["uploaded_files"] if p.endswith(".parquet")]
    assert len(shards) >= 4
    # Every shard was built on the cluster, and both workers took a share.
    builds = [t for t in stream.data if "build" in str(t["key"]) and "shard" in str(t["key"])]
    assert len(builds) >= len(shards), sorted({str(t["key"]).split("-")[0] for t in stream.data})
    assert {t["worker"] for t in builds} == set(workers)
    # The workers sealed each shard in S3 staging; the commit holds them now, so staging keeps none.
    staged = client.list_objects_v2(Bucket=bucket, Prefix="staging/").get("Contents", [])
    assert not [o["Key"] for o in staged if o["Key"].endswith(".parquet")]
    for path in shards:
        assert hub.read_file("dataset", repo, path)[:4] == b"PAR1"
