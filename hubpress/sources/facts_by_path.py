"""What validation established about each file, by relpath: a mapping of FileFacts that holds the
facts most files share once.

A night's validation finds nearly every file in the facts cache, and most images of a dataset
share every fact but their sha256 (format, size, no error, decoded or not). A FileFacts per file
was 120 bytes, 240 MB of a million samples' plan at its peak (docs/performance.md, "Planning
(eleventh session)"): here a file whose facts are the shared ones is held as its sha256 alone
(64 hex digits as their 32 bytes, as the decision's FileRef holds and shares them:
hubpress.sources.models.held_sha256), and its FileFacts is made when asked. Any other file's
FileFacts is held as it was given. Reading, comparing and updating are those of a dict of
FileFacts (tests/sources/test_facts_by_path.py).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, MutableMapping
from itertools import compress, count, islice
from operator import attrgetter, ge
from typing import Any

from hubpress.sources.image_checks import FileFacts
from hubpress.sources.models import held_sha256

_RELPATH = attrgetter("relpath")
# More sorted runs than this in the files' columns: the files are not in an order worth following.
MOST_RUNS = 64
# How many files past the cursor `FilesInOrder.find` looks before it bisects.
LOOK_AHEAD = 8


class FilesInOrder:
    """A whole tree's files in the samples' order (each sample's controls, then its target, every
    sample with as many), found by relpath without a dict of them: each column (a sample's n-th
    file) is a few runs of strictly increasing relpaths (discovery sorts a split's samples by id,
    and a dataset names its files after them), and no two runs overlap, so every relpath is there
    at most once and is found by following a cursor or, failing that, by bisecting its run. A
    dict of two million files by relpath was about 80 MB of a million samples' plan at its peak
    (docs/performance.md, "Planning (sixteenth session: validation without a dict of every
    file)"). `of` says None when the files are not so: the caller indexes them by a dict."""

    __slots__ = ("refs", "stride", "_firsts", "_runs")

    def __init__(self, refs: list[Any], stride: int, runs: list[tuple[str, str, int, int]]) -> None:
        self.refs = refs
        self.stride = stride
        runs = sorted(runs)
        self._firsts = [run[0] for run in runs]
        self._runs = runs  # (first relpath, last relpath, first position, positions past the last)

    @classmethod
    def of(cls, refs: list[Any], stride: int) -> FilesInOrder | None:
        """The files `refs` (a sample's `stride` files after another's), or None when a column is
        not a few sorted runs or two runs overlap (a relpath may be there twice)."""
        if stride < 1 or len(refs) % stride:
            return None
        relpaths = list(map(_RELPATH, refs))
        runs: list[tuple[str, str, int, int]] = []
        for column in range(stride):
            col = relpaths[column::stride]
            if not col:
                continue
            # where a run ends: a relpath not less than the next one
            ends = [*compress(count(1), map(ge, col, islice(col, 1, None))), len(col)]
            if len(runs) + len(ends) > MOST_RUNS:
                return None
            start = 0
            for end in ends:
                runs.append((col[start], col[end - 1], column + start * stride, column + end * stride))
                start = end
        runs.sort()
        for before, after in zip(runs, islice(runs, 1, None), strict=False):
            if not before[1] < after[0]:  # overlapping runs: a relpath may be there twice
                return None
        return cls(refs, stride, runs)

    def find(self, relpath: str, at: int) -> int:
        """The position of the file `relpath`, or -1: at `at` or a few past it first (the order
        of the caller's questions is usually the files'), else by bisecting its run."""
        refs = self.refs
        for pos in range(at, min(at + LOOK_AHEAD, len(refs))):
            if refs[pos].relpath == relpath:
                return pos
        return self.bisect(relpath)

    def bisect(self, relpath: str) -> int:
        """The position of the file `relpath`, or -1, by bisecting its run."""
        if not isinstance(relpath, str):  # None, a number: no file's, as a dict's key would be
            return -1
        r = bisect_right(self._firsts, relpath) - 1
        if r < 0:
            return -1
        first, last, start, stop = self._runs[r]
        if relpath > last:
            return -1
        stride, refs = self.stride, self.refs
        positions = range(start, stop, stride)
        k = bisect_left(positions, relpath, key=lambda pos: refs[pos].relpath)
        if k < len(positions) and refs[positions[k]].relpath == relpath:
            return positions[k]
        return -1


