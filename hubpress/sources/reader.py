"""Reading a sample's source files at build time, held to what validation saw, and decoding the
images whose pixels validation left to the build."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from urllib.parse import urlparse

from hubpress.errors import SourceError
from hubpress.settings import Settings
from hubpress.sources.image_checks import decode_problem
from hubpress.sources.models import FileRef
from hubpress.sources.validation import decode_pool, default_workers
from hubpress.storage.fetched import FetchedSpool
from hubpress.storage.files import Storage, is_s3, open_storage
from hubpress.storage.regular import open_regular


class SourceReader:
    """Reads a FileRef's bytes from a local path or S3 and checks that they are the bytes that
    validation saw: a file that changed since validation is an error, never different data.

    A local file that validation listed with its size and mtime is held to those, read from the
    open file before and after reading (the same identity the validation cache trusts), so its
    bytes are not hashed a second time; anything else is held to the sha256 validation recorded.
    An S3 object that intake fetched is read from where intake kept it (hubpress.storage.fetched),
    not fetched again: those are the bytes validation hashed, held to the same sha256."""

    def __init__(self, settings: Settings | None = None, decode_in_process: bool = False):
        """`decode_in_process`: pending decodes run on this process's threads, not on the decode
        processes; for a build with only a few to do (decodes_in_process), for which starting
        those processes would cost more than the decoding."""
        self.settings = settings
        self.decode_in_process = decode_in_process
        self._buckets: dict[str, Storage] = {}
        # Images whose pixels validation left to the build (FileRef.decode_pending) are decoded
        # as they are read, on the decode processes (_decoders), while the build goes on
        # writing, once per content (VERDICTS); `undecodable` waits for them. At most _PENDING_PER_READER
        # decodes wait at once, so a fast reader cannot pile up image bytes in memory.
        self._pending: deque[tuple[FileRef, Future[str | None], bytes | None]] = deque()
        self._failed: list[tuple[FileRef, str]] = []
        self._spool: FetchedSpool | None = None
        # Decodes this reader started: an image whose bytes were decoded already starts none.
        self.decodes = 0

    def _kept(self, ref: FileRef) -> bytes | None:
        """The bytes intake kept for this S3 object, when they are still the validated ones (an
        entry a crash left damaged is not: the object is then fetched again)."""
        if ref.sha256 is None or not is_s3(ref.uri):
            return None
        if self._spool is None:
            self._spool = FetchedSpool.of(self.settings)
        kept = self._spool.take(ref.sha256)
        if kept is None or hashlib.sha256(kept).hexdigest() != ref.sha256:
            return None
        return kept

    def _raw(self, ref: FileRef) -> bytes:
        if is_s3(ref.uri):
            parsed = urlparse(ref.uri)
            storage = self._buckets.get(parsed.netloc)
            if storage is None:
                storage = self._buckets[parsed.netloc] = open_storage(f"s3://{parsed.netloc}", self.settings)
            from botocore.exceptions import ClientError

            try:
                return storage.read_bytes(parsed.path.lstrip("/"))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                    raise FileNotFoundError(ref.uri) from exc
                raise
        with open_regular(ref.uri) as fh:
            return fh.read()

    def __call__(self, ref: FileRef) -> bytes:
        try:
            if ref.version is not None and ref.sha256 is not None and not is_s3(ref.uri):
                return self._decoded(ref, self._local_unchanged(ref))
            kept = self._kept(ref)
            if kept is not None:
                return self._decoded(ref, kept)
            data = self._raw(ref)
        except FileNotFoundError:
            raise SourceError(
                f"{ref.relpath}: the source file {ref.uri} disappeared after validation. "
                "Run the publish again so that intake lists the source afresh."
            ) from None
        if ref.sha256 is not None and hashlib.sha256(data).hexdigest() != ref.sha256:
            # The listing's version (an S3 ETag, size) said "unchanged" and the bytes disagree: the
            # facts kept for that version are not to be trusted, so the run again the error asks
            # for reads and validates the file, instead of failing the same way for ever.
            from hubpress.sources.facts_cache import intake_cache

            intake_cache(self.settings).forget(ref.uri)
            raise _changed(ref, "its sha256 no longer matches")
        return self._decoded(ref, data)

    def _decoded(self, ref: FileRef, data: bytes) -> bytes:
        if ref.decode_pending:
            while len(self._pending) >= _PENDING_PER_READER:
                self._settle(*self._pending.popleft())
            known = VERDICTS.of(ref.sha256)
            if known is not None:  # these bytes were decoded (or are being): the same verdict
                self._pending.append((ref, known, data))
                return data
            self.decodes += 1
            decoded = _submit(ref, data, self.decode_in_process)
            VERDICTS.add(ref.sha256, decoded)
            self._pending.append((ref, decoded, None))
        return data

    def _settle(self, ref: FileRef, decoded: Future[str | None], shared: bytes | None) -> None:
        """`shared`: the bytes of an image whose verdict another read's decode gives (None: its own)."""
        try:
            problem = decoded.result()
        except BaseException:
            VERDICTS.forget(ref.sha256)
            raise
        if problem is _CHANGED and shared is not None:
            # The other file with this content changed under its decode; this one was read and
            # held to what validation saw, so it is decoded on its own.
            self.decodes += 1
            problem = _submit(ref, shared, self.decode_in_process).result()
        if problem is _CHANGED:
            VERDICTS.forget(ref.sha256)
            raise _changed(ref, "its size, modification time or change time differs from what was validated")
        if shared is None:
            VERDICTS.settled(ref.sha256, problem)
        if problem is not None:
            self._failed.append((ref, problem))

    @property
    def undecodable(self) -> list[tuple[FileRef, str]]:
        """The images read so far that did not decode, with the problem's detail (waits for the
        decodes still running)."""
        while self._pending:
            self._settle(*self._pending.popleft())
        return list(self._failed)

    @staticmethod
    def _local_unchanged(ref: FileRef) -> bytes:
        with open_regular(ref.uri) as fh:
            before = os.fstat(fh.fileno())
            data = fh.read()
            after = os.fstat(fh.fileno())
        for st in (before, after):
            if st.st_size != ref.size or _version(st, ref.version) != ref.version or len(data) != ref.size:
                raise _changed(
                    ref, "its size, modification time or change time differs from what was validated"
                )
        return data


