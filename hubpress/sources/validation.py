"""Validation: read every file a sample uses, hash it, check every image's header, and fully
decode it here or, for a publish, in the build (`decode=False`: see below).

Work goes chunk by chunk. For each chunk the hash cache is asked first (one batched lookup keyed
by URI, size and mtime_ns:inode locally or ETag on S3); only files it does not know are read, in
worker processes (decoding is CPU-bound), and their facts are written back. A few files, or a
night's few header-only checks, are read in this process (checks_inline): starting the workers
would cost more than the work.

The worker processes come from loky's reusable executor, not from a multiprocessing pool: its
workers do not re-import the caller's `__main__` (spawn and forkserver do, which makes library code
called from a plain script without an `if __name__ == "__main__":` guard fail with "... before the
current process has finished its bootstrapping phase"), they are started once per process and
reused by every chunk and every call, they exit after `POOL_IDLE_SECONDS` without work, and they
are stopped when the interpreter exits (or dies: they watch their parent).
A re-run over an unchanged tree therefore reads no bytes at all, and a changed tree reads only
what changed. `ValidationStats` counts the work, so tests and reports can show it.

Facts are plain values (`FileFacts`); what they mean for a sample (skip it, warn, correct) is
decided later by `hubpress.sources.intake.decide`.

`decode=False` checks an image's header (format, size, EXIF orientation, the pixel limit) and
leaves its pixels to the shard build, which has the bytes in hand anyway: a publish then reads
each new image for its hash here and decodes it once, in the build, while earlier shards upload
(`decode_problem`; hubpress.sources.reader.SourceReader). Such facts say `decoded=False`, and a
full validation (`hubpress scan`, the Python API) decodes the image again rather than trust them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from hubpress.settings import Settings, get_settings
from hubpress.sources.discovery import gc_paused
from hubpress.sources.facts_by_path import LOOK_AHEAD, FactsByPath, FilesInOrder
from hubpress.sources.facts_cache import (
    FactsFromCache,
    FileJob,
    cached_image_verdict,
    from_cache,
    intake_cache,
    to_info,
    usable_facts,
)
from hubpress.sources.formats import DEFAULT_MAX_PIXELS
from hubpress.sources.image_checks import FileFacts, check_image_bytes, check_prompt_bytes
from hubpress.sources.models import FileRef, Sample, held_root, held_stamp, stamp_text
from hubpress.storage.fetched import FetchedSpool
from hubpress.storage.files import Storage, is_s3, open_storage
from hubpress.storage.hashcache import USUAL_INFO, HashCache, parse_info
from hubpress.storage.listed_reads import NotTheListedFile, open_listed
from hubpress.storage.regular import NotRegularFile

DEFAULT_CHUNK = 2000
# Fewer files than this are checked inline: starting worker processes would cost more.
INLINE_BELOW = 16
# Header-only checks of local files (a publish's intake: the build decodes) cost a read and a sha256
# each, about a millisecond for a 1 MB image: fewer files than this, and fewer bytes, are checked
# inline, as starting the worker processes (0.3-1 s, and their imports) costs more. A night's few
# new samples are checked this way; a first publish's thousands of files still go to the workers.
HEADERS_INLINE_BELOW = 512
HEADERS_INLINE_BYTES = 256 << 20
# From this many files, the cache's entries under the root are read in one scan (_facts_by_scan),
# unless it holds more than SCAN_ENTRIES_PER_FILE entries there per file.
SCAN_FROM = 1000
SCAN_ENTRIES_PER_FILE = 2
# Idle decode workers exit after this long; the next chunk starts them again (~0.3 s).
POOL_IDLE_SECONDS = 60


@dataclass(slots=True)
class ValidationStats:
    files: int = 0
    cache_hits: int = 0
    files_read: int = 0
    bytes_read: int = 0
    images_decoded: int = 0
    files_kept: int = 0  # new S3 objects kept for the build (hubpress.storage.fetched)
    files_in_workers: int = 0  # files checked by the worker processes (the rest inline)
    chunks: int = 0

    def add(self, other: ValidationStats) -> None:
        for name in self.__slots__:  # type: ignore[attr-defined]
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


@dataclass(slots=True)
class ValidationResult:
    # By relpath; the facts most files share are held once (hubpress.sources.facts_by_path).
    facts: FactsByPath = field(default_factory=FactsByPath)
    stats: ValidationStats = field(default_factory=ValidationStats)


_TRIED_FIRST = 4096  # samples whose files JobsOfRefs.of_in_order tries in order before the rest


class JobsOfRefs(Sequence[FileJob]):
    """file_jobs(samples), held as the samples' own FileRefs: each FileJob is made when read. A
    FileJob per file (a 5-tuple, about 90 bytes) was 180 MB of a million samples' validation peak
    (docs/performance.md, "Planning (twelfth session)"). The FileRefs are held by relpath, the
    index the cache scan (_facts_by_scan) wants: when every file is held under the scan's root,
    the scan takes this dict over as its own (`take_index`) rather than building another of two
    million files. A dataset's usual samples (as many controls, a target, nothing else) have
    their files held as one list in the samples' order and no dict at all (`of_in_order`,
    FilesInOrder), which the cache scan follows (_scan_refs_in_order). Reads as the list
    file_jobs returns (tests/sources/test_jobs_of_refs.py)."""

    __slots__ = ("by_relpath", "prompts", "_refs", "_count", "in_order")

    def __init__(self, by_relpath: dict[str, FileRef], prompts: frozenset[str]) -> None:
        self.by_relpath: dict[str, FileRef] | None = by_relpath  # None once the scan took it
        self.prompts = prompts  # the relpaths whose first mention is a prompt file (few or none)
        self._refs: list[FileRef] | None = None
        self._count = len(by_relpath)
        # The files in order, found without a dict (of_in_order), or None: by_relpath holds them.
        self.in_order: FilesInOrder | None = None

    @classmethod
    def of(cls, samples: Iterable[Sample]) -> JobsOfRefs:
        if not isinstance(samples, list):
            samples = list(samples)
        in_order = cls.of_in_order(samples)
        if in_order is not None:
            return in_order
        refs: dict[str, FileRef] = {}
        prompts: set[str] = set()
        keep = refs.setdefault  # the first mention of a relpath is its job: one lookup a file
        for sample in samples:
            ref = sample.prompt_file
            if ref is not None and ref.relpath not in refs:
                refs[ref.relpath] = ref
                prompts.add(ref.relpath)
            for ref in sample.controls:  # file_jobs' order: controls, mask, target
                keep(ref.relpath, ref)
            if (ref := sample.mask) is not None:
                keep(ref.relpath, ref)
            if (ref := sample.target) is not None:
                keep(ref.relpath, ref)
        return cls(refs, frozenset(prompts))

    @classmethod
    def of_in_order(cls, samples: list[Sample]) -> JobsOfRefs | None:
        """The samples' files without a dict of them by relpath, when every sample has as many
        controls, a target, no mask and no prompt file, and FilesInOrder can tell each relpath
        is there once (a dataset's usual shape): file_jobs' order is then each sample's controls
        and target in turn. None otherwise."""
        if not samples:
            return None
        first = samples[0]
        stride = len(first.controls) + 1
        refs: list[FileRef] = []
        add, extend = refs.append, refs.extend
        # The first samples' files are tried alone first: files not in order are told at once
        # rather than after a pass over a million samples (about 0.3 s).
        for part in (samples[:_TRIED_FIRST], samples[_TRIED_FIRST:]):
            for sample in part:
                controls, target = sample.controls, sample.target
                if (
                    target is None
                    or len(controls) + 1 != stride
                    or sample.mask is not None
                    or sample.prompt_file is not None
                ):
                    return None
                extend(controls)
                add(target)
            files = FilesInOrder.of(refs, stride)
            if files is None:
                return None
        jobs = cls({}, frozenset())
        jobs.by_relpath, jobs._refs, jobs._count, jobs.in_order = None, refs, len(refs), files
        return jobs

    @property
    def refs(self) -> list[FileRef]:
        """The FileRefs in file_jobs' order."""
        if self._refs is None:
            if self.by_relpath is None:
                raise ValueError("JobsOfRefs: its files were handed to the cache scan (take_index)")
            self._refs = list(self.by_relpath.values())
        return self._refs

    def take_index(self) -> dict[str, FileRef]:
        """The dict of FileRefs by relpath, handed over to a caller that changes it (the cache
        scan): this JobsOfRefs is not read afterwards but for its length and prompts."""
        if self.by_relpath is None and self.in_order is not None:  # distinct: first mention is all
            self.by_relpath, self.in_order = {ref.relpath: ref for ref in self.in_order.refs}, None
        index, self.by_relpath = self.by_relpath, None
        if index is None:
            raise ValueError("JobsOfRefs: its files were handed to the cache scan already")
        self._refs = None
        return index

    def take_in_order(self) -> FilesInOrder:
        """The files in order, handed over to the cache scan, whose facts then hold them: as
        take_index, this JobsOfRefs is not read afterwards but for its length and prompts."""
        files, self.in_order, self._refs = self.in_order, None, None
        if files is None:
            raise ValueError("JobsOfRefs: its files are not in order, or the cache scan has them already")
        return files

    def job(self, ref: FileRef) -> FileJob:
        return FileJob.of(ref, "prompt" if ref.relpath in self.prompts else "image")

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self.job(ref) for ref in self.refs[i]]
        return self.job(self.refs[i])

    def __iter__(self) -> Iterator[FileJob]:
        return map(self.job, self.refs)


