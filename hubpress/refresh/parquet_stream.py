"""Streaming rows of a Hub dataset's parquet files at a fixed revision, in bounded memory.

`datasets` streams parquet through pyarrow's threaded batch reader, which reads row groups ahead
of the consumer without a bound: streaming a 300 MB file held about all of it in memory, so peak
memory grew with the dataset (measured in bench/bench_refresh.py). Here each file is opened through
HfFileSystem (range requests) and read one row group at a time, without reader threads, only the
columns asked for, so a streaming refresh holds one row group whatever the dataset's size.

Without streaming, the files are downloaded (into huggingface_hub's cache) and scanned in two
phases: the metadata columns of every row, then the media of the surviving rows, reading only the
row groups that hold some (`rows_at`). No Arrow copy of the dataset is prepared, as
`load_dataset` would.

The files are the ones `datasets` itself resolves for the split (its builder's data_files, from
the card's configs or the default patterns), so the rows and their order are the same as
`load_dataset(..., streaming=True)` gives; media columns come out as their stored {bytes, path}
structs, which is what a `decode=False` feature yields there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from hubpress.errors import SourceError
from hubpress.refresh.upstream_listing import ListedUpstreamFile
from hubpress.storage.names import repo_file_url

log = logging.getLogger("hubpress.refresh")

BATCH_ROWS = 64  # rows converted to Python at a time, inside one row group
# A row group is read whole (`rows_at`), and pyarrow allocates for the rows its footer claims
# before reading a page: a footer claiming billions of rows in a file of a few KB asked malloc
# for 16 GB. A footer claiming more rows in one row group than this is refused before any read
# (2**27 rows is already a gigabyte per 8-byte column; the Hub's own parquet conversion writes
# row groups of at most about 100 MB).
MAX_ROW_GROUP_ROWS = 2**27


def _shown_file(path: str) -> str:
    """A data file's path in its repo: after the revision of an hf:// path, after the snapshot
    folder of huggingface_hub's cached copy."""
    if path.startswith("hf://"):
        return path.split("@", 1)[-1].split("/", 1)[-1]
    _, snapshot, rest = path.partition("/snapshots/")
    return rest.split("/", 1)[-1] if snapshot else path


class UpstreamFileNotAsListed(SourceError):
    """A downloaded upstream file whose size or sha256 is not what the upstream lists; removed."""


@contextmanager
def _damaged(dataset: str, path: str) -> Iterator[None]:
    """pyarrow's refusal of a file that is not the parquet its footer says (a footer longer than
    the file, page headers that are not there) as one line naming the dataset and the file. An
    OSError with an errno (a full disk, a network failure) is not the file's fault: left as is."""
    import pyarrow as pa

    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, (KeyboardInterrupt, MemoryError)) or (  # Ctrl-C, out of memory: not the file
            isinstance(exc, OSError) and (exc.errno is not None or type(exc) is not OSError)
        ):
            raise
        why = " ".join(str(exc).split())[:300]
        raise SourceError(
            f"Dataset {dataset!r}: {_shown_file(path)} is not readable parquet ({why}); "
            "the refresh stops and publishes nothing: fix or remove the file upstream."
        ) from None


def _checked(metadata: Any) -> Any:
    """`metadata` (a pyarrow FileMetaData) when its row counts are ones to read: each row group at
    most MAX_ROW_GROUP_ROWS, and their sum the file's count (`spans` numbers rows by the file's
    count and `rows_at` by the row groups': a footer where they differ would pick the wrong rows).
    Else pyarrow's own kind of refusal, so `_damaged` reports it as a damaged file."""
    import pyarrow as pa

    counts = [metadata.row_group(group).num_rows for group in range(metadata.num_row_groups)]
    for group, rows in enumerate(counts):
        if not 0 <= rows <= MAX_ROW_GROUP_ROWS:
            raise pa.ArrowInvalid(
                f"its footer claims {rows:,} rows in row group {group}, more than the "
                f"{MAX_ROW_GROUP_ROWS:,} hubpress reads at once"
            )
    if sum(counts) != metadata.num_rows:
        raise pa.ArrowInvalid(
            f"its footer claims {metadata.num_rows:,} rows but its row groups hold {sum(counts):,}"
        )
    return metadata


