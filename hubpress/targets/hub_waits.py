"""How long hubpress waits when the Hub says "not now" (429, or 503 with Retry-After): one policy for
every Hub call, bounded.

The Hub answers a rate limit with `RateLimit: "api";r=0;t=55` (seconds to the window's reset) and,
on some answers, `Retry-After`. huggingface_hub's `http_backoff` (preupload, LFS batch and uploads,
downloads) honours both without an upper bound: `Retry-After: 100000` is a wait of 100001 s. It
never sees a value it cannot use as one: it reads only digits (`-5`, `nan` and dates fall back to
its own backoff). hubpress bounds every wait without patching the library: its HTTP client (set
with huggingface_hub's documented `set_client_factory` in hubpress.targets.hub_http, which adds the
deadlines) passes each such answer through `wait_for`, the one rule:

- a usable wait up to the bound (`HUBPRESS_HUB_MAX_WAIT_SECONDS`, 300 s: the Hub's rate-limit
  window is 5 minutes) is waited, and logged with the reason;
- a longer one stops the call at once with `HubRateLimited`, one line naming the Hub, the wait it
  asked for and the bound;
- the waits of one call (`one_call`: hubpress's attempts and the library's retries inside them)
  add up to at most CALL_WAITS times the bound; the wait that would pass it stops the call;
- a value that is not a finite number of seconds (`-5`, `nan`, `inf`, garbage) counts as no value:
  the caller's own backoff applies. An HTTP date counts as the seconds until then.

The client rewrites the answer's Retry-After to the whole seconds decided here, so the library's
wait and hubpress's own retry loop (`hub_calls.retry_transient`) wait the same, bounded, time.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from hubpress.errors import PublishError

log = logging.getLogger("hubpress.hub")

DEFAULT_MAX_WAIT_SECONDS = 300.0
# The waits one call may be asked for, in all, in bounds of one wait: each attempt's wait is bounded,
# but huggingface_hub's own backoff (5 retries) runs inside each of hubpress's attempts (6), so a Hub
# answering 429 with `Retry-After: 300` forever would hold one call for three hours. Three windows
# of the Hub's rate limit is room for a burst shared with other jobs; beyond that, run again later.
CALL_WAITS = 3
WAIT_STATUSES = frozenset({429, 503})
_RATELIMIT = re.compile(r'"(?P<kind>[^"]*)"\s*;\s*r\s*=\s*(?P<r>-?\d+)\s*;\s*t\s*=\s*(?P<t>[^;,\s]+)')


class HubRateLimited(PublishError):
    """The Hub asked for a wait longer than hubpress's bound: the call stops, never retried."""


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float  # what the Hub asked for, in seconds (0 or more)
    source: str  # "RateLimit" or "Retry-After", for the log line


def _seconds(text: str) -> float | None:
    """A wait in seconds from a header value: delay-seconds or an HTTP date; None when unusable."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        from datetime import UTC, datetime

        value = (when - datetime.now(UTC)).total_seconds()
        return max(value, 0.0)
    if not math.isfinite(value) or value < 0:
        return None
    return value


def wait_for(status: int, headers: Any) -> Wait | None:
    """What a 429/503 answer asks hubpress to wait, from its RateLimit (when the window is spent)
    or Retry-After header; None when it names no usable wait."""
    if status not in WAIT_STATUSES:
        return None
    ratelimit = headers.get("RateLimit") or headers.get("ratelimit")
    match = _RATELIMIT.search(ratelimit or "")
    if status == 429 and match and match["r"] == "0":
        seconds = _seconds(match["t"])
        if seconds is not None:
            return Wait(seconds, f'RateLimit ("{match["kind"]}" window resets in {match["t"]} s)')
    retry_after = headers.get("Retry-After") or headers.get("retry-after")
    if retry_after is not None:
        seconds = _seconds(retry_after)
        if seconds is not None:
            return Wait(seconds, f"Retry-After: {retry_after.strip()[:40]}")
    return None


class _Bound:
    """The process's bound (its Hub client is shared by every call huggingface_hub makes)."""

    lock = threading.Lock()
    max_wait: float = DEFAULT_MAX_WAIT_SECONDS


