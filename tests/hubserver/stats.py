"""The server's accounting: requests per endpoint, bytes in and out, commits, faults that fired.

A test reads a `Stats` snapshot (`HubServer.stats`) to assert on behaviour, e.g. that an unchanged
re-upload sent no bytes and made no commit.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from .faults import FiredFault


@dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot of the server's accounting since the last reset.

    requests: requests per endpoint name (a Counter: a name never called reads 0), faulted ones included.
    upload_bytes: body bytes received by LFS uploads (basic and parts), inline file contents of commits,
        and xet_bytes.
    xet_bytes: bytes the Xet CAS grew by (xorbs and shards: what Xet clients sent after deduplication).
    xet_files: files Xet clients sent (file records in the shards written), whole or deduplicated.
    download_bytes: body bytes sent by resolve.
    commits: commits created (the initial commit of a new repo is not counted).
    faults: the faults that fired, in order.
    """

    requests: Counter[str]
    upload_bytes: int
    download_bytes: int
    commits: int
    faults: tuple[FiredFault, ...]
    xet_bytes: int = 0
    xet_files: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": dict(self.requests),
            "upload_bytes": self.upload_bytes,
            "xet_bytes": self.xet_bytes,
            "xet_files": self.xet_files,
            "download_bytes": self.download_bytes,
            "commits": self.commits,
            "faults": [f.kind for f in self.faults],
        }


@dataclass(slots=True)
class Accounting:
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _requests: Counter[str] = field(default_factory=Counter)
    _upload_bytes: int = 0
    _download_bytes: int = 0
    _commits: int = 0
    _faults: list[FiredFault] = field(default_factory=list)

    def request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] += 1

    def uploaded(self, nbytes: int) -> None:
        with self._lock:
            self._upload_bytes += nbytes

    def downloaded(self, nbytes: int) -> None:
        with self._lock:
            self._download_bytes += nbytes

    def committed(self) -> None:
        with self._lock:
            self._commits += 1

    def fault(self, fired: FiredFault) -> None:
        with self._lock:
            self._faults.append(fired)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._upload_bytes = self._download_bytes = self._commits = 0
            self._faults.clear()

    def snapshot(self, xet_bytes: int = 0, xet_files: int = 0) -> Stats:
        with self._lock:
            return Stats(
                requests=Counter(self._requests),
                upload_bytes=self._upload_bytes + xet_bytes,
                xet_bytes=xet_bytes,
                xet_files=xet_files,
                download_bytes=self._download_bytes,
                commits=self._commits,
                faults=tuple(self._faults),
            )
