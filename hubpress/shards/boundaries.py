"""Where shards and row groups end: the one rule every build uses, over a stream of rows that
each have a stable key and a byte size.

`cut_rows` walks rows in their published order and yields row groups, each marked when a shard
ends after it. Row groups hold at most `row_group_rows` rows and (beyond one row)
`row_group_bytes` bytes, so the viewer pages well and memory stays bounded. A shard ends at a
content-defined boundary (`is_shard_boundary`: chosen by the row's own key, with a probability
proportional to its size) once it holds `min_shard_size`, and is cut before a row that would take
it past `max_shard_size`. So boundaries fall every (max/2 - min) bytes on average, shards average
about half the maximum, and a boundary stays on its row when rows elsewhere are added, dropped or
changed: a re-publish uploads the few shards that changed, not every shard after the first change.

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
        """Average bytes between two natural boundaries, so shards average about max/2."""
        return max(self.max_shard_size // 2 - self.min_shard_size, 1)


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
        if shard_bytes >= bounds.min_shard_size and is_shard_boundary(key(row), row_bytes, spacing):
            yield group, True
            group, group_bytes, shard_bytes = [], 0, 0
    if group:
        yield group, True