@dataclass(frozen=True)
class ParquetStream:
    """The rows of `files` in order; `select_columns` narrows what is read (like datasets')."""

    files: tuple[str, ...]  # hf:// paths pinned to a commit sha, or local paths
    features: Any  # datasets.Features of the files (from the first file's schema)
    endpoint: str | None = None
    token: str | bool | None = None
    columns: tuple[str, ...] | None = None
    dataset: str = ""  # the upstream's name, for an error about one of its files
    _fs: Any = field(default=None, compare=False, repr=False)

    @property
    def column_names(self) -> list[str]:
        return list(self.columns) if self.columns is not None else list(self.features)

    def select_columns(self, columns: list[str]) -> ParquetStream:
        missing = [c for c in columns if c not in self.features]
        if missing:
            raise ValueError(f"Columns {missing} are not in the dataset (it has {list(self.features)})")
        return replace(self, columns=tuple(columns))

    def _open(self, path: str):
        if not path.startswith("hf://"):
            return open(path, "rb")
        fs = self._fs
        if fs is None:
            from huggingface_hub import HfFileSystem

            fs = HfFileSystem(endpoint=self.endpoint, token=self.token)
            object.__setattr__(self, "_fs", fs)
        return fs.open(path, "rb")

    def _row_groups(self) -> Iterator[tuple[str, Any, int, int]]:
        """(file, open ParquetFile, row group number, index of its first row over all files), in
        order."""
        import pyarrow.parquet as pq

        offset = 0
        for path in self.files:
            with self._open(path) as handle, _damaged(self.dataset, path):
                parquet = pq.ParquetFile(handle, pre_buffer=False)
                _checked(parquet.metadata)
                for group in range(parquet.metadata.num_row_groups):
                    yield path, parquet, group, offset
                    offset += parquet.metadata.row_group(group).num_rows

    def spans(self) -> list[tuple[str, int, int]]:
        """(file, index of its first row over all files, its row count), from the footers."""
        import pyarrow.parquet as pq

        spans, offset = [], 0
        for path in self.files:
            with self._open(path) as handle, _damaged(self.dataset, path):
                rows = _checked(pq.ParquetFile(handle).metadata).num_rows
            spans.append((path, offset, rows))
            offset += rows
        return spans

    def __iter__(self) -> Iterator[dict[str, Any]]:
        columns = list(self.columns) if self.columns is not None else None
        for path, parquet, group, _ in self._row_groups():
            # use_threads=False: the threaded reader reads further row groups ahead, unbounded.
            with _damaged(self.dataset, path):
                batches = parquet.iter_batches(
                    batch_size=BATCH_ROWS, row_groups=[group], columns=columns, use_threads=False
                )
            while True:
                with _damaged(self.dataset, path):
                    batch = next(batches, None)
                if batch is None:
                    break
                yield from batch.to_pylist()

    def rows_at(self, indices: list[int]) -> Iterator[tuple[int, dict[str, Any]]]:
        """(index, row) for the given ascending row indices (over all files, in order). A row group
        holding none of them is not read; one that does is read once, and only those rows are
        turned into Python values."""
        columns = list(self.columns) if self.columns is not None else None
        wanted = iter(indices)
        next_index = next(wanted, None)
        for path, parquet, group, offset in self._row_groups():
            if next_index is None:
                return
            end = offset + parquet.metadata.row_group(group).num_rows
            local = []
            while next_index is not None and next_index < end:
                local.append(next_index - offset)
                next_index = next(wanted, None)
            if local:
                with _damaged(self.dataset, path):
                    table = parquet.read_row_group(group, columns=columns, use_threads=False)
                for position, row in zip(local, table.take(local).to_pylist(), strict=True):
                    yield offset + position, row

    @classmethod
    def open(
        cls, files: list[str], endpoint: str | None = None, token: str | bool | None = None, dataset: str = ""
    ) -> ParquetStream:
        """A stream over `files`, its features read from the first file's footer (the Hugging Face
        features metadata when the file carries it, else derived from the Arrow schema)."""
        import pyarrow.parquet as pq
        from datasets import Features

        stream = cls(tuple(files), features=None, endpoint=endpoint, token=token, dataset=dataset)
        if not files:
            return replace(stream, features=Features({}))
        with stream._open(files[0]) as handle, _damaged(dataset, files[0]):
            schema = pq.ParquetFile(handle).schema_arrow
        return replace(stream, features=Features.from_arrow_schema(schema), _fs=stream._fs)


