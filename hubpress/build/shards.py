"""Parquet shards in the qflux editing schema, cut at content-defined boundaries.

`plan_shards` decides (purely) which samples go in which shard: samples are ordered by id and a
shard ends after a sample whose id hash is 0 modulo M, so the boundaries depend on the ids near
them and not on positions. Inserting or removing samples changes only the shards they fall in
(plus a neighbour when a size bound forces a cut), so a re-publish uploads a few shards instead of
every shard after the first change. Shard names carry a hash of the plan's content, so identical
input gives identical names.

`write_shard` streams one shard to disk with pyarrow, one row group at a time, with the options
`datasets` itself uses for image columns (no compression, PLAIN encoding, content-defined pages),
and the Hugging Face features metadata, so `datasets.load_dataset` decodes the images unchanged.
Image bytes are stored as they are: never decoded, never re-encoded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from hubpress.errors import ConfigError, SourceError
from hubpress.settings import Settings
from hubpress.sources.models import FileRef, Sample
from hubpress.storage.files import Storage, is_s3, open_storage
from hubpress.storage.hashcache import sha256_file

# Bump when the bytes a plan produces change (columns, writer options): it is part of every name.
SHARD_FORMAT = 1

DEFAULT_MAX_SHARD_SIZE = 500 * 1000**2  # datasets' own default, "500MB"
DEFAULT_ROW_GROUP_ROWS = 100
# A row group of large images is also cut by bytes, so memory stays bounded whatever the images.
DEFAULT_ROW_GROUP_BYTES = 32 * 1024**2
# Rough per-row overhead beyond image bytes and strings (offsets, validity, struct paths).
_ROW_OVERHEAD = 128

COLUMNS = ("id", "control_images", "control_mask", "target_image", "prompt")

# The file extension an image gets inside the shard, from its true format.
FORMAT_EXTENSIONS = {
    "png": "png",
    "jpeg": "jpg",
    "jpg": "jpg",
    "webp": "webp",
    "bmp": "bmp",
    "tiff": "tiff",
    "gif": "gif",
    "mpo": "jpg",
}

# datasets' split-name rule; it also keeps names safe in paths and in the `data/<split>-*` globs.
_SPLIT_NAME = re.compile(r"^\w+(\.\w+)*$")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_size(value: int | str) -> int:
    """Bytes from an int or a human size: "500MB" (decimal, as datasets reads it), "1GiB", "2 gb"."""
    if isinstance(value, bool):
        raise ConfigError(f"{value!r} is not a size: use bytes or a size such as '500MB' or '1GB'.")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        unit = (match.group(2) or "").lower() if match else None
        if match is None or unit not in _UNITS:
            raise ConfigError(f"{value!r} is not a size: use bytes or a size such as '500MB' or '1GB'.")
        size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise ConfigError(f"{value!r} is not a usable size: it must be more than 0 bytes.")
    return size


def check_split_name(split: str) -> str:
    if not _SPLIT_NAME.match(split):
        raise ConfigError(
            f"Split name {split!r} cannot be published: use letters, digits and underscores "
            "(dots between words are allowed), e.g. 'train' or 'test'."
        )
    return split


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """One shard to write: its samples (ordered by id) and a hash of everything that shapes its bytes."""

    split: str
    samples: tuple[Sample, ...]
    estimated_size: int
    key: str  # sha256 hex of the plan's content; its first 16 characters name the file
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES

    @property
    def name(self) -> str:
        return f"{self.split}-{self.key[:16]}.parquet"

    @property
    def path_in_repo(self) -> str:
        return f"data/{self.name}"

    @property
    def num_rows(self) -> int:
        return len(self.samples)


@dataclass(frozen=True, slots=True)
class BuiltShard:
    path_in_repo: str
    local_path: str
    sha256: str  # of the file's bytes
    size: int  # of the file
    num_rows: int
    split: str
    num_bytes: int  # uncompressed Arrow bytes of the rows, what dataset cards call num_bytes


def estimate_sample_size(sample: Sample) -> int:
    """Bytes a sample adds to a shard: images are stored as they are, so their file sizes dominate."""
    text = len(sample.id.encode()) + len((sample.prompt or "").encode())
    return sum(ref.size for ref in sample.images()) + text + _ROW_OVERHEAD


def _id_hash(sample_id: str) -> int:
    return int.from_bytes(hashlib.sha256(sample_id.encode()).digest()[:8], "big")


def _boundary_modulus(samples: list[Sample], max_shard_size: int, min_shard_size: int) -> int:
    """M for `hash(id) % M == 0`: natural boundaries every (max/2 - min) bytes on average, so with
    the minimum a shard averages about half the maximum. M is a power of two so that a small change
    in the average sample size rarely changes it, and when it does the old boundaries are kept."""
    if not samples:
        return 1
    average = sum(estimate_sample_size(s) for s in samples) / len(samples)
    spacing = max(max_shard_size / 2 - min_shard_size, 1)
    ratio = spacing / average
    return 1 if ratio <= 1 else 2 ** round(math.log2(ratio))


def _ref_fact(ref: FileRef) -> list[Any]:
    # The sha256 identifies content; without one (never validated) fall back to the listing facts.
    identity = ref.sha256 or f"{ref.uri}|{ref.size}|{ref.version}"
    return [identity, ref.format or _extension(ref.relpath), ref.size]


def _plan_key(split: str, samples: Iterable[Sample], row_group_rows: int, row_group_bytes: int) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([SHARD_FORMAT, split, row_group_rows, row_group_bytes]).encode())
    for s in samples:
        row = [
            s.id,
            s.prompt,
            [_ref_fact(r) for r in s.controls],
            _ref_fact(s.mask) if s.mask else None,
            _ref_fact(s.target) if s.target else None,
        ]
        digest.update(b"\n" + json.dumps(row, ensure_ascii=False).encode())
    return digest.hexdigest()


def plan_shards(
    split: str,
    samples: list[Sample],
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    *,
    min_shard_size: int | str | None = None,
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    row_group_bytes: int | str = DEFAULT_ROW_GROUP_BYTES,
) -> list[ShardPlan]:
    """Group a split's samples into shards at content-defined boundaries. Pure.

    A shard ends after a sample whose id hash is 0 modulo M once it holds at least
    `min_shard_size` (default max/8) bytes, and is cut early when the next sample would take it
    past `max_shard_size` (a single larger sample gets a shard of its own).
    """
    check_split_name(split)
    max_size = parse_size(max_shard_size)
    min_size = parse_size(min_shard_size) if min_shard_size is not None else max_size // 8
    rg_bytes = parse_size(row_group_bytes)
    if min_size > max_size:
        raise ConfigError(
            f"min_shard_size ({min_size} bytes) is larger than max_shard_size ({max_size} bytes)."
        )
    if row_group_rows < 1:
        raise ConfigError(f"row_group_rows must be at least 1, not {row_group_rows}.")
    ordered = sorted(samples, key=lambda s: s.id)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.id == after.id:
            raise ValueError(
                f"Sample id {before.id!r} appears twice in split {split!r}; intake should have refused it."
            )
    modulus = _boundary_modulus(ordered, max_size, min_size)

    groups: list[tuple[list[Sample], int]] = []
    current: list[Sample] = []
    current_size = 0
    for sample in ordered:
        size = estimate_sample_size(sample)
        if current and current_size + size > max_size:
            groups.append((current, current_size))
            current, current_size = [], 0
        current.append(sample)
        current_size += size
        if current_size >= min_size and _id_hash(sample.id) % modulus == 0:
            groups.append((current, current_size))
            current, current_size = [], 0
    if current:
        groups.append((current, current_size))

    return [
        ShardPlan(
            split=split,
            samples=tuple(group),
            estimated_size=size,
            key=_plan_key(split, group, row_group_rows, rg_bytes),
            row_group_rows=row_group_rows,
            row_group_bytes=rg_bytes,
        )
        for group, size in groups
    ]


# --- reading source bytes -------------------------------------------------------------------------


class SourceReader:
    """Reads a FileRef's bytes from a local path or S3 and checks that they are the bytes that
    validation saw: a file that changed since validation is an error, never different data.

    A local file that validation listed with its size and mtime is held to those, read from the
    open file before and after reading (the same identity the validation cache trusts), so its
    bytes are not hashed a second time; anything else is held to the sha256 validation recorded."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings
        self._buckets: dict[str, Storage] = {}

    def _raw(self, ref: FileRef) -> bytes:
        if is_s3(ref.uri):
            parsed = urlparse(ref.uri)
            storage = self._buckets.get(parsed.netloc)
            if storage is None:
                storage = self._buckets[parsed.netloc] = open_storage(f"s3://{parsed.netloc}", self.settings)
            from botocore.exceptions import ClientError

            try:
                return storage.read_bytes(parsed.path.lstrip("/"))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                    raise FileNotFoundError(ref.uri) from exc
                raise
        with open(ref.uri, "rb") as fh:
            return fh.read()

    def __call__(self, ref: FileRef) -> bytes:
        try:
            if ref.version is not None and ref.sha256 is not None and not is_s3(ref.uri):
                return self._local_unchanged(ref)
            data = self._raw(ref)
        except FileNotFoundError:
            raise SourceError(
                f"{ref.relpath}: the source file {ref.uri} disappeared after validation. "
                "Run the publish again so that intake lists the source afresh."
            ) from None
        if ref.sha256 is not None and hashlib.sha256(data).hexdigest() != ref.sha256:
            raise _changed(ref, "its sha256 no longer matches")
        return data

    @staticmethod
    def _local_unchanged(ref: FileRef) -> bytes:
        with open(ref.uri, "rb") as fh:
            before = os.fstat(fh.fileno())
            data = fh.read()
            after = os.fstat(fh.fileno())
        for st in (before, after):
            # The version is what the listing recorded: "mtime_ns:inode" (or mtime_ns alone).
            version = f"{st.st_mtime_ns}:{st.st_ino}" if ":" in ref.version else str(st.st_mtime_ns)
            if st.st_size != ref.size or version != ref.version or len(data) != ref.size:
                raise _changed(ref, "its size or modification time differs from what was validated")
        return data


