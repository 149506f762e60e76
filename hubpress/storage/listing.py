"""A local listing held as columns: the sequence of ListedFile a listing is, without a ListedFile
per file.

A million samples' listing is two million files. As ListedFile objects each was about 225 bytes
beside its relpath (the object, a version string, the inode and size as ints, the list's slot):
450 MB alive through discovery (docs/performance.md, "Planning (twelfth session)"). Here a file
from a `stat` is its relpath, and its size, mtime, ctime and inode in machine-integer arrays (40
bytes), and its ListedFile, whose version is `stamp_version(mtime, ctime)`, is made when asked.
Any other entry (an UNLISTED one, an S3 object, one given as a ListedFile) is held as given.

Reading, comparing, slicing and pickling are those of the list of ListedFile it replaces
(tests/storage/test_listing_columns.py); code that needs only the relpaths reads them as a list
(`relpaths_of`), and discovery makes each FileRef from the columns (`ref_under`), so neither
makes a ListedFile per file.
"""

from __future__ import annotations

import os
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from hubpress.storage.files import ListedFile
from hubpress.storage.hashcache import stamp_version
from hubpress.storage.stat_worker import columns_of

ODD = -1  # in the inode column: the entry is held as its ListedFile (in _whole)
_INT64 = 2**63


class Listing(Sequence["ListedFile"]):
    """A listing, in listing order. `append_stat` adds a file from its stat (held as columns),
    `append` any ListedFile (held as given)."""

    __slots__ = ("relpaths", "_sizes", "_mtimes", "_ctimes", "_inodes", "_whole")

    def __init__(self, files: Iterable[ListedFile] = ()) -> None:
        self.relpaths: list[str] = []
        self._sizes = array("q")
        self._mtimes = array("q")
        self._ctimes = array("q")
        self._inodes = array("q")
        # index -> the ListedFile of an entry not held as columns (few locally: unlisted entries)
        self._whole: dict[int, ListedFile] = {}
        for listed in files:
            self.append(listed)

    def append_stat(self, relpath: str, st: os.stat_result) -> None:
        """The file at `relpath` as a local listing sees it: ListedFile(relpath, st.st_size,
        stat_version(st), st.st_ino), held as columns (as given, if a number does not fit one)."""
        size, mtime, ctime, inode = st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino
        if not (
            0 <= inode < _INT64
            and -_INT64 < mtime < _INT64
            and -_INT64 < ctime < _INT64
            and 0 <= size < _INT64
        ):
            self.append(ListedFile(relpath, size, stamp_version(mtime, ctime), inode))
            return
        self.relpaths.append(relpath)
        self._sizes.append(size)
        self._mtimes.append(mtime)
        self._ctimes.append(ctime)
        self._inodes.append(inode)

    def extend_stats(self, folder: str, names: list[str], stats: list[os.stat_result]) -> None:
        """append_stat(folder + name, st) for each name and its stat, in order: the columns
        extended a few thousand files at a time, each relpath made in listing order (so the
        strings lie in memory in that order)."""
        columns = columns_of(stats)  # the rule the listing's second process makes its columns by
        if columns is None:  # a number that does not fit: append_stat holds that file whole
            for name, st in zip(names, stats, strict=True):
                self.append_stat(folder + name, st)
            return
        self.extend_columns(folder, names, *columns)

    def extend_columns(
        self, folder: str, names: list[str], sizes: array, mtimes: array, ctimes: array, inodes: array
    ) -> None:
        """As extend_stats, from the stats' four columns (the listing's second process sends them,
        hubpress.storage.stat_worker): each file held as columns, or whole where a number falls
        outside the columns' range, as append_stat holds it."""
        if names and (min(sizes) < 0 or min(inodes) < 0 or min(mtimes) == -_INT64 or min(ctimes) == -_INT64):
            for n, name in enumerate(names):
                size, mtime, ctime, inode = sizes[n], mtimes[n], ctimes[n], inodes[n]
                if inode < 0 or size < 0 or mtime == -_INT64 or ctime == -_INT64:
                    self.append(ListedFile(folder + name, size, stamp_version(mtime, ctime), inode))
                    continue
                self.relpaths.append(folder + name)
                self._sizes.append(size)
                self._mtimes.append(mtime)
                self._ctimes.append(ctime)
                self._inodes.append(inode)
            return
        self.relpaths += map(folder.__add__, names)
        self._sizes += sizes
        self._mtimes += mtimes
        self._ctimes += ctimes
        self._inodes += inodes

    def append(self, listed: ListedFile) -> None:
        self._whole[len(self.relpaths)] = listed
        self.relpaths.append(listed.relpath)
        self._sizes.append(0)
        self._mtimes.append(ODD)
        self._ctimes.append(ODD)
        self._inodes.append(ODD)

    def __len__(self) -> int:
        return len(self.relpaths)

    @overload
    def __getitem__(self, i: int) -> ListedFile: ...
    @overload
    def __getitem__(self, i: slice) -> list[ListedFile]: ...
    def __getitem__(self, i: int | slice) -> ListedFile | list[ListedFile]:
        if isinstance(i, slice):
            return [self._file(n) for n in range(*i.indices(len(self.relpaths)))]
        n = range(len(self.relpaths))[i]  # IndexError and negative indices as a list's
        return self._file(n)

    def _file(self, n: int) -> ListedFile:
        if self._inodes[n] == ODD:
            return self._whole[n]
        return ListedFile(
            self.relpaths[n], self._sizes[n], stamp_version(self._mtimes[n], self._ctimes[n]), self._inodes[n]
        )

    def __iter__(self) -> Iterator[ListedFile]:
        for n in range(len(self.relpaths)):
            yield self._file(n)

    def columns(self) -> tuple[list[str], array, array, array, array]:
        """relpaths, sizes, mtimes, ctimes and inodes; an entry whose inode is ODD is held whole
        (read it as listing[n]), and its other columns mean nothing."""
        return self.relpaths, self._sizes, self._mtimes, self._ctimes, self._inodes

    def ref_version(self, n: int) -> str:
        """The version a FileRef of entry `n` holds (found.file_ref_under): the listed version and
        the inode, without the ListedFile."""
        inode = self._inodes[n]
        if inode == ODD:
            listed = self._whole[n]
            return f"{listed.version}:{listed.inode}" if listed.inode is not None else listed.version
        return f"{stamp_version(self._mtimes[n], self._ctimes[n])}:{inode}"

    def size(self, n: int) -> int:
        return self._whole[n].size if self._inodes[n] == ODD else self._sizes[n]

    def held_whole_at(self) -> set[int]:
        """The indices of the entries held as their ListedFile (every unlisted entry's)."""
        return set(self._whole)

    def without(self, left_out: set[int]) -> Listing:
        """This listing without the entries at `left_out`, in its order, held as columns still."""
        listing = Listing()
        listing.relpaths = [rel for n, rel in enumerate(self.relpaths) if n not in left_out]
        for column, mine in (
            (listing._sizes, self._sizes),
            (listing._mtimes, self._mtimes),
            (listing._ctimes, self._ctimes),
            (listing._inodes, self._inodes),
        ):
            column.extend(value for n, value in enumerate(mine) if n not in left_out)
        # An entry held whole moves down by the entries left out before it.
        gone = sorted(left_out)
        listing._whole = {n - bisect_left(gone, n): lf for n, lf in self._whole.items() if n not in left_out}
        return listing

    def positions(self) -> dict[str, int]:
        """Each relpath's index (the last, if a relpath is listed twice, as a dict of the files by
        relpath keeps the last)."""
        return dict(zip(self.relpaths, range(len(self.relpaths)), strict=True))  # no bytecode per file

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Listing, list)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # as a list's

    def __repr__(self) -> str:
        return repr(list(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuilt,
            (self.relpaths, self._sizes, self._mtimes, self._ctimes, self._inodes, self._whole),
        )


def _rebuilt(
    relpaths: list[str], sizes: array, mtimes: array, ctimes: array, inodes: array, whole: dict[int, Any]
) -> Listing:
    listing = Listing()
    listing.relpaths, listing._sizes, listing._mtimes = relpaths, sizes, mtimes
    listing._ctimes, listing._inodes, listing._whole = ctimes, inodes, whole
    return listing


def relpaths_of(listing: Iterable[ListedFile]) -> Iterable[str]:
    """The relpaths of a listing, in its order: a Listing's column, without a ListedFile each."""
    if isinstance(listing, Listing):
        return listing.relpaths
    return (lf.relpath for lf in listing)


def named(listing: Iterable[ListedFile], wanted: Iterable[str]) -> list[ListedFile]:
    """The entries of `listing` whose relpath is one of `wanted`, in listing order."""
    names = set(wanted)
    if isinstance(listing, Listing):  # each name found by list.index: a scan in C, not a step per file
        relpaths, at = listing.relpaths, []
        for name in names:
            n = -1
            try:
                while True:
                    n = relpaths.index(name, n + 1)
                    at.append(n)
            except ValueError:
                pass
        return [listing[n] for n in sorted(at)]
    return [lf for lf in listing if lf.relpath in names]


__all__ = ["ODD", "Listing", "ListedFile", "named", "relpaths_of"]
