"""How hubpress calls the Hub: transient failures (429, 5xx, dropped connections) are retried with
exponential backoff and jitter, and the Hub's auth and not-found answers become hubpress errors
that say what to do (auth failures, 401/403, are never retried)."""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from hubpress.errors import ConfigError, HubAccessError, HubpressError, PublishError
from hubpress.settings import ResolvedToken
from hubpress.targets import hub_waits

log = logging.getLogger("hubpress.hub")

T = TypeVar("T")

TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


class RepoNotFound(HubpressError):
    pass


class HubUnavailable(PublishError):
    """The Hub could not be reached, or kept failing, through hubpress's whole retry budget. It is
    not retried again (by Prefect or anyone): one retry policy per call."""


# A connection that is refused or cannot be opened is retried for this long at most: a dead
# endpoint is reported in seconds, not after minutes of backoff.
CONNECT_BUDGET_SECONDS = 8.0


def is_connect_failure(exc: BaseException) -> bool:
    return status_of(exc) is None and (
        isinstance(exc, ConnectionRefusedError) or "Connect" in type(exc).__name__
    )


def failure_reason(exc: BaseException) -> str:
    """What a spent retry budget ran into, for the one-line error."""
    status = status_of(exc)
    if status is not None:
        return f"kept answering HTTP {status}"
    if is_connect_failure(exc):
        return "refused the connection or could not be reached"
    return f"kept failing ({type(exc).__name__})"


def status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def is_transient(exc: BaseException) -> bool:
    """A failure worth retrying: rate limits, server errors, dropped or stalled connections."""
    status = status_of(exc)
    if status is not None:
        return status in TRANSIENT_STATUS
    name = type(exc).__name__
    if name == "OfflineModeIsEnabled":  # a ConnectionError, but HF_HUB_OFFLINE stays set on retry
        return False
    return isinstance(exc, (ConnectionError, TimeoutError)) or any(
        part in name
        for part in ("Connect", "Timeout", "RemoteProtocol", "ReadError", "WriteError", "NetworkError")
    )


def retry_transient(
    action: str,
    fn: Callable[[], T],
    *,
    attempts: int = 6,
    base_delay: float = 0.5,
    max_total: float = 120.0,
    on_retry: Callable[[str], None] | None = None,
) -> T:
    """Call fn, retrying transient failures with exponential backoff and full jitter, bounded in
    attempts and total time. A wait the Hub asks for (RateLimit, Retry-After) is honoured up to
    hub_waits' bound, each time; a longer one stops at once (HubRateLimited)."""
    started = time.monotonic()
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc) or attempt == attempts:
                raise
            response = getattr(exc, "response", None)
            status = status_of(exc)
            # One rule for every wait the Hub asks for (hub_waits): bounded, and a value that is no
            # finite number of seconds counts as none.
            wait = hub_waits.wait_for(status, response.headers) if response is not None and status else None
            if wait is not None and wait.seconds > hub_waits.max_wait():
                raise hub_waits.too_long(wait, f"The Hub (asked to {action})") from None
            delay = wait.seconds if wait is not None else random.uniform(0, base_delay * 2 ** (attempt - 1))
            spent = time.monotonic() - started + delay
            if (wait is None and spent > max_total) or (
                is_connect_failure(exc) and spent > CONNECT_BUDGET_SECONDS
            ):
                raise
            what = (
                "rate-limited (429)"
                if status == 429
                else f"transient failure ({status or type(exc).__name__})"
            )
            message = f"{action}: {what}; retrying in {delay:.1f}s (attempt {attempt + 1}/{attempts})"
            log.warning(message)
            if on_retry:
                on_retry(message)
            time.sleep(delay)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def hub_errors(action: str, where: str, token: ResolvedToken) -> Iterator[None]:
    """Turn the Hub's auth and not-found answers into hubpress errors that say what to do. Whatever
    leaves never carries the token's value: a remote may repeat it in an answer that an error quotes
    in any spelling (glued to other text, or not shaped like a Hugging Face token at all), and the
    error then reaches the one line, --json, the run's log and its artifacts."""
    try:
        with _hub_errors(action, where, token):
            yield
    except BaseException as exc:
        hide_value(exc, token.value)
        raise


def hide_value(exc: BaseException, secret: str | None) -> None:
    """Replace `secret` by *** in the text arguments of `exc` and of the exceptions it was raised
    from or during, in place (so `str()`, a traceback and a log record all lose it)."""
    if not secret:
        return
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if any(isinstance(a, str) and secret in a for a in exc.args):
            exc.args = tuple(a.replace(secret, "***") if isinstance(a, str) else a for a in exc.args)
        exc = exc.__cause__ or exc.__context__


@contextlib.contextmanager
def _hub_errors(action: str, where: str, token: ResolvedToken) -> Iterator[None]:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from hubpress.targets.hub_failures import outbound_failure

    try:
        yield
    except OfflineModeIsEnabled:
        raise ConfigError(
            f"HF_HUB_OFFLINE is set, so hubpress cannot {action} {where}: unset HF_HUB_OFFLINE to reach "
            "the Hub (a local directory target, and download-lora of a cached file, work offline)."
        ) from None
    except RevisionNotFoundError:
        raise
    except RepositoryNotFoundError as exc:
        if status_of(exc) == 401 and token.value is not None:
            raise HubAccessError(
                f"The Hub refused the token from {token.source} (HTTP 401) while trying to {action} {where}: "
                "the token is invalid or expired. Create a new one at <endpoint>/settings/tokens."
            ) from None
        raise RepoNotFound(
            f"{where} does not exist or is not visible with the token from {token.source}. "
            "Check the name, or use a token that can read it."
        ) from None
    except HfHubHTTPError as exc:
        status = status_of(exc)
        if status == 401:
            hint = "provide a write token" if token.value is None else "the token is invalid or expired"
            raise HubAccessError(
                f"The Hub refused the request to {action} {where} (HTTP 401, token from {token.source}): {hint}."
            ) from None
        if status == 403:
            raise HubAccessError(
                f"The Hub forbade the request to {action} {where} (HTTP 403, token from {token.source}): "
                "the token cannot write there. Use a token with write access to that namespace."
            ) from None
        if status in (409, 412) or isinstance(exc, EntryNotFoundError):
            raise  # conflicts and absent files: the caller decides
        raise outbound_failure(exc, action, where) or exc from None
    except (EntryNotFoundError, LocalEntryNotFoundError):
        raise
    except Exception as exc:
        # Anything else a Hub answer made the client raise (not JSON, `{}` where fields were due, a
        # download shorter than declared): one line, never a traceback.
        failure = outbound_failure(exc, action, where)
        if failure is None:
            raise
        raise failure from exc
