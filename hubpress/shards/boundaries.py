"""Where shards and row groups end: the one rule every build uses, over a stream of rows that
each have a stable key and a byte size.

`cut_rows` walks rows in their published order and yields row groups, each marked when a shard
ends after it. Row groups hold at most `row_group_rows` rows and (beyond one row)
`row_group_bytes` bytes, so the viewer pages well and memory stays bounded.

A shard ends at a content-defined boundary. A row is a *candidate* when a hash of its own key
falls under a threshold proportional to its size (`is_shard_boundary`), so candidates fall every
`spacing` bytes on average whatever the row sizes. A candidate ends a shard when at least
`min_shard_size` bytes lie between it and the candidate before it (the start of the rows counts as
one). That test looks only at the rows since the previous candidate, never at where the current
shard began, so a change (rows added, dropped or resized) can only move the boundaries of the
shard it falls in and of the next one: it never ripples further. A shard that would pass
`max_shard_size` is cut before the row that would take it past; such a cut is not a boundary
for the rule above, so it does not move the boundaries after it either (format 4: before it,
boundaries were counted from the last cut, and a cut at the maximum could shift every later
shard, as rows inserted before the first id showed).

Shards average about half the maximum; the last one (the rows after the last boundary) is bounded
by the maximum like any other, and rows appended after it re-cut only it.

`publish-dataset` feeds it samples ordered by id (key: the id); a refresh feeds it upstream rows in
their published order (key: backend and upstream row). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from hubpress.errors import ConfigError
from hubpress.shards.sizes import (
    DEFAULT_MAX_SHARD_SIZE,
    DEFAULT_ROW_GROUP_BYTES,
    DEFAULT_ROW_GROUP_ROWS,
    parse_size,
)

Row = TypeVar("Row")

# Candidates every (max * this / 100 - min / 2) bytes: shards then average about max/2.
_SPACING_PER_MAX = 36


@dataclass(frozen=True, slots=True)
class ShardBounds:
    """Shard and row-group bounds in bytes and rows, checked."""

    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE
    min_shard_size: int = DEFAULT_MAX_SHARD_SIZE // 8
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES

    @classmethod
    def of(
        cls,
        max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
        min_shard_size: int | str | None = None,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        row_group_bytes: int | str = DEFAULT_ROW_GROUP_BYTES,
    ) -> ShardBounds:
        """Bounds from sizes in bytes or human form ("500MB"); the minimum defaults to max/8."""
        max_size = parse_size(max_shard_size)
        min_size = parse_size(min_shard_size) if min_shard_size is not None else max_size // 8
        if min_size > max_size:
            raise ConfigError(
                f"min_shard_size ({min_size} bytes) is larger than max_shard_size ({max_size} bytes)."
            )
        if row_group_rows < 1:
            raise ConfigError(f"row_group_rows must be at least 1, not {row_group_rows}.")
        return cls(max_size, min_size, row_group_rows, parse_size(row_group_bytes))

    @property
    def spacing(self) -> int:
        """Average bytes between two candidates. A shard ends at the first candidate at least
        `min_shard_size` after the one before it, so shards hold more than one spacing on average:
        this spacing makes them average about max/2 (checked with the defaults, min = max/8)."""
        return max(self.max_shard_size * _SPACING_PER_MAX // 100 - self.min_shard_size // 2, 1)


def is_shard_boundary(key: bytes, row_bytes: int, spacing: int) -> bool:
    """A content-defined boundary after this row, chosen by the row's own key with a probability
    proportional to its size: boundaries fall every `spacing` bytes on average, whatever the row
    sizes, and a boundary stays on its row when rows elsewhere are added, dropped or changed."""
    draw = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return draw < min(1.0, row_bytes / spacing) * 2**64


def cut_rows(
    rows: Iterable[Row],
    bounds: ShardBounds,
    key: Callable[[Row], bytes],
    size: Callable[[Row], int],
) -> Iterator[tuple[list[Row], bool]]:
    """(row group, whether a shard ends after it), in row order. Lazy: rows are read as needed."""
    spacing = bounds.spacing
    group: list[Row] = []
    group_bytes = shard_bytes = 0
    since_candidate = 0  # bytes since the previous candidate (the start of the rows counts as one)
    for row in rows:
        row_bytes = size(row)
        # A row group is only closed when the next row arrives, so `group` is empty only at the
        # start of a shard: the maximum is checked against the whole shard.
        if group and shard_bytes + row_bytes > bounds.max_shard_size:
            yield group, True
            group, group_bytes, shard_bytes = [], 0, 0
        elif group and (
            len(group) >= bounds.row_group_rows or group_bytes + row_bytes > bounds.row_group_bytes
        ):
            yield group, False
            group, group_bytes = [], 0
        group.append(row)
        group_bytes += row_bytes
        shard_bytes += row_bytes
        since_candidate += row_bytes
        if is_shard_boundary(key(row), row_bytes, spacing):
            far_enough = since_candidate >= bounds.min_shard_size
            since_candidate = 0
            if far_enough:
                yield group, True
                group, group_bytes, shard_bytes = [], 0, 0
    if group:
        yield group, True


def cut_counts(
    keys: Iterable[bytes], sizes: Iterable[int], bounds: ShardBounds
) -> list[tuple[tuple[int, ...], int]]:
    """`cut_rows` over rows given as each one's key and size (two iterables of the same length):
    each shard's row group lengths and bytes (the sum of its rows' sizes), in order, as cut_rows
    would cut them, with no callback, group list or yield per row (a million samples' plan cut
    each row through two calls and a list: about a fifth of its shard plans). Held to cut_rows
    by tests/shards/test_cut_counts.py."""
    spacing = bounds.spacing
    max_shard, min_shard = bounds.max_shard_size, bounds.min_shard_size
    group_rows, group_limit = bounds.row_group_rows, bounds.row_group_bytes
    blake2b, from_bytes, top = hashlib.blake2b, int.from_bytes, 2**64
    shards: list[tuple[tuple[int, ...], int]] = []
    groups: list[int] = []
    count = group_bytes = shard_bytes = since_candidate = 0  # count: rows in the open group
    for row_key, row_bytes in zip(keys, sizes, strict=True):
        if count and shard_bytes + row_bytes > max_shard:
            groups.append(count)
            shards.append((tuple(groups), shard_bytes))
            groups, count, group_bytes, shard_bytes = [], 0, 0, 0
        elif count and (count >= group_rows or group_bytes + row_bytes > group_limit):
            groups.append(count)
            count, group_bytes = 0, 0
        count += 1
        group_bytes += row_bytes
        shard_bytes += row_bytes
        since_candidate += row_bytes
        # is_shard_boundary(row_key, row_bytes, spacing), inlined (min(1.0, share) as a comparison)
        share = row_bytes / spacing
        if (
            from_bytes(blake2b(row_key, digest_size=8).digest(), "big")
            < (share if share < 1.0 else 1.0) * top
        ):
            far_enough = since_candidate >= min_shard
            since_candidate = 0
            if far_enough:
                groups.append(count)
                shards.append((tuple(groups), shard_bytes))
                groups, count, group_bytes, shard_bytes = [], 0, 0, 0
    if count:
        groups.append(count)
        shards.append((tuple(groups), shard_bytes))
    return shards
