"""Which engine runs a flow's tasks: a bounded thread pool (default) or a Dask cluster.

    from hubpress.orchestration.runners import TaskRunnerChoice, with_task_runner
    from hubpress.flows.publish_dataset import publish_dataset

    flow = with_task_runner(publish_dataset, TaskRunnerChoice(kind="dask", dask_address="tcp://sched:8786"))
    flow(params)

With Dask, Prefect sends each task (shard building, hashing, validation chunks) to the cluster;
the flow itself stays in this process and still reports to the Prefect API. Dask pickles tasks by
reference, so the `hubpress`, `flows` and `tasks` packages must be importable, at the same version,
on the scheduler and on every worker (`pip install hubpress` there), and the workers must reach the
source, the staging location and the Hub with their own environment (HUBPRESS_*, AWS_*, HF_*).
"""

from __future__ import annotations

import copyreg
import os
from dataclasses import dataclass
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from hubpress.errors import ConfigError

F = TypeVar("F")

TaskRunnerKind = Literal["threads", "dask"]


def default_thread_count() -> int:
    """Enough threads to overlap I/O (S3 reads, uploads) without one per shard."""
    return min(16, (os.cpu_count() or 1) + 4)


@dataclass(frozen=True)
class TaskRunnerChoice:
    """What the user asked for: `--task-runner threads|dask [--dask-address tcp://host:8786]`.

    dask without an address starts a temporary local cluster of `dask_workers` processes for the
    run (useful on one big machine); with an address it uses that existing scheduler."""

    kind: TaskRunnerKind = "threads"
    dask_address: str | None = None
    threads: int | None = None
    dask_workers: int = 2

    def __post_init__(self) -> None:
        if self.kind not in ("threads", "dask"):
            raise ConfigError(f"Unknown task runner {self.kind!r}: use 'threads' or 'dask'.")
        if self.dask_address and self.kind != "dask":
            raise ConfigError("--dask-address needs --task-runner dask.")
        if self.dask_address:
            scheduler_host_port(self.dask_address)
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"The thread count must be at least 1, not {self.threads}.")


DASK_SCHEMES = ("tcp", "tls", "ws", "wss")  # what distributed's schedulers listen on over a network


def scheduler_host_port(address: str) -> tuple[str, int]:
    """The host and port of a Dask scheduler's address (`tcp://host:8786`); anything else is a
    ConfigError, before distributed parses it inside the flow run (a traceback there)."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in DASK_SCHEMES or not parts.hostname or port is None or parts.path.strip("/"):
        raise ConfigError(
            f"--dask-address {address!r} is not a Dask scheduler's address: expected tcp://host:8786 "
            f"(or {', '.join(s + '://' for s in DASK_SCHEMES[1:])})."
        )
    return parts.hostname, port


def make_task_runner(choice: TaskRunnerChoice | None = None):
    """A Prefect task runner for `choice`: ThreadPoolTaskRunner(bounded) or prefect-dask's DaskTaskRunner."""
    choice = choice or TaskRunnerChoice()
    if choice.kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=choice.threads or default_thread_count())
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise ConfigError("--task-runner dask needs prefect-dask: pip install prefect-dask") from None
    make_annotations_picklable()
    quiet_dask_logs()
    if choice.dask_address:
        return DaskTaskRunner(address=choice.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": choice.dask_workers, "threads_per_worker": 1, "dashboard_address": None}
    )


def quiet_dask_logs() -> None:
    """distributed logs every scheduler, nanny and connection event at INFO (about 40 lines for
    a LocalCluster's start and stop) and warns while it kills its own workers at shutdown: keep
    its warnings and errors only, here and in the worker processes (DASK_LOGGING__DISTRIBUTED);
    the nanny's shutdown chatter only at ERROR. A level the user set is left alone."""
    import logging

    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    for name, level in (("distributed", logging.WARNING), ("distributed.nanny", logging.ERROR)):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < level:
            logger.setLevel(level)


def _reduce_annotation(annotation):
    return type(annotation), (annotation.unwrap(),)


def make_annotations_picklable() -> None:
    """Let Prefect's quote/unmapped/allow_failure survive pickling, as Dask pickles task arguments.

    They are tuple subclasses whose __new__ wraps its argument, so the default tuple pickling
    rebuilds quote(x) as quote((x,)) and the task receives a tuple (Prefect 3.8; reported as
    prefect-dask issue #43). Registering a reducer in the process that pickles (the flow's) is
    enough: unpickling then calls quote(x)."""
    from prefect.utilities.annotations import BaseAnnotation

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in subclasses(BaseAnnotation):
        copyreg.pickle(cls, _reduce_annotation)


def with_task_runner(flow: F, choice: TaskRunnerChoice | None = None) -> F:
    """The same flow, running its tasks on the chosen runner (Prefect's Flow.with_options)."""
    return flow.with_options(task_runner=make_task_runner(choice))  # type: ignore[attr-defined]


def on_threads() -> bool:
    """The current flow's tasks run on this process's thread pool (not on a Dask cluster)."""
    from prefect.context import FlowRunContext
    from prefect.task_runners import ThreadPoolTaskRunner

    context = FlowRunContext.get()
    return context is None or isinstance(context.task_runner, ThreadPoolTaskRunner)


def carry(value):
    """A large argument for `task.submit`/`map`: `quote(value)` on the thread pool, so Prefect does
    not walk every sample in it looking for futures; the value itself on Dask. A separate `dask
    scheduler` process rebuilds the tuple subclass `quote` as a plain tuple, so the task would
    receive `(value,)` (a LocalCluster's in-process scheduler does not); there Prefect walks it."""
    if not on_threads():
        return value
    from prefect.utilities.annotations import quote

    return quote(value)
