"""Prefect tasks for the dataset build: thin wrappers over hubpress.shards and hubpress.staging.

The publish flow looks the fingerprint up in staging, and only when no complete stage exists
plans shards per split, maps `build_shard` over the plans (its task runner runs them in
parallel), then seals the stage. Only transient storage errors are retried: a source file that
changed since validation, a bad option or a full disk fail at once with their own message.
"""

from __future__ import annotations

import errno
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from hubpress.errors import HubpressError
from hubpress.settings import Settings
from hubpress.shards import ShardPlan
from hubpress.staging import StagedShard, Staging, stage_shard

_TRANSIENT_S3_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "500",
        "502",
        "503",
        "504",
    }
)
_TRANSIENT_ERRNOS = frozenset(
    {errno.ECONNRESET, errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EPIPE, errno.EAGAIN}
)


def is_transient_storage_error(exc: BaseException | None) -> bool:
    """True for errors a retry can cure: S3 throttling/5xx, dropped connections, timeouts."""
    if exc is None or isinstance(exc, HubpressError):
        return False
    try:
        from botocore.exceptions import (
            ClientError,
            HTTPClientError,
            IncompleteReadError,
            ResponseStreamingError,
        )
        from botocore.exceptions import (
            ConnectionError as BotoConnectionError,
        )
    except ImportError:  # pragma: no cover - boto3 is a dependency
        ClientError = BotoConnectionError = HTTPClientError = IncompleteReadError = (
            ResponseStreamingError
        ) = ()
    if isinstance(exc, BotoConnectionError | HTTPClientError | IncompleteReadError | ResponseStreamingError):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error.get("Code") in _TRANSIENT_S3_CODES or status >= 500
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _TRANSIENT_ERRNOS
    return False


def _retry_on_transient(task, task_run, state) -> bool:
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as error:  # the result could not be read back: judge that error
        exc = error
    return isinstance(exc, BaseException) and is_transient_storage_error(exc)


_STORAGE_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_condition_fn": _retry_on_transient,
}
# Inputs are 100,000-sample lists: hashing them for a cache key would cost more than the task.
_NO_CACHE: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="build-shard", task_run_name="build-{plan.name}", **_NO_CACHE, **_STORAGE_RETRIES)
def build_shard(
    plan: ShardPlan, staging_uri: str | None, fingerprint: str, settings: Settings | None = None
) -> StagedShard:
    """Write one shard and stage it. Peak memory is one row group, whatever the shard's size."""
    return stage_shard(Staging(staging_uri, settings), fingerprint, plan)
