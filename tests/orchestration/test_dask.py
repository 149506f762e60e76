"""The publish flow on a 2-worker Dask LocalCluster (prefect-dask) publishes exactly what the
thread pool publishes: the same shard names with the same bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hubpress.errors import ConfigError
from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.orchestration.runners import TaskRunnerChoice, make_task_runner, with_task_runner
from hubpress.testdata.synth import write_dataset

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _published(root: Path) -> dict[str, str]:
    """Every published file (path in the target -> sha256), following the target's symlink."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_dask_local_cluster_publishes_the_same_files_as_the_thread_pool(tmp_path):
    src = tmp_path / "src"
    write_dataset(src, samples=16, test_fraction=0.25, image_size=16, seed=11)

    def run(choice: TaskRunnerChoice, name: str) -> dict:
        # Separate staging: otherwise the second run reuses the first one's stage and builds nothing.
        params = PublishDatasetParams(
            source=str(src),
            target=str(tmp_path / name),
            staging=str(tmp_path / f"stage-{name}"),
            max_shard_size="8KB",
        )
        return with_task_runner(publish_dataset, choice)(params)

    threads = run(TaskRunnerChoice(kind="threads", threads=4), "threads")
    dask = run(TaskRunnerChoice(kind="dask", dask_workers=2), "dask")

    assert threads["samples"] == dask["samples"] == {"train": 12, "test": 4}
    assert not dask["stage_reused"]
    shards = [p for p in threads["uploaded_files"] if p.endswith(".parquet")]
    assert len(shards) >= 3  # several shards, so the cluster really had tasks to spread
    assert sorted(threads["uploaded_files"]) == sorted(dask["uploaded_files"])

    from_threads, from_dask = _published(tmp_path / "threads"), _published(tmp_path / "dask")
    assert {p: h for p, h in from_threads.items() if p.endswith(".parquet")} == {
        p: h for p, h in from_dask.items() if p.endswith(".parquet")
    }
    assert from_threads.keys() == from_dask.keys()


def test_task_runner_choices():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    runner = make_task_runner()
    assert isinstance(runner, ThreadPoolTaskRunner) and 1 <= runner._max_workers <= 16
    remote = make_task_runner(TaskRunnerChoice(kind="dask", dask_address="tcp://10.0.0.5:8786"))
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://10.0.0.5:8786"
    with pytest.raises(ConfigError, match="--task-runner dask"):
        TaskRunnerChoice(kind="threads", dask_address="tcp://x:8786")
    with pytest.raises(ConfigError, match="threads"):
        TaskRunnerChoice(kind="ray")  # type: ignore[arg-type]


def test_prefect_annotations_survive_pickling_once_registered():
    """Dask pickles task arguments; Prefect's quote(x) would otherwise arrive as quote((x,))."""
    import cloudpickle
    from prefect.utilities.annotations import quote, unmapped

    from hubpress.orchestration.runners import make_annotations_picklable

    make_annotations_picklable()
    for annotation in (quote([1, 2]), unmapped({"a": 1})):
        back = cloudpickle.loads(cloudpickle.dumps(annotation))
        assert type(back) is type(annotation) and back.unwrap() == annotation.unwrap()
