"""Which failures a retry can cure, and the Prefect task settings that retry only those.

Every task that touches storage or the Hub uses TRANSIENT_RETRIES: S3 throttling and 5xx, Hub
429/5xx, dropped connections and timeouts are retried; bad data, refused tokens, Hub limits and
any error hubpress raises on purpose fail at once.
"""

from __future__ import annotations

import errno
from typing import Any

from prefect.cache_policies import NO_CACHE as _NO_CACHE_POLICY

from hubpress.errors import HubpressError
from hubpress.targets.hub_calls import is_transient as is_transient_hub_error

TRANSIENT_S3_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "SlowDown",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "500",
        "502",
        "503",
        "504",
    }
)
TRANSIENT_ERRNOS = frozenset(
    {errno.ECONNRESET, errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EPIPE, errno.EAGAIN}
)


def _is_transient_one(exc: BaseException) -> bool:
    from botocore.exceptions import (
        ClientError,
        HTTPClientError,
        IncompleteReadError,
        ResponseStreamingError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, BotoConnectionError | HTTPClientError | IncompleteReadError | ResponseStreamingError):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return error.get("Code") in TRANSIENT_S3_CODES or status >= 500 or status == 429
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


def is_transient_storage_error(exc: BaseException | None) -> bool:
    """True for storage failures worth retrying: S3 throttling or 5xx, timeouts, dropped
    connections (also when wrapped: `raise ... from` chains are followed a little way)."""
    if exc is None or isinstance(exc, HubpressError):
        return False
    for _ in range(8):
        if exc is None:
            return False
        if _is_transient_one(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def is_transient_error(exc: BaseException | None) -> bool:
    """A storage or Hub failure that a retry can cure."""
    if exc is None or isinstance(exc, HubpressError):
        return False
    return is_transient_storage_error(exc) or is_transient_hub_error(exc)


def retry_only_transient(task, task_run, state) -> bool:
    """Prefect retry_condition_fn: retry a failed task only when its error is transient."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as error:  # the result could not be read back: judge that error
        exc = error
    return isinstance(exc, BaseException) and is_transient_error(exc)


TRANSIENT_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_condition_fn": retry_only_transient,
}
# Task inputs are large (listings, sample lists, plans): hashing them for a cache key would cost
# more than the task, and results are not reused across runs.
NO_CACHE: dict[str, Any] = {"cache_policy": _NO_CACHE_POLICY, "persist_result": False}