_PENDING_PER_READER = 8
_CHANGED = "\0changed"


class DecodeVerdicts:
    """What decoding each content (sha256) gave, in this process. A verdict depends on the bytes
    alone (the pixel limit was applied from the header, before any decode), so an image whose bytes
    were decoded already, at another path (a control shared by several samples, a reused mask),
    takes that verdict instead of a second decode; a decode still running is shared too. The
    newest `limit` verdicts are kept (about 100 bytes each); one a changed file or a broken pool
    cut short is never kept. (Across runs the facts cache keeps each file's verdict.)"""

    def __init__(self, limit: int = 100_000):
        self.limit = limit
        self._lock = threading.Lock()
        self._by_sha: dict[str, Future[str | None] | str | None] = {}

    def of(self, sha256: str | None) -> Future[str | None] | None:
        if sha256 is None:
            return None
        with self._lock:
            if sha256 not in self._by_sha:
                return None
            known = self._by_sha[sha256]
        if isinstance(known, Future):
            return known
        done: Future[str | None] = Future()
        done.set_result(known)
        return done

    def add(self, sha256: str | None, decoded: Future[str | None]) -> None:
        if sha256 is None:
            return
        with self._lock:
            if len(self._by_sha) >= self.limit:
                for old in list(self._by_sha)[: self.limit // 2]:
                    del self._by_sha[old]
            self._by_sha[sha256] = decoded

    def settled(self, sha256: str | None, problem: str | None) -> None:
        """Keep a finished verdict as a plain value (a Future holds a lock and a condition)."""
        if sha256 is not None:
            with self._lock:
                if isinstance(self._by_sha.get(sha256), Future):
                    self._by_sha[sha256] = problem

    def forget(self, sha256: str | None) -> None:
        with self._lock:
            self._by_sha.pop(sha256, None)


VERDICTS = DecodeVerdicts()
_decode_lock = threading.Lock()
_decode_threads: ThreadPoolExecutor | None = None


# Fewer bytes of images to decode than this, in one build, are decoded on threads: a night's few
# new images (4 MB for 20 samples at 256 px) decode in a tenth of a second, and starting the decode
# processes (each a Python with Pillow and hubpress's imports) costs 0.5-1 s of CPU.
DECODE_IN_PROCESS_BELOW = 16 << 20


def decodes_in_process(refs: Iterable[FileRef]) -> bool:
    """Whether a build whose images are `refs` decodes its pending ones on threads (SourceReader)."""
    return sum(ref.size for ref in refs if ref.decode_pending) < DECODE_IN_PROCESS_BELOW


def _decoders() -> Executor:
    """Where images are decoded: the decode processes validation uses (loky's reusable executor,
    hubpress.sources.validation.decode_pool), so decoding never waits on this process's GIL
    (Pillow takes it back between blocks, and build and upload threads hold it often). A daemonic
    process (a Dask worker) may not start processes: there, threads."""
    if not multiprocessing.current_process().daemon:
        return decode_pool(default_workers())
    return _decode_threads_pool()


def _decode_threads_pool() -> ThreadPoolExecutor:
    global _decode_threads
    with _decode_lock:
        if _decode_threads is None:
            _decode_threads = ThreadPoolExecutor(default_workers(), thread_name_prefix="hubpress-decode")
        return _decode_threads


def _submit(ref: FileRef, data: bytes, in_process: bool = False) -> Future[str | None]:
    pool = _decode_threads_pool() if in_process else _decoders()
    if is_s3(ref.uri) or isinstance(pool, ThreadPoolExecutor):
        return pool.submit(decode_problem, data, ref.format)
    # a decode process reads the file again from the page cache: no bytes to pickle
    return pool.submit(decode_file_problem, ref.uri, ref.format, ref.size, ref.version)


def decode_file_problem(path: str, fmt: str | None, size: int, version: str | None) -> str | None:
    """decode_problem for a local file the build has just read, in a decode process; the file
    must still be the one validated (its size and mtime), else _CHANGED."""
    with open_regular(path) as fh:
        data = fh.read()
        st = os.fstat(fh.fileno())
    if version is not None and (_version(st, version) != version or len(data) != size):
        return _CHANGED
    return decode_problem(data, fmt)


def _version(st: os.stat_result, listed: str) -> str:
    """The file's version in the form the listing recorded: "stat_version:inode" (or stat_version alone)."""
    from hubpress.storage.hashcache import stat_version

    return f"{stat_version(st)}:{st.st_ino}" if ":" in listed else stat_version(st)


def _changed(ref: FileRef, why: str) -> SourceError:
    return SourceError(
        f"{ref.relpath}: the source file {ref.uri} changed after validation ({why}). Run the publish "
        "again so that the new content is validated before it is published."
    )
