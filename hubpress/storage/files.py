"""Where bytes live: a local directory or an S3 prefix, behind one small interface.

Discovery lists a tree once through `Storage.list`; validation reads through `read_bytes` /
`open`; staging writes through `write_bytes` / `put_file`, which are atomic: a local write goes
to a temporary name and is renamed, an S3 object only appears when its (multipart) upload
completes. All S3 details (client, retries, endpoint)
stay in hubpress.storage.s3.
"""

from __future__ import annotations

import heapq
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from hubpress.frozen_init import quick_frozen_init
from hubpress.settings import Settings, get_settings
from hubpress.storage import names, stat_worker
from hubpress.storage.hashcache import stat_version
from hubpress.storage.listed_reads import NotTheListedFile, copied_as_listed, open_listed, read_as_listed
from hubpress.storage.names import inside, is_inside
from hubpress.storage.regular import open_regular, why_not_regular

if TYPE_CHECKING:
    from hubpress.storage.listing import Listing

# Folders are scanned through a descriptor where the platform can (not on Windows).
_SCAN_BY_FD = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")
UNLISTED = -1  # the size of a ListedFile that stands for an entry that could not be listed


@quick_frozen_init  # one per listed file: 2,000,000 in a million samples' listing
@dataclass(frozen=True, slots=True)
class ListedFile:
    relpath: str  # POSIX, relative to the storage root
    size: int
    version: str  # local: hashcache.stat_version; S3: ETag. With size, the cache key of a file.
    inode: int | None = None


class Storage(Protocol):
    root: str

    def uri(self, relpath: str) -> str: ...
    def list(self, prefix: str = "", report_unlisted: bool = False) -> Iterator[ListedFile]: ...
    def exists(self, relpath: str) -> bool: ...
    def read_bytes(self, relpath: str) -> bytes: ...
    def read_listed(self, listed: ListedFile) -> bytes: ...
    def open(self, relpath: str) -> BinaryIO: ...
    def write_bytes(self, relpath: str, data: bytes) -> None: ...
    def put_file(self, relpath: str, local_path: str | Path) -> None: ...
    def get_file(self, relpath: str, local_path: str | Path) -> None: ...
    def get_listed(self, listed: ListedFile, local_path: str | Path) -> None: ...
    def delete(self, relpath: str) -> None: ...
    def modified(self, relpath: str) -> float | None: ...
    def folders(self) -> list[str]: ...


def check_takes_new_files(folder: str | os.PathLike[str]) -> None:
    """OSError unless `folder` takes a new file: one is made there and removed at once (os.access
    alone does not see a read-only mount, and a folder may refuse its owner). Nothing is left."""
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".hubpress-write-check-")
    os.close(fd)
    os.unlink(probe)


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def open_storage(uri: str, settings: Settings | None = None, own: bool = False) -> Storage:
    """The storage at `uri`. `own`: a location only hubpress writes (staging), whose local reads
    follow links wherever they lead (a `shards` folder linked to a bigger disk); any other
    location's reads are held to its root (hubpress.storage.listed_reads)."""
    if is_s3(uri):
        from hubpress.storage.s3 import S3Storage  # boto3 is imported only where S3 is used

        return S3Storage(uri, settings or get_settings())
    if uri.startswith("file://"):
        uri = names.file_uri_path(uri)
    return LocalStorage(uri, own=own)