def download_files(
    files: list[str],
    token: str | bool | None,
    cache_dir: str | None = None,
    endpoint: str | None = None,
    listing: Mapping[str, ListedUpstreamFile] | None = None,
) -> list[str]:
    """Local copies of hf:// files (huggingface_hub's cache: the revision in each path is a commit
    sha), each the file the upstream lists, by `listing` (its files' facts at that commit) or, for
    a file it does not name, by asking the Hub. A copy already cached is held to the listing
    before it is used: one that is not the listed file (written by another tool, or before these
    checks) is removed and downloaded again."""
    from huggingface_hub import HfFileSystem, hf_hub_download, try_to_load_from_cache

    from hubpress.targets.listed_bytes import cached_not_as_listed, not_as_listed, remove_from_cache
    from hubpress.targets.listed_sizes import listed_size

    fs = HfFileSystem(endpoint=endpoint, token=token)
    local = []
    for path in files:
        resolved = fs.resolve_path(path)
        where = dict(repo_type=resolved.repo_type, revision=resolved.revision, cache_dir=cache_dir)
        listed = (listing or {}).get(resolved.path_in_repo)
        if listed is None:
            info = fs.info(path)
            lfs = info.get("lfs") or {}
            listed = ListedUpstreamFile(int(info["size"]), lfs.get("sha256"), info.get("blob_id"))
        named = f"Dataset {resolved.repo_id!r}: {resolved.path_in_repo}"
        cached = try_to_load_from_cache(resolved.repo_id, resolved.path_in_repo, **where)
        if isinstance(cached, str):
            problem = cached_not_as_listed(cached, listed.size, listed.sha256, listed.git_oid)
            if problem is None:
                local.append(cached)
                continue
            log.warning(
                "%s: the cached copy is not the listed file (%s); it is downloaded again.", named, problem
            )
            remove_from_cache(cached)
        # Held to the size the upstream lists (a body without end must not fill the disk), and
        # then to its sha256: what the cache keeps is the file listed, or nothing.
        with listed_size(listed.size, f"{resolved.path_in_repo} of dataset {resolved.repo_id!r}"):
            got = hf_hub_download(
                resolved.repo_id, resolved.path_in_repo, token=token, endpoint=endpoint, **where
            )
        if (problem := not_as_listed(got, listed.size, listed.sha256, listed.git_oid)) is not None:
            remove_from_cache(got)
            raise UpstreamFileNotAsListed(
                f"{named} was downloaded, but {problem}: it was "
                "removed from the cache and nothing was read from it. The upstream's Hub (or a proxy in "
                "between) answered with other bytes than it lists; run again, and check the endpoint if "
                "it repeats."
            )
        local.append(got)
    return local


def resolve_parquet_files(
    dataset_name: str,
    revision_sha: str,
    split: str,
    *,
    config_name: str | None = None,
    data_files: Any = None,
    token: str | bool | None = None,
) -> list[str] | None:
    """The parquet files `datasets` would stream for `split` at `revision_sha`, or None when the
    dataset is not a parquet dataset (then `datasets` streams it itself).

    Raises ValueError (from `datasets`) for a split the dataset does not have, and UnsafeNameError
    for a data file outside the dataset at `revision_sha` (hubpress.storage.names.repo_file_url)."""
    from datasets import load_dataset_builder

    kwargs: dict[str, Any] = {"revision": revision_sha, "token": token}
    if config_name is not None:
        kwargs["name"] = config_name
    if data_files is not None:
        kwargs["data_files"] = data_files
    builder = load_dataset_builder(dataset_name, **kwargs)
    files = builder.config.data_files
    for split_files in (files or {}).values():
        for file in split_files:
            # The card names the data files; any outside the dataset at this revision (another,
            # private repo read with this runner's token) is refused before anything is read.
            repo_file_url(str(file), "dataset", dataset_name, revision_sha, what="data file")
    if type(builder).__module__.rsplit(".", 1)[-1] != "parquet":
        return None
    if files is None or split not in files:
        available = sorted(files) if files else []
        raise ValueError(f"Unknown split {split!r}. Should be one of {available}.")
    return [str(f) for f in files[split]]