def _changed(ref: FileRef, why: str) -> SourceError:
    return SourceError(
        f"{ref.relpath}: the source file {ref.uri} changed after validation ({why}). Run the publish "
        "again so that the new content is validated before it is published."
    )


# --- writing ---------------------------------------------------------------------------------------


@cache
def editing_features():
    """The qflux editing schema as datasets Features (imported lazily: datasets is a heavy import)."""
    from datasets import Features, Image, List, Value

    return Features(
        {
            "id": Value("string"),
            "control_images": List(Image()),
            "control_mask": Image(),
            "target_image": Image(),
            "prompt": Value("string"),
        }
    )


@cache
def editing_schema() -> pa.Schema:
    """Arrow schema with the `huggingface` metadata key exactly as datasets writes it."""
    return editing_features().arrow_schema


@cache
def _writer_options() -> dict[str, Any]:
    """The ParquetWriter options datasets 5 uses for these features (fixed, so output is reproducible)."""
    from datasets import config
    from datasets.arrow_writer import get_parquet_column_options

    return {
        "use_content_defined_chunking": dict(config.DEFAULT_CDC_OPTIONS),
        "write_page_index": True,
        **get_parquet_column_options(editing_features(), editing_schema()),
    }


def _extension(relpath: str) -> str:
    name = relpath.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else "bin"