class FactsByPath(MutableMapping[str, FileFacts]):
    """relpath -> FileFacts. `put_shared` is how validation's cache scan adds a file; every
    other way in (`facts[relpath] = ...`, `update`) holds the FileFacts it is given."""

    __slots__ = ("_held", "_shared", "_files", "_vals", "_found")

    def __init__(self, items: Any = ()) -> None:
        self._held: dict[str, bytes | str | FileFacts] = {}
        # FileFacts' fields but the sha256, shared by the files held as their sha256 alone: the
        # first fields put_shared was given.
        self._shared: tuple[Any, ...] | None = None
        # Held in the files' order (adopt_in_order): what held_of gave for each file of `_files`,
        # None for a file not found there, whose facts, if any, `_held` holds, with any other
        # file's. Read as the dict they stand for: found files first, in order, then `_held`'s.
        self._files: FilesInOrder | None = None
        self._vals: list[Any] | None = None
        self._found = 0
        self.update(items)

    def put_shared(self, relpath: str, sha256: str | None, fields: tuple[Any, ...]) -> None:
        """facts[relpath] = FileFacts(sha256, *fields), held as the sha256 alone when `fields`
        are the shared ones (the first given), as most files of a dataset's are."""
        self._held[relpath] = self.held_of(sha256, fields)

    def held_of(self, sha256: str | None, fields: tuple[Any, ...]) -> Any:
        """What put_shared holds for FileFacts(sha256, *fields) (the first fields given become the
        shared ones): for a caller that fills a dict of its own to `adopt`."""
        shared = self._shared
        if shared is None and sha256.__class__ is str:
            shared = self._shared = fields
        if sha256.__class__ is str and (fields is shared or fields == shared):
            # As a FileRef holds it (32 bytes for 64 hex digits), and shared with the decided
            # FileRef: 40 bytes a file less than the text.
            return held_sha256(sha256)
        return FileFacts(sha256, *fields)

    def adopt(self, held: dict[str, Any]) -> None:
        """Hold `held` (relpath -> what held_of gave, or a FileFacts) as this mapping's own dict,
        not a copy of it: validation's cache scan fills the dict it indexed its files in, which
        a copy would double at validation's peak. This mapping must be empty."""
        if self._held or self._files is not None:
            raise ValueError("FactsByPath.adopt: the mapping already holds facts")
        self._held = held

    def adopt_in_order(self, files: FilesInOrder, vals: list[Any]) -> None:
        """Hold `vals[i]` (what held_of gave, a FileFacts, or None: nothing) as the facts of the
        file `files.refs[i]`, without a dict of them by relpath: read by finding the file's
        position (FilesInOrder), the decision's questions mostly in the files' own order. This
        mapping must be empty; it reads, iterates and compares as the dict
        {relpath: held for each file found, in order} would."""
        if self._held or self._files is not None:
            raise ValueError("FactsByPath.adopt_in_order: the mapping already holds facts")
        if len(vals) != len(files.refs):
            raise ValueError("FactsByPath.adopt_in_order: a value per file, none more")
        self._files, self._vals = files, vals
        self._found = len(vals) - vals.count(None)

    def _materialise(self) -> dict[str, Any]:
        """The facts as one dict by relpath, from now on (a change the files' order cannot hold)."""
        if self._files is not None:
            held = {
                ref.relpath: val
                for ref, val in zip(self._files.refs, self._vals, strict=True)
                if val is not None
            }  # type: ignore[arg-type]
            held.update(self._held)
            self._held, self._files, self._vals, self._found = held, None, None, 0
        return self._held

    def held_items(self) -> Iterator[tuple[str, Any]]:
        """(relpath, what is held for it) in the mapping's order: for tests, which hold the ways
        of holding the facts to one another."""
        if self._files is not None:
            for ref, val in zip(self._files.refs, self._vals, strict=True):  # type: ignore[arg-type]
                if val is not None:
                    yield ref.relpath, val
        yield from self._held.items()

    def _held_of_path(self, relpath: str) -> Any:
        """What is held for `relpath`, or None."""
        if self._files is not None:
            pos = self._files.bisect(relpath)
            if pos >= 0 and (held := self._vals[pos]) is not None:  # type: ignore[index]
                return held
        return self._held.get(relpath)

    @property
    def shared_fields(self) -> tuple[Any, ...] | None:
        """The shared fields themselves (FileFacts' but the sha256), the object held_of compares
        by identity first: a caller that holds a file as `held_sha256(sha)` itself when its
        fields are these (validation's cache scan) holds what held_of would."""
        return self._shared

    def forget_shared(self) -> None:
        """Forget the shared fields a scan that put nothing in this mapping chose (validation's
        in-order scan, giving up): the scan run instead chooses them anew, from its first row."""
        if self._held or self._files is not None:
            raise ValueError("FactsByPath.forget_shared: the mapping holds facts that share them")
        self._shared = None

    def shared(self) -> FileFacts | None:
        """The facts shared by the files held as their sha256 alone (with no sha256), if any."""
        return None if self._shared is None else FileFacts(None, *self._shared)

    @property
    def held_get(self) -> Any:
        """What is held for a relpath (None if nothing): a str or bytes is a sha256 (bytes: the 32
        bytes of its digest, as a FileRef holds it) whose other facts are `shared()`'s, anything
        else its FileFacts. For a caller that reads millions of files and
        needs no FileFacts of a file whose facts are the shared ones (the decision). Facts held
        in the files' order are read from where the last question's file was (each getter keeps
        its own place): a caller that asks in the samples' order asks no dict. A getter reads
        the facts as they were when it was made, but for changes to files not found."""
        files = self._files
        if files is None:
            return self._held.get
        refs, vals, extra, find = files.refs, self._vals, self._held, files.find
        assert vals is not None
        last = len(refs)
        at = 0

        def held_get(relpath: str) -> Any:
            nonlocal at
            if at < last and refs[at].relpath == relpath:
                pos = at
            else:
                pos = find(relpath, at)
                if pos < 0:
                    return extra.get(relpath)
            at = pos + 1
            held = vals[pos]
            return extra.get(relpath) if held is None else held

        return held_get

    def update(self, other: Any = (), /, **more: FileFacts) -> None:
        """As a dict's update, at a dict's speed from a dict of FileFacts or from a FactsByPath
        whose shared facts are this one's (or either has none): the flow merges each chunk's
        facts into one, two million files at a million samples."""
        if self._files is not None and (other or more):
            self._materialise()
        if not more and other.__class__ is dict:
            self._held.update(other)
            return
        if (
            not more
            and isinstance(other, FactsByPath)
            and (other._shared is None or self._shared is None or other._shared == self._shared)
        ):
            if self._shared is None:  # this one holds no sha256 string yet: take its shared facts
                self._shared = other._shared
            self._held.update(other._materialise() if other._files is not None else other._held)
            return
        super().update(other, **more)

    def __getitem__(self, relpath: str) -> FileFacts:
        held = self._held_of_path(relpath) if self._files is not None else self._held[relpath]
        if held is None:
            raise KeyError(relpath)
        return self._facts(held)

    def get(self, relpath: str, default: Any = None) -> Any:  # the decision asks once per file
        held = self._held_of_path(relpath) if self._files is not None else self._held.get(relpath)
        return default if held is None else self._facts(held)

    def _facts(self, held: Any) -> FileFacts:
        cls = held.__class__
        if cls is bytes:
            return FileFacts(held.hex(), *self._shared)  # type: ignore[misc]
        return FileFacts(held, *self._shared) if cls is str else held  # type: ignore[misc]

    def __setitem__(self, relpath: str, facts: FileFacts) -> None:
        if self._files is not None:
            pos = self._files.bisect(relpath)
            if pos >= 0 and self._vals[pos] is not None:  # type: ignore[index]
                self._vals[pos] = facts  # type: ignore[index]  # in its place, as a dict's value
                return
        self._held[relpath] = facts

    def __delitem__(self, relpath: str) -> None:
        del self._materialise()[relpath]

    def __contains__(self, relpath: object) -> bool:
        if self._files is not None and isinstance(relpath, str):  # any str, as a dict finds it
            return self._held_of_path(relpath) is not None
        return relpath in self._held

    def __iter__(self) -> Iterator[str]:
        if self._files is None:
            return iter(self._held)
        return self._iter_in_order()

    def _iter_in_order(self) -> Iterator[str]:
        vals = self._vals
        for ref, val in zip(self._files.refs, vals, strict=True):  # type: ignore[union-attr, arg-type]
            if val is not None:
                yield ref.relpath
        yield from self._held

    def __len__(self) -> int:
        return self._found + len(self._held)

    def __repr__(self) -> str:
        return f"FactsByPath({dict(self.items())!r})"