class _CallWaits:
    """What the Hub's answers in one call (hubpress's attempts and the library's own retries, in
    this thread) have asked hubpress to wait so far."""

    __slots__ = ("waited",)

    def __init__(self) -> None:
        self.waited = 0.0


_call: contextvars.ContextVar[_CallWaits | None] = contextvars.ContextVar("hub_call_waits", default=None)


@contextlib.contextmanager
def one_call() -> Iterator[None]:
    """Count every wait the Hub asks for inside this block as one call's (see CALL_WAITS)."""
    token = _call.set(_CallWaits())
    try:
        yield
    finally:
        _call.reset(token)


def call_bound() -> float:
    return CALL_WAITS * max_wait()


def _charge(wait: Wait, where: str) -> None:
    """Count `wait` against this call's waits; over the bound, the call stops (HubRateLimited)."""
    call = _call.get()
    if call is None:
        return
    if call.waited + wait.seconds > call_bound():
        raise HubRateLimited(
            f"The Hub at {where} kept asking hubpress to wait ({wait.source}): {call.waited:,.0f} s "
            f"waited in this call already, and hubpress waits at most {call_bound():,.0f} s in all for "
            f"one call ({CALL_WAITS} x HUBPRESS_HUB_MAX_WAIT_SECONDS). Nothing more was sent: run "
            "again later, or raise the bound."
        )
    call.waited += wait.seconds


def set_max_wait(seconds: float) -> None:
    with _Bound.lock:
        _Bound.max_wait = max(0.0, float(seconds))


def max_wait() -> float:
    return _Bound.max_wait


def too_long(wait: Wait, who: str, bound: float | None = None) -> HubRateLimited:
    """The one-line error for a wait over the bound; `who` names the Hub ("The Hub at URL")."""
    bound = max_wait() if bound is None else bound
    return HubRateLimited(
        f"{who} asked hubpress to wait {wait.seconds:,.0f} s ({wait.source}); hubpress "
        f"waits at most {bound:,.0f} s (HUBPRESS_HUB_MAX_WAIT_SECONDS). Nothing more was sent: "
        "run again after the wait, or raise the bound."
    )


def bounded_retry_after(status: int, headers: Any, where: str) -> str | None:
    """The Retry-After value (whole seconds) both retry loops should use for this answer, None to
    leave the answer as it is; raises HubRateLimited when the wait is over the bound."""
    wait = wait_for(status, headers)
    if wait is None:
        if status in WAIT_STATUSES and (headers.get("Retry-After") or headers.get("retry-after")):
            return ""  # an unusable value: drop it, the caller's own backoff applies
        return None
    if wait.seconds > max_wait():
        raise too_long(wait, f"The Hub at {where}")
    _charge(wait, where)
    log.warning(
        "the Hub at %s answered HTTP %d (%s): waiting %.0f s before retrying (at most %.0f s)",
        where,
        status,
        wait.source,
        math.ceil(wait.seconds),
        max_wait(),
    )
    return str(math.ceil(wait.seconds))


def bounding_transport(inner: Any) -> Any:
    """`inner`, with every 429/503 answer passed through the wait rule (hubpress.targets.hub_http
    builds huggingface_hub's client on it, under the deadlines)."""
    import httpx2

    class BoundedWaitTransport(httpx2.BaseTransport):
        """Passes every answer through `bounded_retry_after` before huggingface_hub reads it."""

        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            response = inner.handle_request(request)
            if response.status_code not in WAIT_STATUSES:
                return response
            where = f"{request.url.scheme}://{request.url.netloc.decode('ascii', 'replace')}"
            try:
                value = bounded_retry_after(response.status_code, response.headers, where)
            except HubRateLimited:
                response.close()
                raise
            if value is None:
                return response
            headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "retry-after"]
            if value:
                headers.append(("Retry-After", value))
            return httpx2.Response(
                response.status_code, headers=headers, stream=response.stream, extensions=response.extensions
            )

        def close(self) -> None:
            inner.close()

    return BoundedWaitTransport()