def image_file_name(sample_id: str, role: str, ref: FileRef) -> str:
    """`<id>_control_0.png`, `<id>_mask.png`, `<id>_target.jpg`: extension from the true format."""
    ext = FORMAT_EXTENSIONS.get((ref.format or "").lower()) or _extension(ref.relpath)
    safe_id = sample_id.replace("/", "_").replace("\\", "_")
    return f"{safe_id}_{role}.{ext}"


class _ImageColumn:
    """One image column of a row group, built straight into one Arrow buffer.

    The buffer is sized up front from the FileRef sizes and comes from Arrow's memory pool, and
    each image's bytes are copied in as soon as they are read, so a row group costs its image
    bytes once. (Building from Python rows costs them about twice, and growing Python buffers
    fragments the C heap so that peak memory creeps up from one row group to the next.)"""

    def __init__(self, capacity: int) -> None:
        self._buffer = pa.allocate_buffer(max(capacity, 1))
        self._view = memoryview(self._buffer).cast("B")
        self._length = 0
        self.offsets = array("i", [0])  # binary (int32 offsets), as datasets' Image storage type
        self.paths: list[str | None] = []
        self.present: list[bool] = []

    def add(self, ref: FileRef | None, name: str | None, read_bytes: Callable[[FileRef], bytes]) -> None:
        if ref is not None:
            data = read_bytes(ref)
            end = self._length + len(data)
            if end > _INT32_MAX:
                raise ValueError("A row group's images exceed 2 GB; lower row_group_bytes.")
            if end > len(self._view):  # the file is larger than listed (no sha256 to hold it to)
                self._grow(end)
            self._view[self._length : end] = data
            self._length = end
        self.offsets.append(self._length)
        self.paths.append(name)
        self.present.append(ref is not None)

    def _grow(self, needed: int) -> None:
        bigger = pa.allocate_buffer(max(needed, 2 * len(self._view)))
        view = memoryview(bigger).cast("B")
        view[: self._length] = self._view[: self._length]
        self._view.release()
        self._buffer, self._view = bigger, view

    def to_arrow(self, image_type: pa.StructType) -> pa.StructArray:
        count = len(self.paths)
        data = self._buffer.slice(0, self._length)
        binary = pa.Array.from_buffers(pa.binary(), count, [None, pa.py_buffer(self.offsets), data])
        paths = pa.array(self.paths, pa.string())
        nulls = None if all(self.present) else pa.array([not p for p in self.present], pa.bool_())
        return pa.StructArray.from_arrays([binary, paths], fields=list(image_type), mask=nulls)


