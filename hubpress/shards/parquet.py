"""The one parquet writer every build uses: `publish-dataset`'s shards and a refresh's shards come
out of `ShardWriter`, whatever their rows.

It writes with the options `datasets` itself uses for the given features (no compression for
image columns, PLAIN encoding, content-defined pages, a page index), less the statistics of media
bytes (see writer_options), and the Hugging Face features
metadata in the schema, so `datasets.load_dataset` decodes the columns unchanged; and it records
the chunking options in the footer as datasets does. Each `write_row_group` call is one row group
(the caller's plan decides them: hubpress.shards.boundaries). A shard appears complete or not at
all: it is written under a temporary name, hashed, then renamed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from hubpress.storage.hashcache import sha256_file

if TYPE_CHECKING:  # imported when a shard is written: an unchanged publish never loads pyarrow
    import pyarrow as pa

Row = TypeVar("Row")


@dataclass(frozen=True, slots=True)
class BuiltShard:
    path_in_repo: str
    local_path: str
    sha256: str  # of the file's bytes
    size: int  # of the file
    num_rows: int
    split: str
    num_bytes: int  # uncompressed Arrow bytes of the rows, what dataset cards call num_bytes


def writer_options(features: Any) -> dict[str, Any]:
    """The ParquetWriter options datasets uses for these features (fixed, so output is reproducible),
    with one departure: no min/max statistics for media bytes (images, audio, video).

    Statistics over megabyte-sized random-looking values are never useful for pruning, and Arrow
    computes them for every page the page index lists: they took two thirds of the time spent
    writing a shard of 1024 px images (bench/bench_qflux_1024.py). Every other column (ids,
    prompts, captions, sizes) keeps its statistics, so readers can still prune on those."""
    from datasets import config
    from datasets.arrow_writer import get_parquet_column_options

    columns = get_parquet_column_options(features, features.arrow_schema)
    # datasets stores media bytes uncompressed (PLAIN, no dictionary) and dictionary-encodes the rest.
    media = set(columns["column_encoding"])
    return {
        "use_content_defined_chunking": dict(config.DEFAULT_CDC_OPTIONS),
        "write_page_index": True,
        **columns,
        "write_statistics": [leaf for leaf in columns["compression"] if leaf not in media],
    }


class ShardWriter:
    """One parquet shard, written one row group at a time under `root` (a temporary name until
    `finish`). Use as a context manager: leaving it by an exception removes the partial file."""

    def __init__(self, root: str | os.PathLike[str], features: Any, options: dict[str, Any] | None = None):
        import pyarrow.parquet as pq

        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.schema: pa.Schema = features.arrow_schema
        options = options if options is not None else writer_options(features)
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".shard-", suffix=".parquet.tmp")
        os.close(fd)
        self._tmp: Path | None = Path(tmp_name)
        try:
            self._writer = pq.ParquetWriter(self._tmp, self.schema, **options)
        except BaseException:
            self._tmp.unlink(missing_ok=True)  # a full disk fails here already: leave nothing
            raise
        # datasets records the chunking options in the footer; do the same so files match its own.
        self._writer.add_key_value_metadata(
            {"content_defined_chunking": json.dumps(options["use_content_defined_chunking"])}
        )
        self.num_rows = 0
        self.num_bytes = 0

    def write_row_group(self, table: pa.Table) -> None:
        """Write `table` as one row group (an empty table still makes a loadable, empty file)."""
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self.num_rows += table.num_rows
        self.num_bytes += table.nbytes
        del table
        # Hand the row group's memory back now, so the next one reuses it instead of adding to it.
        import pyarrow as pa

        pa.default_memory_pool().release_unused()

    def finish(
        self,
        path_in_repo: str | Callable[[str], str],
        split: str,
        local_path: str | os.PathLike[str] | None = None,
    ) -> BuiltShard:
        """Close, hash and rename the shard to `local_path` (default `<root>/<path_in_repo>`).
        `path_in_repo` may be a function of the file's sha256, for shards named by content."""
        assert self._tmp is not None, "finish() called twice"
        self._writer.close()
        tmp, self._tmp = self._tmp, None
        try:
            sha = sha256_file(tmp)
            size = tmp.stat().st_size
            name = path_in_repo(sha) if callable(path_in_repo) else path_in_repo
            final = Path(local_path) if local_path is not None else self.root / name
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return BuiltShard(
            path_in_repo=name,
            local_path=str(final),
            sha256=sha,
            size=size,
            num_rows=self.num_rows,
            split=split,
            num_bytes=self.num_bytes,
        )

    def abort(self) -> None:
        if self._tmp is not None:
            tmp, self._tmp = self._tmp, None
            try:
                self._writer.close()  # may fail again (a full disk): the file goes all the same
            except OSError:
                pass
            finally:
                tmp.unlink(missing_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()  # after finish() there is nothing left to remove


def content_name(split: str) -> Callable[[str], str]:
    """`data/<split>-<first 16 hex of the file's sha256>.parquet`: a shard named by its bytes keeps
    its name when shards before it are added or removed, so a plan sees it unchanged."""
    return lambda sha256: f"data/{split}-{sha256[:16]}.parquet"


def write_shards(
    groups: Iterable[tuple[list[Row], bool]],
    to_table: Callable[[list[Row]], pa.Table],
    features: Any,
    root: str | os.PathLike[str],
    split: str,
) -> list[BuiltShard]:
    """Shards from a stream of (row group, ends shard), as hubpress.shards.boundaries.cut_rows yields
    them, each named by content under `<root>/data/`. Rows are read as the groups are written, so
    memory holds one row group. No row at all still gives one loadable, empty shard."""
    shards: list[BuiltShard] = []
    writer: ShardWriter | None = None
    try:
        for group, ends_shard in groups:
            if writer is None:
                writer = ShardWriter(root, features)
            if group:
                writer.write_row_group(to_table(group))
            if ends_shard:
                shards.append(writer.finish(content_name(split), split))
                writer = None
        if not shards and writer is None:
            writer = ShardWriter(root, features)
            writer.write_row_group(writer.schema.empty_table())
        if writer is not None:
            shards.append(writer.finish(content_name(split), split))
            writer = None
    finally:
        if writer is not None:
            writer.abort()
    return shards