def file_jobs(samples: Iterable[Sample]) -> list[FileJob]:
    """Every file the samples use, once each, in a stable order."""
    jobs: dict[str, FileJob] = {}
    # FileJob.of, inlined: two million calls at 1M samples
    new_job, root_of = tuple.__new__, held_root
    for sample in samples:
        ref = sample.prompt_file
        if ref is not None and ref.relpath not in jobs:
            jobs[ref.relpath] = FileJob.of(ref, "prompt")
        # Sample.images()'s order (controls, mask, target), without a list per sample.
        for ref in (*sample.controls, sample.mask, sample.target):
            if ref is not None and ref.relpath not in jobs:  # a job per file, not per mention
                jobs[ref.relpath] = new_job(
                    FileJob, (ref.relpath, root_of(ref), ref.size, ref.version or "", "image")
                )
    return list(jobs.values())


# --------------------------------------------------------------------------------------- workers

_WORKER_STORAGE: dict[str, Storage] = {}


def _storage_for(root: str, settings: Settings | None) -> Storage:
    storage = _WORKER_STORAGE.get(root)
    if storage is None:
        storage = _WORKER_STORAGE[root] = open_storage(root, settings)
    return storage


def _read(storage: Storage, job: FileJob) -> tuple[bytes | None, FileFacts | None]:
    """The file's bytes, or the facts that say why it cannot be used. Transient S3 errors propagate."""
    if not is_s3(job.uri):
        real = os.path.realpath(job.uri)
        root = os.path.realpath(storage.root)
        if real != root and not real.startswith(root + os.sep):
            return None, FileFacts(
                error="path_outside_root", detail=f"a symlink that leaves the source root (-> {real})"
            )
        try:
            # The file listed (its inode), not one swapped in on any part of its path since.
            with open_listed(real, root, inode=_listed_inode(job.version), resolved=True) as fh:
                return fh.read(), None
        except NotTheListedFile:
            return None, FileFacts(
                error="missing_file", detail="replaced after it was listed; it is not read"
            )
        except FileNotFoundError:
            return None, FileFacts(error="missing_file", detail="listed, but gone before it could be read")
        except NotRegularFile as exc:  # swapped for a device or FIFO after the listing
            return None, FileFacts(error="undecodable_image", detail=str(exc))
        except OSError as exc:
            return None, FileFacts(error="undecodable_image", detail=f"cannot read: {exc.strerror or exc}")
    from botocore.exceptions import ClientError

    try:
        return storage.read_bytes(job.relpath), None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
            return None, FileFacts(error="missing_file", detail="listed, but gone before it could be read")
        raise


