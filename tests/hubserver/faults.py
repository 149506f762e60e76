"""Faults a test arms on the server.

A fault matches a request when its pattern is found in "METHOD /raw/path" or matches the whole
endpoint name (e.g. "commit", "lfs_upload"); it fires on the next `count` matching requests.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["429", "500", "502", "503", "reset", "reset_mid_body", "stall"]
FAULT_KINDS: tuple[str, ...] = ("429", "500", "502", "503", "reset", "reset_mid_body", "stall")


@dataclass(slots=True)
class Fault:
    pattern: re.Pattern[str]
    kind: FaultKind
    remaining: int
    retry_after: float = 1
    stall_seconds: float = 5

    def matches(self, request_line: str, endpoint: str) -> bool:
        return bool(self.pattern.search(request_line) or self.pattern.fullmatch(endpoint))


@dataclass(frozen=True, slots=True)
class FiredFault:
    kind: FaultKind
    endpoint: str
    request_line: str


class FaultPlan:
    """Armed faults, consumed first-armed first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def arm(
        self,
        pattern: str,
        kind: FaultKind,
        count: int = 1,
        retry_after: float = 1,
        stall_seconds: float = 5,
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {kind!r}: expected one of {', '.join(FAULT_KINDS)}")
        if count < 1:
            raise ValueError(f"A fault fires at least once, got count={count}")
        with self._lock:
            self._faults.append(Fault(re.compile(pattern), kind, count, retry_after, stall_seconds))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, request_line: str, endpoint: str) -> Fault | None:
        """The fault to inject into this request, if one is armed for it (and count it down)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(request_line, endpoint):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    @property
    def armed(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)
