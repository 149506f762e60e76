"""A shaped link for the Hub-protocol server: a fixed latency added to every response, and request
and response bodies paced to one rate shared by every connection (one machine's uplink).

`TokenBucket` is the pacing: each transfer reserves its bytes on one shared timeline (the link is
busy until `next_free`), and the caller sleeps until its bytes would have left. The clock and the
sleep are injectable, so tests check the arithmetic without waiting.

    link = Link(latency_ms=50, mbytes_per_s=40)      # python -m tests.hubserver --latency-ms 50 --mbytes-per-s 40
    link.before_response()                           # sleeps 50 ms
    link.transfer(len(chunk))                        # sleeps until the chunk has left at 40 MB/s
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MB = 1_000_000  # link rates are decimal megabytes per second, as network links are quoted


class TokenBucket:
    """Bytes at `rate` per second on one timeline shared by all callers, with `burst` bytes that may
    go at once (so small bodies are not delayed by rounding). Thread-safe."""

    def __init__(
        self,
        rate: float,
        burst: int = 64 * 1024,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = float(rate)
        self.burst_s = burst / self.rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free = 0.0
        self.bytes = 0  # accounting: bytes paced so far
        self.waited = 0.0  # accounting: seconds callers were told to wait

    def reserve(self, nbytes: int) -> float:
        """Book `nbytes` on the link; returns how long the caller must wait before they have left."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_free)
            self._next_free = start + nbytes / self.rate
            delay = max(0.0, self._next_free - now - self.burst_s)
            self.bytes += nbytes
            self.waited += delay
            return delay

    def take(self, nbytes: int) -> float:
        delay = self.reserve(nbytes)
        if delay > 0:
            self._sleep(delay)
        return delay


class Link:
    """Latency per response plus a shared rate for bodies; a Link() with no arguments does nothing."""

    def __init__(
        self,
        latency_ms: float = 0,
        mbytes_per_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if latency_ms < 0:
            raise ValueError(f"latency must be >= 0 ms, got {latency_ms}")
        self.latency_s = latency_ms / 1000
        self.bucket = TokenBucket(mbytes_per_s * MB, clock=clock, sleep=sleep) if mbytes_per_s else None
        self._sleep = sleep
        self._lock = threading.Lock()
        self.responses = 0  # accounting: responses delayed by the latency

    @property
    def shaped(self) -> bool:
        return self.latency_s > 0 or self.bucket is not None

    def before_response(self) -> None:
        if self.latency_s > 0:
            with self._lock:
                self.responses += 1
            self._sleep(self.latency_s)

    def transfer(self, nbytes: int) -> None:
        """Pace one chunk of a request or response body."""
        if self.bucket is not None and nbytes > 0:
            self.bucket.take(nbytes)
