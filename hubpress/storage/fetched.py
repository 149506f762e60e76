"""Source bytes fetched from S3 at intake, kept on local disk for the build, so that each new
object is fetched once per publish, not once to hash it and again to build it.

    spool = FetchedSpool.of(settings)
    spool.keep(sha256, data)       # intake, after hashing and checking a new S3 object
    data = spool.take(sha256)      # the build: the bytes (and the entry is gone), or None

Entries are named by the sha256 of their bytes, which validation has just computed, so the
build's reader (hubpress.sources.reader) holds them to that sha256 and fetches the object again
when an entry does not match: an entry can only ever stand for the content that was validated. A build takes each entry
once and removes it, so a publish that builds what its intake fetched leaves nothing behind.
What no build takes (a sample skipped for another file's fault, a run that failed before its
build) is removed by the next intake once it is `MAX_AGE_SECONDS` old.

The spool holds at most `Settings.fetch_spool_bytes` (default 10 GB; 0 turns it off) and leaves
`FREE_DISK_RESERVE` of its disk free: beyond that, intake keeps nothing and the build fetches
the object again, as before. Each intake process counts against the budget what the spool held
when it started plus what it added, so concurrent intake processes may together overshoot it
by one batch each.

Local sources need no spool: their bytes are in the page cache, and the build holds a local file
to its size and mtime (hubpress.sources.reader)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from hubpress.settings import Settings, get_settings

SPOOL_DIR = "fetched"
MAX_AGE_SECONDS = 24 * 3600
FREE_DISK_RESERVE = 2 * 1024**3


def _is_sha256(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


class FetchedSpool:
    """A directory of fetched source bytes named by their sha256 (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._held: int | None = None  # bytes the spool holds, as this process last counted

    @classmethod
    def of(cls, settings: Settings | None = None) -> FetchedSpool:
        settings = get_settings(settings)
        return cls(Path(settings.cache_dir).expanduser() / SPOOL_DIR, settings.fetch_spool_bytes)

    def _path(self, sha256: str) -> Path | None:
        return self.directory / sha256 if _is_sha256(sha256) else None

    def held_bytes(self) -> int:
        """What the spool holds now (one directory scan)."""
        total = 0
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if _is_sha256(entry.name):
                        try:
                            total += entry.stat().st_size
                        except FileNotFoundError:  # taken meanwhile
                            pass
        except FileNotFoundError:
            return 0
        return total

    def keep(self, sha256: str, data: bytes) -> bool:
        """Keep `data` (whose sha256 the caller computed) for the build; False when the budget or
        the disk says no, or the entry cannot be written (then the build fetches it again)."""
        path = self._path(sha256)
        if path is None or self.max_bytes <= 0:
            return False
        if path.exists():
            return True
        if self._held is None:
            self._held = self.held_bytes()
        if self._held + len(data) > self.max_bytes:
            return False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if shutil.disk_usage(self.directory).free - len(data) < FREE_DISK_RESERVE:
                return False
            # Written aside and renamed: a reader sees a whole entry or none. Not fsync'd (unlike
            # LocalStorage.write_bytes): an entry a crash damages fails the reader's sha256 check,
            # and the object is fetched again.
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            return False
        self._held += len(data)
        return True

    def take(self, sha256: str) -> bytes | None:
        """The kept bytes for this sha256, removed from the spool; None when none are kept."""
        path = self._path(sha256)
        if path is None or self.max_bytes <= 0:
            return None
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        path.unlink(missing_ok=True)  # another build reading it has it open already
        return data

    def sweep(self, max_age_seconds: float = MAX_AGE_SECONDS) -> int:
        """Remove entries (and interrupted writes) older than `max_age_seconds`; returns how many."""
        removed = 0
        horizon = time.time() - max_age_seconds
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if not (_is_sha256(entry.name) or entry.name.startswith(".part-")):
                        continue
                    try:
                        if entry.stat().st_mtime < horizon:
                            os.unlink(entry.path)
                            removed += 1
                    except FileNotFoundError:
                        pass
        except FileNotFoundError:
            return 0
        return removed