def _listed_inode(version: str) -> int | None:
    """The inode a local file's listed version ends with ("stat_version:inode"), if any."""
    inode = version.rpartition(":")[2]
    return int(inode) if ":" in version and inode.isdigit() else None


def check_files(
    root: str,
    jobs: Sequence[FileJob],
    max_pixels: int,
    settings: Settings | None = None,
    storage: Storage | None = None,
    decode: bool = True,
    keep_for_build: bool = False,
) -> tuple[list[tuple[str, FileFacts]], ValidationStats]:
    """Read and check one batch of files (in a worker process, or inline with the caller's storage).
    `keep_for_build`: S3 objects read here are kept for the build (hubpress.storage.fetched)."""
    storage = storage if storage is not None else _storage_for(root, settings)
    spool = FetchedSpool.of(settings) if keep_for_build and is_s3(root) else None
    stats = ValidationStats()
    out: list[tuple[str, FileFacts]] = []
    for job in jobs:
        data, refused = _read(storage, job)
        if refused is not None:
            out.append((job.relpath, refused))
            continue
        assert data is not None
        stats.files_read += 1
        stats.bytes_read += len(data)
        if job.kind == "prompt":
            out.append((job.relpath, check_prompt_bytes(data)))
        else:
            facts = check_image_bytes(data, max_pixels, decode)
            stats.images_decoded += facts.decoded  # header-only checks leave it to the build
            if spool is not None and facts.error is None and facts.sha256 is not None:
                stats.files_kept += spool.keep(facts.sha256, data)
            out.append((job.relpath, facts))
    return out, stats