_INT32_MAX = 2**31 - 1


def _row_group_table(group: tuple[Sample, ...], read_bytes: Callable[[FileRef], bytes]) -> pa.Table:
    schema = editing_schema()
    controls = _ImageColumn(sum(r.size for s in group for r in s.controls))
    mask = _ImageColumn(sum(s.mask.size for s in group if s.mask is not None))
    target = _ImageColumn(sum(s.target.size for s in group if s.target is not None))
    control_offsets = array("i", [0])
    for sample in group:
        if not sample.controls:
            raise ValueError(f"Sample {sample.id!r} has no control image; intake should have skipped it.")
        for i, ref in enumerate(sample.controls):
            controls.add(ref, image_file_name(sample.id, f"control_{i}", ref), read_bytes)
        control_offsets.append(control_offsets[-1] + len(sample.controls))
        mask.add(sample.mask, sample.mask and image_file_name(sample.id, "mask", sample.mask), read_bytes)
        target.add(
            sample.target, sample.target and image_file_name(sample.id, "target", sample.target), read_bytes
        )
    list_type = schema.field("control_images").type
    image_type = schema.field("control_mask").type
    columns = [
        pa.array([s.id for s in group], pa.string()),
        pa.ListArray.from_arrays(
            pa.array(control_offsets, pa.int32()), controls.to_arrow(image_type), type=list_type
        ),
        mask.to_arrow(image_type),
        target.to_arrow(image_type),
        pa.array([s.prompt for s in group], pa.string()),
    ]
    table = pa.Table.from_arrays(columns, schema=schema)
    table.validate()
    return table


def _row_groups(plan: ShardPlan) -> Iterator[tuple[Sample, ...]]:
    """Consecutive runs of at most row_group_rows samples and (beyond one sample) row_group_bytes."""
    group: list[Sample] = []
    size = 0
    for sample in plan.samples:
        sample_size = estimate_sample_size(sample)
        if group and (len(group) >= plan.row_group_rows or size + sample_size > plan.row_group_bytes):
            yield tuple(group)
            group, size = [], 0
        group.append(sample)
        size += sample_size
    if group:
        yield tuple(group)


def write_shard(
    plan: ShardPlan,
    out: str | os.PathLike[str],
    read_bytes: Callable[[FileRef], bytes] | None = None,
) -> BuiltShard:
    """Write one shard. `out` is a directory (the file goes to `<out>/<plan.path_in_repo>`) or a
    `.parquet` path. Only one row group of image bytes is held in memory at a time. The file
    appears complete or not at all (temporary name, then rename)."""
    read = read_bytes or SourceReader()
    out = Path(out)
    target = out if out.suffix == ".parquet" else out / plan.path_in_repo
    target.parent.mkdir(parents=True, exist_ok=True)
    schema = editing_schema()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    num_bytes = 0
    try:
        options = _writer_options()
        with pq.ParquetWriter(tmp, schema, **options) as writer:
            # datasets records the chunking options in the footer; do the same so files match its own.
            writer.add_key_value_metadata(
                {"content_defined_chunking": json.dumps(options["use_content_defined_chunking"])}
            )
            for group in _row_groups(plan):
                table = _row_group_table(group, read)
                num_bytes += table.nbytes
                writer.write_table(table, row_group_size=len(group))
                del table
                # Hand the row group's memory back now, so the next one reuses it instead of adding to it.
                pa.default_memory_pool().release_unused()
        sha = sha256_file(tmp)
        size = tmp.stat().st_size
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BuiltShard(
        path_in_repo=plan.path_in_repo,
        local_path=str(target),
        sha256=sha,
        size=size,
        num_rows=plan.num_rows,
        split=plan.split,
        num_bytes=num_bytes,
    )
