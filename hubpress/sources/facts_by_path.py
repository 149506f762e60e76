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

from collections.abc import Iterator, MutableMapping
from typing import Any

from hubpress.sources.image_checks import FileFacts
from hubpress.sources.models import held_sha256


class FactsByPath(MutableMapping[str, FileFacts]):
    """relpath -> FileFacts. `put_shared` is how validation's cache scan adds a file; every
    other way in (`facts[relpath] = ...`, `update`) holds the FileFacts it is given."""

    __slots__ = ("_held", "_shared")

    def __init__(self, items: Any = ()) -> None:
        self._held: dict[str, bytes | str | FileFacts] = {}
        # FileFacts' fields but the sha256, shared by the files held as their sha256 alone: the
        # first fields put_shared was given.
        self._shared: tuple[Any, ...] | None = None
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
        if self._held:
            raise ValueError("FactsByPath.adopt: the mapping already holds facts")
        self._held = held

    @property
    def shared_fields(self) -> tuple[Any, ...] | None:
        """The shared fields themselves (FileFacts' but the sha256), the object held_of compares
        by identity first: a caller that holds a file as `held_sha256(sha)` itself when its
        fields are these (validation's cache scan) holds what held_of would."""
        return self._shared

    def shared(self) -> FileFacts | None:
        """The facts shared by the files held as their sha256 alone (with no sha256), if any."""
        return None if self._shared is None else FileFacts(None, *self._shared)

    @property
    def held_get(self) -> Any:
        """What is held for a relpath (None if nothing): a str or bytes is a sha256 (bytes: the 32
        bytes of its digest, as a FileRef holds it) whose other facts are `shared()`'s, anything
        else its FileFacts. For a caller that reads millions of files and
        needs no FileFacts of a file whose facts are the shared ones (the decision)."""
        return self._held.get

    def update(self, other: Any = (), /, **more: FileFacts) -> None:
        """As a dict's update, at a dict's speed from a dict of FileFacts or from a FactsByPath
        whose shared facts are this one's (or either has none): the flow merges each chunk's
        facts into one, two million files at a million samples."""
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
            self._held.update(other._held)
            return
        super().update(other, **more)

    def __getitem__(self, relpath: str) -> FileFacts:
        return self._facts(self._held[relpath])

    def get(self, relpath: str, default: Any = None) -> Any:  # the decision asks once per file
        held = self._held.get(relpath)
        return default if held is None else self._facts(held)

    def _facts(self, held: Any) -> FileFacts:
        cls = held.__class__
        if cls is bytes:
            return FileFacts(held.hex(), *self._shared)  # type: ignore[misc]
        return FileFacts(held, *self._shared) if cls is str else held  # type: ignore[misc]

    def __setitem__(self, relpath: str, facts: FileFacts) -> None:
        self._held[relpath] = facts

    def __delitem__(self, relpath: str) -> None:
        del self._held[relpath]

    def __contains__(self, relpath: object) -> bool:
        return relpath in self._held

    def __iter__(self) -> Iterator[str]:
        return iter(self._held)

    def __len__(self) -> int:
        return len(self._held)

    def __repr__(self) -> str:
        return f"FactsByPath({dict(self.items())!r})"