class LocalStorage:
    def __init__(self, root: str | Path, own: bool = False):
        self.root = str(Path(root).expanduser().resolve())
        self.own = own  # only hubpress writes here (staging): reads follow links, as written

    def _open(self, relpath: str) -> BinaryIO:
        path = self.uri(relpath)
        return open_regular(path) if self.own else open_listed(path, self.root)

    def uri(self, relpath: str) -> str:
        """root/relpath; the name gate refuses a relpath that is absolute or holds `..` (etc.)."""
        return str(inside(self.root, relpath, what="path", follow_links=False)) if relpath else self.root

    def list(self, prefix: str = "", report_unlisted: bool = False) -> Iterator[ListedFile]:
        """Every regular file below root/prefix, one os.scandir per directory (no globbing).

        A symlinked folder is followed when it stays inside the root, once (a folder reached twice,
        a loop, is not walked again); a symlink that loops, dangles or leads a folder outside the
        root is not listed; with `report_unlisted` it comes out as an UNLISTED entry (size -1, the
        reason as its version) for the caller to report: nothing is dropped silently. File
        symlinks are listed (validation decides whether they leave the root).

        In name order: a folder's files by name (its unlisted entries after them, by name), then
        its sub-folders, each in turn, by name. The order does not depend on the file system's
        (a directory's own order is its hash order on ext4), and a listing comes nearly in relpath
        order, which is the order the listing digest hashes it in and a CSV of sorted ids names
        its files in: reading them in memory order is what makes both cheap at a million samples
        (docs/performance.md, "Planning (fourteenth session)")."""
        for entry in self._entries(prefix, report_unlisted):
            if entry.__class__ is tuple:
                folder, names, stats = entry
                for name, st in zip(names, stats, strict=True):
                    yield ListedFile(folder + name, st.st_size, stat_version(st), st.st_ino)
            else:
                yield entry

    def listing(self, prefix: str = "", report_unlisted: bool = False) -> Listing:
        """`list()`'s entries, in its order, held as columns (hubpress.storage.listing): no
        ListedFile or version string is made per file."""
        from hubpress.storage.listing import Listing

        if type(self).list is not LocalStorage.list:  # a subclass that lists its own way: its entries
            return Listing(self.list(prefix, report_unlisted))
        listing = Listing()
        add_stats, add_columns, add = listing.extend_stats, listing.extend_columns, listing.append
        in_two = _StatsInTwo()
        try:
            for entry in self._entries(prefix, report_unlisted, in_two.stats_of):
                if entry.__class__ is not tuple:
                    add(entry)
                elif len(entry) == 3:
                    add_stats(*entry)
                else:
                    add_columns(*entry)
        finally:
            in_two.close()
        return listing

    def _entries(
        self, prefix: str, report_unlisted: bool, stats_of: StatsOf | None = None
    ) -> Iterator[tuple[str, list[str], list[os.stat_result]] | tuple[Any, ...] | ListedFile]:
        """list()'s walk, in its order: (the folder's relpath and "/", names, their stats) for
        files, a few thousand at a time; a ListedFile for each unlisted entry. `stats_of` stats a
        run of a folder's files (default `_stats_of`; listing()'s may also give (relpath and "/",
        names, sizes, mtimes, ctimes, inodes), the columns a second process sent)."""
        stats_of = stats_of or _stats_of
        unlisted: list[tuple[str, str]] = []
        start = self.uri(prefix)
        if not os.path.isdir(start):
            return
        real_root = os.path.realpath(self.root)
        followed: set[tuple[int, int]] = set()  # folders reached through a symlink, each once
        start_key = _dir_key(start)
        stack = [(start, prefix.strip("/"), start_key, frozenset({start_key}))]
        while stack:
            path, rel, expected, ancestors = stack.pop()
            # Scanned through a descriptor of the folder: each entry's stat is then relative to
            # it (fstatat), not a walk of the whole path again (a tenth of a listing's time).
            folder, gone = None, None
            if _SCAN_BY_FD and path == start:  # the root: its errors are the caller's, as before
                folder = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            elif _SCAN_BY_FD:
                folder, gone = _open_folder(path, expected)
            if gone is not None:  # vanished or swapped since its parent was scanned: reported, not read
                unlisted.append((rel, gone))
            pre = f"{rel}/" if rel else ""
            subfolders: list[tuple[str, str, tuple[int, int], frozenset[tuple[int, int]]]] = []
            try:
                # Regular files (most entries, known by their d_type) by name alone; the rest
                # kept as entries, to be looked at one by one in name order.
                files: list[str] = []
                others: list[os.DirEntry[str]] = []
                add_file = files.append  # a million times in a big folder: no attribute look-up each
                if gone is None:
                    with os.scandir(path if folder is None else folder) as entries:
                        for entry in entries:
                            try:
                                if entry.is_file(follow_symlinks=False):
                                    add_file(entry.name)
                                    continue
                            except OSError:
                                pass  # looked at again below, where its error is reported
                            others.append(entry)
                files.sort()
                run = files
                if others:
                    others.sort(key=_entry_name)
                    run = []
                    for name, entry in _in_name_order(files, others):
                        if entry is None:
                            run.append(name)
                            continue
                        yield from stats_of(folder, path, pre, run, unlisted)
                        run = []
                        child = pre + name
                        try:
                            at = os.path.join(path, name)  # entry.path is the bare name here
                            if entry.is_file(follow_symlinks=False):  # d_type unknown: lstat says
                                yield pre, [name], [entry.stat(follow_symlinks=False)]
                            elif entry.is_dir(follow_symlinks=False):
                                key = (entry.stat(follow_symlinks=False).st_dev, entry.inode())
                                subfolders.append((at, child, key, ancestors | {key}))
                            elif entry.is_symlink() and entry.is_dir():
                                why, key = _why_not_followed(at, real_root, ancestors, followed)
                                if why is None:
                                    subfolders.append((at, child, key, ancestors | {key}))
                                else:
                                    unlisted.append((child, why))
                            elif entry.is_file():  # a symlink to a file
                                yield pre, [name], [entry.stat()]
                            elif entry.is_symlink() and not os.path.exists(at):
                                unlisted.append((child, "is a symbolic link to nothing (dangling)"))
                            else:  # a device, FIFO or socket (or a symlink to one): never read
                                unlisted.append((child, why_not_regular(at) or "is not a regular file"))
                        except OSError as exc:  # ELOOP: a link that points at itself, directly or not
                            unlisted.append((child, _why_not_read(exc)))
                yield from stats_of(folder, path, pre, run, unlisted)
            finally:
                if folder is not None:
                    os.close(folder)
            stack.extend(reversed(subfolders))  # the first by name is walked first
            if report_unlisted:
                for child, why in unlisted:
                    yield ListedFile(child, UNLISTED, why)
            unlisted.clear()

    def exists(self, relpath: str) -> bool:
        return os.path.exists(self.uri(relpath))

    def read_bytes(self, relpath: str) -> bytes:
        with self._open(relpath) as fh:
            return fh.read()

    def read_listed(self, listed: ListedFile) -> bytes:
        """The bytes of a file this storage listed, when it still is that file (listed_reads)."""
        path = self.uri(listed.relpath)
        with open_listed(path, self.root, listed.size, listed.version, listed.inode) as fh:
            return read_as_listed(fh, listed.size, path)  # not a byte more: one appended since

    def open(self, relpath: str) -> BinaryIO:
        return self._open(relpath)

    def write_bytes(self, relpath: str, data: bytes) -> None:
        target = Path(self.uri(relpath))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, relpath: str, local_path: str | Path) -> None:
        target = Path(self.uri(relpath))
        if Path(local_path).resolve() == target:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(local_path, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_file(self, relpath: str, local_path: str | Path) -> None:
        with self._open(relpath) as src, open(local_path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)

    def get_listed(self, listed: ListedFile, local_path: str | Path) -> None:
        """A copy of a file this storage listed, when it is that file from the first byte to the
        last (listed_reads): one rewritten before or while it is copied leaves nothing."""
        path = self.uri(listed.relpath)
        with open_listed(path, self.root, listed.size, listed.version, listed.inode) as src:
            copied_as_listed(src, local_path, listed.size, path)
            if listed.version is not None and stat_version(os.fstat(src.fileno())) != listed.version:
                Path(local_path).unlink(missing_ok=True)
                raise NotTheListedFile(
                    f"{path} was written to while it was copied; nothing of it is kept. Run again once "
                    "nothing writes to it."
                )

    def delete(self, relpath: str) -> None:
        Path(self.uri(relpath)).unlink(missing_ok=True)

    def modified(self, relpath: str) -> float | None:
        """When the file was last written (seconds since the epoch), or None when it is gone."""
        try:
            return os.stat(self.uri(relpath), follow_symlinks=False).st_mtime
        except OSError:
            return None

    def folders(self) -> list[str]:
        """The names of the folders right under the root (no walk below them)."""
        try:
            with os.scandir(self.root) as entries:
                return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []


_STATS_AT_ONCE = 4096  # files stat-ed, then handed to the listing, at a time


StatsOf = Callable[
    [int | None, str, str, list[str], list[tuple[str, str]]],
    Iterator[tuple[str, list[str], Any] | tuple[Any, ...]],
]


class _StatsInTwo:
    """listing()'s `stats_of`: a run of a folder's files big enough to pay for a second process
    (stat_worker.START_FROM files; a tree of a few thousand never starts one), where there is a
    second CPU to run it, is stat-ed half by it (hubpress.storage.stat_worker), giving the
    entries `_stats_of` gives, in its order. The process is started at most once a listing, and
    `close` ends it."""

    def __init__(self) -> None:
        self.worker: stat_worker.StatWorker | None = None
        self.tried = False

    def stats_of(
        self, folder: int | None, path: str, pre: str, names: list[str], unlisted: list[tuple[str, str]]
    ) -> Iterator[tuple[str, list[str], Any] | tuple[Any, ...]]:
        worker = self.worker
        if worker is None and not self.tried and folder is not None and len(names) >= stat_worker.START_FROM:
            self.tried = True
            if stat_worker.cpus_usable() > 1:
                worker = self.worker = stat_worker.StatWorker.start()
        if worker is None or not worker.alive or folder is None or len(names) < 2 * stat_worker.PIECE:
            yield from _stats_of(folder, path, pre, names, unlisted)
            return
        for found, stats, missing in worker.pieces(folder, path, names):
            unlisted.extend((pre + name, _cannot_be_followed(why)) for name, why in missing)
            if not found:
                continue
            if stats.__class__ is list:  # a number that does not fit the columns: as _stats_of gives
                yield pre, found, stats
            else:
                yield (pre, found, *stats)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _in_name_order(
    files: list[str], others: list[os.DirEntry[str]]
) -> Iterator[tuple[str, os.DirEntry[str] | None]]:
    """The sorted `files` (None: a regular file) and the sorted `others`, merged by name."""
    return heapq.merge(
        ((name, None) for name in files), ((entry.name, entry) for entry in others), key=_first
    )


def _first(pair: tuple[str, object]) -> str:
    return pair[0]


def _why_not_read(exc: OSError) -> str:
    return _cannot_be_followed(exc.strerror or exc)


def _cannot_be_followed(why: object) -> str:
    """An entry's problem when its stat failed `why` (here, or in the listing's second process)."""
    return f"cannot be followed ({why})"


def _stats_of(
    folder: int | None, path: str, pre: str, names: list[str], unlisted: list[tuple[str, str]]
) -> Iterator[tuple[str, list[str], list[os.stat_result]]]:
    """(pre, names, their stats) of the regular files `names` of the folder (its descriptor, or
    its path where folders have none), _STATS_AT_ONCE at a time, in their order; a file gone
    since the scan is unlisted, as any entry that cannot be stat-ed."""
    stat = os.stat
    for at in range(0, len(names), _STATS_AT_ONCE):
        chunk = names[at : at + _STATS_AT_ONCE]
        if folder is not None:  # as the listing's second process stats a piece
            missing, stats = stat_worker.stat_piece(folder, chunk)
            if missing:
                gone = {n for n, _ in missing}
                unlisted.extend((pre + chunk[n], _cannot_be_followed(why)) for n, why in missing)
                chunk = [name for n, name in enumerate(chunk) if n not in gone]
        else:
            try:
                stats = [stat(os.path.join(path, name), follow_symlinks=False) for name in chunk]
            except OSError:  # one of them is gone: each on its own, in order
                found: list[str] = []
                stats = []
                for name in chunk:
                    try:
                        stats.append(stat(os.path.join(path, name), follow_symlinks=False))
                        found.append(name)
                    except OSError as exc:
                        unlisted.append((pre + name, _why_not_read(exc)))
                chunk = found
        if chunk:
            yield pre, chunk, stats


def _open_folder(path: str, expected: tuple[int, int]) -> tuple[int | None, str | None]:
    """(a descriptor of the folder at `path`, None), or (None, why it is not read): it vanished or
    cannot be opened, or it is no longer the folder its parent's scan saw (replaced, say by a
    symbolic link to a folder outside the source, between that scan and this open)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        return None, f"is a folder that cannot be read ({exc.strerror or exc})"
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != expected:
        os.close(fd)
        return None, "is a folder that was replaced while the source was listed; it is not read"
    return fd, None


def _dir_key(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _why_not_followed(
    path: str, real_root: str, ancestors: frozenset[tuple[int, int]], followed: set[tuple[int, int]]
) -> tuple[str | None, tuple[int, int]]:
    """(None, key) when the symlinked folder at `path` is walked; else (why not, key)."""
    real = os.path.realpath(path)
    key = _dir_key(path)
    if not is_inside(real, real_root):
        return "is a symbolic link to a folder outside the source; it is not read", key
    if key in ancestors:
        return "is a symbolic link to a folder that contains it (a loop); it is not read again", key
    if key in followed:
        return "is a symbolic link to a folder already read through another link; read once", key
    followed.add(key)
    return None, key


def unless_outside(storage: Storage, listed: ListedFile, what: str) -> ListedFile:
    """`listed`, or an UNLISTED entry when it is a local file reached through a symbolic link
    that leads outside the storage's root (a config linked to a credentials file): such a file
    is not `what`'s own, and is reported instead of read."""
    if not isinstance(storage, LocalStorage) or listed.size == UNLISTED:
        return listed
    real_root = os.path.realpath(storage.root)
    real = os.path.realpath(os.path.join(storage.root, listed.relpath))
    if is_inside(real, real_root):
        return listed
    return ListedFile(
        listed.relpath, UNLISTED, f"is a symbolic link to a file outside the {what}; it is not read"
    )
