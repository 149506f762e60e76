"""Each sample's digest (`split/id` -> 16 hex characters: hubpress.shards.fingerprint), held as each
split's ids and 8 bytes of digest a sample, not as a dict of two strings a sample.

A dict of a million samples' digests was about 165 bytes a sample (the `split/id` key, the hex
value, the dict's entry), built beside the decided report: the top of a million samples' plan
(docs/performance.md, "Planning (thirteenth session)"). Here a split's ids are the samples' own
strings, in a list, and the digests one bytearray; a key and its value are made when read, and
the index by key only if one is looked up. It reads, compares and pickles as the dict it
replaces, and PublishedRecords records it as that dict (tests/shards/test_sample_digests.py); it
is no JSON object itself: sample_digests() gives the dict, for json.dumps and the like.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from typing import Any

DIGEST_BYTES = 8  # 16 hex characters


class SampleDigests(Mapping[str, str]):
    """`split/id` -> digest, in the order the splits were added, each split's in its ids' order.
    Keys must be unique: each split's ids distinct, and no split name holding a "/" (so no two
    splits' keys meet); fingerprint_and_digests makes a dict otherwise."""

    __slots__ = ("_parts", "_index")

    def __init__(self) -> None:
        self._parts: list[tuple[str, list[str], bytearray]] = []
        self._index: dict[str, tuple[bytearray, int]] | None = None

    def add_split(self, split: str, ids: list[str], digests: bytearray) -> None:
        """A split's ids and their digests, DIGEST_BYTES each, in the same order."""
        self._parts.append((split, ids, digests))
        self._index = None

    def __len__(self) -> int:
        return sum(len(ids) for _, ids, _ in self._parts)

    def __iter__(self) -> Iterator[str]:
        for split, ids, _ in self._parts:
            prefix = f"{split}/"
            for sid in ids:
                yield prefix + sid

    def _pairs(self) -> Iterator[tuple[str, str]]:
        for split, ids, digests in self._parts:
            prefix = f"{split}/"
            for n, sid in enumerate(ids):
                yield prefix + sid, digests[n * DIGEST_BYTES : (n + 1) * DIGEST_BYTES].hex()

    def items(self) -> ItemsView[str, str]:
        return _Items(self)

    def values(self) -> ValuesView[str]:
        return _Values(self)

    def __getitem__(self, key: str) -> str:
        if self._index is None:
            # Each key's split and position, made once, only when a key is looked up.
            self._index = {
                f"{split}/{sid}": (digests, n)
                for split, ids, digests in self._parts
                for n, sid in enumerate(ids)
            }
        digests, n = self._index[key]
        return digests[n * DIGEST_BYTES : (n + 1) * DIGEST_BYTES].hex()

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except (KeyError, TypeError):
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return len(self) == len(other) and dict(self._pairs()) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # as a dict's

    def __repr__(self) -> str:
        return repr(dict(self._pairs()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuilt, (self._parts,))


def _rebuilt(parts: list[tuple[str, list[str], bytearray]]) -> SampleDigests:
    made = SampleDigests()
    for part in parts:
        made.add_split(*part)
    return made


class _Items(ItemsView[str, str]):
    _mapping: SampleDigests

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return self._mapping._pairs()


class _Values(ValuesView[str]):
    _mapping: SampleDigests

    def __iter__(self) -> Iterator[str]:
        return (value for _, value in self._mapping._pairs())