def checks_inline(todo: Sequence[FileJob], root: str, decode: bool) -> bool:
    """Whether these files are checked in this process rather than by the worker processes: a
    few files, or header-only checks of local files whose reading and hashing cost less than
    starting the workers (HEADERS_INLINE_BELOW). On S3 each read is a round trip, which the
    workers overlap."""
    if len(todo) < INLINE_BELOW:
        return True
    if decode or is_s3(root):
        return False
    return len(todo) < HEADERS_INLINE_BELOW and sum(job.size for job in todo) < HEADERS_INLINE_BYTES


def _batched(items: Sequence[FileJob], size: int) -> Iterator[Sequence[FileJob]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


# More decoding processes than this per usable CPU only cost memory (each holds Pillow and an
# image): `--workers 100000` had loky start processes until the machine ran out of it.
WORKERS_PER_CPU = 4


def checked_workers(workers: int | None) -> int | None:
    """`workers` when this machine can use that many decoding processes, else ConfigError."""
    # the machine's CPUs, not the usable ones: a publish on threads asks os.cpu_count() workers
    most = WORKERS_PER_CPU * max(default_workers(), os.cpu_count() or 1)
    if workers is not None and not 1 <= workers <= most:
        from hubpress.errors import ConfigError

        raise ConfigError(
            f"--workers {workers}: this machine can use 1 to {most} decoding processes "
            f"({WORKERS_PER_CPU} per CPU); leave it out for one per CPU."
        )
    return workers


def decode_pool(workers: int) -> Executor:
    """The process's shared pool of `workers` decode processes (see the module docstring)."""
    from loky import get_reusable_executor

    return get_reusable_executor(max_workers=workers, timeout=POOL_IDLE_SECONDS)


def validate_files(
    jobs: Sequence[FileJob],
    *,
    root: str,
    settings: Settings | None = None,
    cache: HashCache | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    decode: bool = True,
    keep_for_build: bool = False,
) -> ValidationResult:
    """Facts for every job: from the cache when it knows the file's version, else read and decoded.

    `workers=1` checks inline (no processes); otherwise `decode_pool(workers)` (default: the
    usable CPUs) checks the files the cache did not know. `decode=False` checks image headers
    only and leaves the pixels to the build (see the module docstring); with `decode`, cached
    header-only facts are checked again. `keep_for_build` (a publish's intake): the S3 objects
    read here are kept on local disk for the build, which then does not fetch them again
    (hubpress.storage.fetched).
    """
    settings = settings or get_settings()
    cache = cache if cache is not None else intake_cache(settings)
    workers = checked_workers(workers) or default_workers()
    if keep_for_build and is_s3(root):
        FetchedSpool.of(settings).sweep()  # what earlier runs kept and no build took
    with gc_paused():  # a fact per file, all kept: nothing for the cyclic GC to find
        return _validate_chunks(
            jobs, root, settings, cache, max_pixels, workers, chunk_size, decode, keep_for_build
        )


def _validate_chunks(
    jobs: Sequence[FileJob],
    root: str,
    settings: Settings,
    cache: HashCache,
    max_pixels: int,
    workers: int,
    chunk_size: int,
    decode: bool,
    keep_for_build: bool,
) -> ValidationResult:
    result = ValidationResult()
    counts = result.stats
    counts.files, counts.chunks, counts.cache_hits = len(jobs), -(-len(jobs) // chunk_size), len(jobs)
    # After a scan, only the files it did not find are looked up and read (a night's new files).
    pool: Executor | None = None

    def warm_up(new_files: int) -> None:
        """Start the worker processes now, when that many files are sure to go to them (see
        checks_inline): their start and imports (about half a second of wall time) then overlap
        the cache scan, on the other CPU, rather than follow it."""
        nonlocal pool
        first_chunk = min(new_files, chunk_size)  # checks_inline asks of each chunk's files
        if workers > 1 and first_chunk >= (INLINE_BELOW if decode or is_s3(root) else HEADERS_INLINE_BELOW):
            pool = decode_pool(workers)
            for _ in range(workers):  # no files: each worker imports what checking needs
                pool.submit(check_files, root, [], max_pixels, settings, None, decode, False)

    missed = _facts_by_scan(jobs, root, cache, max_pixels, decode, result.facts, warm_up)
    inline_storage: Storage | None = None
    for chunk in _batched(jobs if missed is None else missed, chunk_size):
        known = cache.get_many([(j.uri, j.size, j.version) for j in chunk])
        from_cache = FactsFromCache()  # while `known` holds the parsed entries it keys on
        todo: list[FileJob] = []
        for job in chunk:
            hit = known.get((job.uri, job.size, job.version))
            facts = usable_facts(from_cache(job, *hit), job, max_pixels, decode) if hit else None
            if facts is None:
                todo.append(job)
            else:
                result.facts[job.relpath] = facts
        counts.cache_hits -= len(todo)
        del known, from_cache
        if not todo:
            continue
        inline = checks_inline(todo, root, decode)
        if workers > 1 and not inline and pool is None:
            pool = decode_pool(workers)
        batches: list[tuple[list[tuple[str, FileFacts]], ValidationStats]]
        if pool is None or inline:
            if inline_storage is None:
                inline_storage = open_storage(root, settings)
            batches = [check_files(root, todo, max_pixels, settings, inline_storage, decode, keep_for_build)]
        else:
            size = max(4, min(256, -(-len(todo) // (workers * 4))))
            result.stats.files_in_workers += len(todo)
            futures = [
                pool.submit(check_files, root, list(part), max_pixels, settings, None, decode, keep_for_build)
                for part in _batched(todo, size)
            ]
            try:
                batches = [f.result() for f in futures]
            except BaseException:
                for future in futures:  # the pool is shared: leave it no work nobody waits for
                    future.cancel()
                raise
        by_path = {job.relpath: job for job in todo}
        rows = []
        for checked, stats in batches:
            result.stats.add(stats)
            for relpath, facts in checked:
                result.facts[relpath] = facts
                job = by_path[relpath]
                # Read failures say nothing lasting about a version of a file: not cached.
                if facts.error not in ("missing_file", "path_outside_root") and facts.sha256 is not None:
                    rows.append((job.uri, job.size, job.version, facts.sha256, to_info(job, facts)))
        cache.put_many(rows)
    return result


_UNSEEN = object()
# What FactsByPath holds for a file (FactsByPath.held_of): in the scan's index, a file found; a
# FileRef or FileJob there is a file not found yet.
_HELD = frozenset({bytes, str, FileFacts})


def _facts_by_scan(
    jobs: Sequence[FileJob],
    root: str,
    cache: HashCache,
    max_pixels: int,
    decode: bool,
    facts: FactsByPath,
    surely_new: Callable[[int], None] | None = None,
) -> list[FileJob] | None:
    """Put into `facts` what the cache knows of the jobs, from one range scan of its entries under
    the root (HashCache.under) rather than chunk by chunk, and return the jobs it did not find,
    in order: a night's validation of a whole tree wants nearly every entry there, and the scan
    costs about a third per file (a million samples' two million lookups were a quarter of the
    plan). None, having done nothing, when it would not pay: few files, or many more entries
    under the root than files (a tree mostly deleted). `surely_new` is told, before the scan of
    a whole tree's samples, how many of its files the cache cannot hold (fewer entries under the
    root than files: each file needs one of its own), so that the reading of them can be got
    ready while the scan runs."""
    if len(jobs) < SCAN_FROM:
        return None
    prefix = root.rstrip("/") + "/"
    most = SCAN_ENTRIES_PER_FILE * len(jobs)
    entries = cache.count_under(prefix, most + 1)
    if entries > most:
        return None
    if isinstance(jobs, JobsOfRefs) and not facts and _all_held_under(jobs, prefix):
        if surely_new is not None and len(jobs) > entries:
            surely_new(len(jobs) - entries)
        if jobs.in_order is not None:
            missed = _scan_refs_in_order(jobs, prefix, cache, max_pixels, decode, facts)
            if missed is not None:
                return missed
        return _scan_refs_in_place(jobs, prefix, cache, max_pixels, decode, facts)
    # Indexed by the path under the prefix, which is the job's relpath when it holds the prefix as
    # its root (every discovered file): no URI is made per file.
    # A JobsOfRefs is indexed by its FileRefs, and a job made for each entry found, while it is
    # compared: no FileJob per file is alive at once.
    unfound: dict[str, Any] = {}
    elsewhere = False
    all_by_relpath = True  # every file indexed by its own relpath (held under the root itself)
    plen = len(prefix)
    if isinstance(jobs, JobsOfRefs):
        as_job = jobs.job
        for ref in jobs.refs:
            if held_root(ref) == prefix:
                unfound[ref.relpath] = ref
            elif (uri := ref.uri).startswith(prefix):
                unfound[uri[plen:]] = ref
                all_by_relpath = False
            else:
                elsewhere = True
    else:
        as_job = None
        for job in jobs:
            if job[1] == prefix:
                unfound[job[0]] = job
            elif (uri := job.uri).startswith(prefix):
                unfound[uri[plen:]] = job
                all_by_relpath = False
            else:  # not under the root: the scan cannot find it
                elsewhere = True
    # Every file indexed by its relpath, and the facts empty (a whole tree's validation): a found
    # file's facts take its place in the index itself, which becomes the facts' dict (adopt), so
    # the two dicts of every file (about 85 MB each at a million samples) are not both alive at
    # validation's peak. Otherwise each found file is put into `facts` and taken out of the index.
    in_place = not elsewhere and not facts and all_by_relpath
    # An image entry's verdict (its usable facts but the sha256, or None: read the file), worked
    # out once per distinct entry: keyed by the parsed entry's identity, valid while the scan
    # holds the parsed entries (most images of a dataset share one).
    verdicts: dict[int, Any] = {}
    for uri, size, version, sha, info in cache.under(prefix):
        under = uri[plen:]
        job = unfound.get(under)
        if job is None or job.__class__ in _HELD:  # unknown, or found already (its facts in place)
            continue
        if as_job is not None:
            job = as_job(job)
        if job.size != size or job.version != version:
            continue
        if info and job.kind == "image":
            fields = verdicts.get(id(info), _UNSEEN)
            if fields is _UNSEEN:
                fields = verdicts[id(info)] = cached_image_verdict(info, max_pixels, decode)
            if fields is None:
                continue
            if in_place:
                unfound[under] = facts.held_of(sha, fields)
                continue
            facts.put_shared(job.relpath, sha, fields)
        else:
            known = usable_facts(from_cache(job, sha, info), job, max_pixels, decode)
            if known is None:
                continue
            if in_place:
                unfound[under] = known
                continue
            facts[job.relpath] = known
        del unfound[under]
    if in_place:
        # The files not found, in the jobs' order, out of the index; the rest are the facts.
        missed = [held for held in unfound.values() if held.__class__ not in _HELD]
        for held in missed:
            del unfound[held.relpath if as_job is not None else held[0]]
        facts.adopt(unfound)
        return missed if as_job is None else [as_job(ref) for ref in missed]
    if elsewhere:  # in the jobs' order, as always
        return [job for job in jobs if job[0] not in facts]
    return list(unfound.values()) if as_job is None else [as_job(ref) for ref in unfound.values()]


def _all_held_under(jobs: JobsOfRefs, prefix: str) -> bool:
    """Whether every FileRef of the jobs holds `prefix` as its root (every discovered file under
    the source root): then each is the entry `prefix + relpath` of the cache. Not yet scanned."""
    if jobs.in_order is not None:
        return set(map(held_root, jobs.in_order.refs)) == {prefix}
    return jobs.by_relpath is not None and set(map(held_root, jobs.by_relpath.values())) == {prefix}


def _verdict_of_text(info: str | None, max_pixels: int, decode: bool) -> tuple[Any, ...] | None:
    """cached_image_verdict of an entry's info text (None, damaged or empty: read the file)."""
    parsed = parse_info(info) if info else None
    return cached_image_verdict(parsed, max_pixels, decode) if parsed else None


def _cached_row_reader(
    facts: FactsByPath, usual: str | None, max_pixels: int, decode: bool, prompts: Any
) -> Callable[[FileRef, str, str, Any, Any], Any]:
    """What the facts hold for a facts-cache row of a file of the samples, as both whole-tree
    scans (_scan_refs_in_place, _scan_refs_in_order) read it: the file's sha256 as `held_sha256`
    holds it when its facts are the shared ones, else its FileFacts; None when the row does not
    hold for the file (another version, an entry to read again). The row's size is the caller's
    to compare. Each row is compared with its file's stamp as held (no version made through the
    FileRef's property), each distinct info text is worked out once (`usual`: the text rows_under
    gives as USUAL_INFO), and a prompt file (one of `prompts`) is judged as a prompt."""
    verdicts: dict[Any, Any] = {None: None, "": None, USUAL_INFO: _verdict_of_text(usual, max_pixels, decode)}
    shared = facts.shared_fields
    fromhex = bytes.fromhex

    def held_of_row(ref: FileRef, rel: str, version: str, sha: Any, info: Any) -> Any:
        nonlocal shared
        held = held_stamp(ref)
        if held.__class__ is int:  # under_stamp's "mtime+ctime:inode", as FileRef.version writes it
            if version != stamp_text(held):
                return None
        elif (ref.version or "") != version:
            return None
        if prompts and rel in prompts:
            job = FileJob.of(ref, "prompt")
            text = usual if info.__class__ is int else info  # USUAL_INFO: the usual text
            return usable_facts(
                from_cache(job, sha, parse_info(text) if text else None), job, max_pixels, decode
            )
        fields = verdicts.get(info, _UNSEEN)
        if fields is _UNSEEN:
            fields = verdicts[info] = _verdict_of_text(info, max_pixels, decode)
        if fields is None:
            return None
        if fields is shared and sha.__class__ is str:
            # held_sha256, inlined: 64 lowercase hex digits as their 32 bytes, else as given
            if len(sha) == 64:
                try:
                    digest = fromhex(sha)
                except ValueError:
                    return sha
                return digest if digest.hex() == sha else sha
            return sha
        # The first entry (whose fields become the shared ones), or another's.
        held = facts.held_of(sha, fields)
        shared = facts.shared_fields
        return held

    return held_of_row


def _scan_refs_in_place(
    jobs: JobsOfRefs, prefix: str, cache: HashCache, max_pixels: int, decode: bool, facts: FactsByPath
) -> list[FileJob]:
    """_facts_by_scan of a whole tree's samples (every FileRef held under the root, the facts
    empty), the night's case, at about half the cost per file of the general scan: the samples'
    own index by relpath is the scan's (JobsOfRefs.take_index) and, as in the general scan's
    in-place case, becomes the facts' dict; each cache row is read by _cached_row_reader
    (without a FileJob, each distinct info text worked out once). What it puts in `facts`, and the
    files it misses, in order, are the general scan's (tests/sources/test_scan_in_place.py)."""
    index: dict[str, Any] = jobs.take_index()
    plen, get = len(prefix), index.get
    # By info text (None: read the file); the usual text's as rows_under gives it, USUAL_INFO.
    usual = cache.first_info_under(prefix)
    held_of_row = _cached_row_reader(facts, usual, max_pixels, decode, jobs.prompts)
    for rows in cache.rows_under(prefix, usual):
        for uri, size, version, sha, info in rows:
            rel = uri[plen:]
            ref = get(rel)
            if ref is None or ref.__class__ in _HELD or ref.size != size:  # unknown, found, other size
                continue
            held = held_of_row(ref, rel, version, sha, info)
            if held is not None:
                index[rel] = held
    # The files not found, in the jobs' order, out of the index; the rest are the facts.
    missed = [held for held in index.values() if held.__class__ not in _HELD]
    for ref in missed:
        del index[ref.relpath]
    facts.adopt(index)
    return [jobs.job(ref) for ref in missed]


# The in-order scan gives up (and the dict's scan runs) when more cache rows than this, plus one in
# BISECTS_PER_ROW of those read, had to be looked for by bisection: a cache in another order.
BISECTS_FREE = 4096
BISECTS_PER_ROW = 8


def _scan_refs_in_order(
    jobs: JobsOfRefs, prefix: str, cache: HashCache, max_pixels: int, decode: bool, facts: FactsByPath
) -> list[FileJob] | None:
    """_scan_refs_in_place without a dict of the files by relpath: the files are in order
    (jobs.in_order) and so, mostly, are the cache's rows (the table's order is the order
    validation put them in, the samples'; the key's order is each folder's), so each row's file
    is found at, or a few past, the one after the last row's, else by bisection; the facts are
    held in a list beside the files (FactsByPath.adopt_in_order). What it puts in `facts`, and
    the files it misses, in order, are the dict's scan's (tests/sources/test_scan_in_order.py).
    None, having put nothing in `facts`, when too many rows were out of order: the caller scans
    again with the dict."""
    files = jobs.in_order
    assert files is not None
    refs = files.refs
    vals: list[Any] = [None] * len(refs)
    last = len(refs)
    plen, find = len(prefix), files.find
    usual = cache.first_info_under(prefix)
    held_of_row = _cached_row_reader(facts, usual, max_pixels, decode, None)
    at = 0
    rows_read = bisected = 0
    for rows in cache.rows_under(prefix, usual):
        rows_read += len(rows)
        for uri, size, version, sha, info in rows:
            rel = uri[plen:]
            if at < last and (ref := refs[at]).relpath == rel:
                pos = at
            else:
                pos = find(rel, at)
                if not at <= pos < at + LOOK_AHEAD:  # not in the look-ahead: bisected
                    bisected += 1
                    if bisected > BISECTS_FREE + rows_read // BISECTS_PER_ROW:
                        facts.forget_shared()  # the dict's scan chooses them anew, from the same row
                        return None
                if pos < 0:
                    continue
                ref = refs[pos]
            at = pos + 1
            if vals[pos] is not None or ref.size != size:  # found already, or another size
                continue
            vals[pos] = held_of_row(ref, rel, version, sha, info)
    missed = [jobs.job(ref) for ref, val in zip(refs, vals, strict=True) if val is None]
    facts.adopt_in_order(jobs.take_in_order(), vals)
    return missed


def validate_samples(
    samples: Sequence[Sample],
    *,
    root: str,
    settings: Settings | None = None,
    cache: HashCache | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    decode: bool = True,
    keep_for_build: bool = False,
) -> ValidationResult:
    """Validate every file of the samples (see validate_files), chunk by chunk."""
    with gc_paused():
        jobs = JobsOfRefs.of(samples)
    return validate_files(
        jobs,
        root=root,
        settings=settings,
        cache=cache,
        max_pixels=max_pixels,
        workers=workers,
        chunk_size=chunk_size,
        decode=decode,
        keep_for_build=keep_for_build,
    )
