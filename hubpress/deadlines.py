"""One deadline policy for every outbound call: the Hub, S3 and upstream datasets.

Three bounds, each a `HUBPRESS_*` setting (hubpress.settings), used by every client hubpress
drives:

- `connect_timeout`: opening a connection;
- `read_timeout`: the longest silence inside an answer (and while sending a body). A server that
  accepts a request and never answers is given up after this long;
- `request_deadline` and `min_transfer_rate`: the whole of one phase of a request (sending it and
  receiving the answer's headers; then receiving its body) must end within `request_deadline`
  seconds plus the phase's declared bytes at `min_transfer_rate`. A read timeout alone never ends
  a slow-loris answer (one byte every few seconds resets it); this does.

Where each applies (docs/reliability.md says the same for a person):

- the Hub and upstream datasets: huggingface_hub's shared HTTP client, which `datasets` and
  HfFileSystem use too, is built by hubpress.targets.hub_http through huggingface_hub's
  `set_client_factory`: all three bounds, per request. A request that overruns its deadline is not
  retried (the deadline is the bound); a silent connection is, by huggingface_hub's own backoff;
- S3: botocore's `connect_timeout` and `read_timeout` and its retry mode with `s3_max_attempts`
  attempts; botocore has no whole-request deadline, so an S3 answer is bounded per read.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubpress.errors import HubpressError


@dataclass(frozen=True, slots=True)
class Deadlines:
    connect_timeout: float
    read_timeout: float
    request_deadline: float
    min_transfer_rate: float  # bytes per second

    @classmethod
    def from_settings(cls, settings) -> Deadlines:
        return cls(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            request_deadline=settings.request_deadline,
            min_transfer_rate=settings.min_transfer_rate,
        )

    def for_phase(self, declared_bytes: int | None) -> float:
        """Seconds one phase of a request may take, given the bytes it declares (Content-Length)."""
        return self.request_deadline + max(0, declared_bytes or 0) / self.min_transfer_rate

    def timeouts(self) -> dict[str, float]:
        """httpx's per-phase timeouts (connect, read, write, pool)."""
        return {
            "connect": self.connect_timeout,
            "read": self.read_timeout,
            "write": self.read_timeout,
            "pool": self.request_deadline,
        }


class DeadlineExceeded(HubpressError):
    """An outbound request overran its deadline. Not retried: the deadline is the bound."""

    def __init__(self, url: str, seconds: float, phase: str):
        self.url = url
        self.seconds = seconds
        super().__init__(
            f"{url_without_secrets(url)} did not finish {phase} within its {seconds:.0f} s deadline "
            "(HUBPRESS_REQUEST_DEADLINE plus the declared size at HUBPRESS_MIN_TRANSFER_RATE): the server "
            "is stalling. Check the endpoint and the network, then run again."
        )


def url_without_secrets(url: str) -> str:
    """A URL for a message: scheme, host, port and path only (no user:password, no query)."""
    from urllib.parse import urlsplit

    parts = urlsplit(str(url))
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
