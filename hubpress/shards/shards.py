"""`publish-dataset`'s shards: samples in the qflux editing schema, planned with the one
boundary rule (hubpress.shards.boundaries) and written with the one writer (hubpress.shards.parquet).

`plan_shards` decides (purely) which samples go in which shard and which row groups: samples are
ordered by id and cut where `cut_rows` says, keyed by id and sized by their files, so inserting or
removing samples changes only the shards they fall in (plus a neighbour when a size bound forces a
cut). Shard names carry a hash of the plan's content, so identical input gives identical names and
the names are known before anything is built (shards are built in parallel, anywhere).

`write_shard` streams one shard to disk, one row group of images at a time
(hubpress.shards.editing builds each row group's table from the source files), and `stage_shard`
builds one and seals it under its key in the shard store (what hubpress/tasks/build.py maps over the plans).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from operator import attrgetter
from pathlib import Path
from typing import Any

from hubpress._env import release_free_memory
from hubpress.errors import UndecodableAtBuild
from hubpress.shards import editing_format
from hubpress.shards.boundaries import ShardBounds, cut_counts
from hubpress.shards.editing import FORMAT_EXTENSIONS, editing_table, file_extension, image_file_name
from hubpress.shards.editing_format import EDITING_PARQUET
from hubpress.shards.keys import encode_row, format_json_string, json_string, shard_header
from hubpress.shards.parquet import BuiltShard, ShardWriter
from hubpress.shards.shard_store import SealedShard, ShardStore
from hubpress.shards.sizes import (
    DEFAULT_MAX_SHARD_SIZE,
    DEFAULT_ROW_GROUP_BYTES,
    DEFAULT_ROW_GROUP_ROWS,
    check_split_name,
)
from hubpress.shards.staging import Staging
from hubpress.sources.discovery import gc_paused
from hubpress.sources.models import FileRef, Sample, held_sha256_of
from hubpress.sources.reader import SourceReader
from hubpress.storage.scratch import scratch_dir

# Bump when the bytes a plan produces change (columns, writer options, boundaries): it is part of
# every name. 2: shards end where the boundary rule shared with refresh says (hubpress.shards.boundaries).
# 3: no min/max statistics for image bytes (hubpress.shards.parquet.writer_options).
# 4: image `path` fields keep the source file names, as qflux's upload does (editing.image_file_name),
#    and a boundary is measured from the previous candidate, not from the last cut (boundaries.py).
SHARD_FORMAT = 4

# Rough per-row overhead beyond image bytes and strings (offsets, validity, struct paths).
_ROW_OVERHEAD = 128


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """One shard to write: its samples (ordered by id), its row groups (consecutive counts of
    samples) and a hash of everything that shapes its bytes."""

    split: str
    samples: tuple[Sample, ...]
    estimated_size: int
    key: str  # sha256 hex of the plan's content; its first 16 characters name the file
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES
    row_groups: tuple[int, ...] = ()  # samples per row group (hubpress.shards.boundaries.cut_rows)
    folder: str = "data"  # where in the repo; a subfolder when data/ would be too full (in_folders)

    @property
    def name(self) -> str:
        return f"{self.split}-{self.key[:16]}.parquet"

    @property
    def path_in_repo(self) -> str:
        return f"{self.folder}/{self.name}"

    @property
    def num_rows(self) -> int:
        return len(self.samples)

    @property
    def source_bytes(self) -> int:
        """Source bytes a build of this shard reads: every image of its samples, once."""
        return sum(ref.size for sample in self.samples for ref in sample.images())

    def groups(self) -> list[tuple[Sample, ...]]:
        """The samples of each row group, in order, as plan_shards cut them."""
        if sum(self.row_groups) != self.num_rows:
            raise ValueError(f"Shard plan {self.name}: its row groups do not cover its samples.")
        groups, start = [], 0
        for count in self.row_groups:
            groups.append(self.samples[start : start + count])
            start += count
        return groups


def estimate_sample_size(sample: Sample) -> int:
    """Bytes a sample adds to a shard: images are stored as they are, so their file sizes dominate.
    The id's and prompt's UTF-8 lengths and the images' sizes, without a list of the images or an
    encoded copy of ASCII text (a million samples' plan asks once per sample; held equal to the
    plain sum by tests/shards/test_sample_sizes.py)."""
    sid, prompt = sample.id, sample.prompt or ""
    size = _ROW_OVERHEAD + (len(sid) if sid.isascii() else len(sid.encode()))
    size += len(prompt) if prompt.isascii() else len(prompt.encode())
    for ref in sample.controls:
        size += ref.size
    if sample.mask is not None:
        size += sample.mask.size
    if sample.target is not None:
        size += sample.target.size
    return size


def sample_key(sample: Sample) -> bytes:
    """What identifies a sample for the boundary rule: its id."""
    return sample.id.encode()


def _ref_fact(ref: FileRef, usual_stem: str) -> list[Any]:
    """What of an image shapes a shard's bytes: its content, format and size, and the name its
    `path` field holds (editing.image_file_name). The name is left out when it is the one the
    folder layout gives that place (`usual_stem` and the format's extension: `<id>.png`,
    `<id>_mask.png`), which the id and format already say: a renamed file (a.png -> a.PNG, or
    a.jpeg -> a.jpg) changes its shard's key, and the keys of shards named the usual way are those
    they were before names counted."""
    # The sha256 identifies content; without one (never validated) fall back to the listing facts.
    identity = ref.sha256 or f"{ref.uri}|{ref.size}|{ref.version}"
    relpath = ref.relpath
    fmt = ref.format or file_extension(relpath)
    usual = f"{usual_stem}.{FORMAT_EXTENSIONS.get(fmt.lower(), fmt)}"
    # A relpath whose last part is the usual name is given that name by image_file_name (its
    # extension is the format's own): asked first, as it is for nearly every file of a dataset,
    # it spares image_file_name's work, about 1.5 s of two million files' keys.
    if relpath.endswith(usual) and (len(relpath) == len(usual) or relpath[-len(usual) - 1] in "/\\"):
        return [identity, fmt, ref.size]
    name = image_file_name(ref)
    if name == usual:
        return [identity, fmt, ref.size]
    return [identity, fmt, ref.size, name]


def _plan_key(split: str, samples: Iterable[Sample], row_group_rows: int, row_group_bytes: int) -> str:
    """keys.shard_key of the plan's header and each sample's row ([id, prompt, controls, mask,
    target], each image as _ref_fact), each row's text made by _row_text and hashed a few
    thousand rows at a time, not one call and one update a row."""
    digest = hashlib.sha256(shard_header([SHARD_FORMAT, split, row_group_rows, row_group_bytes]))
    texts: list[str] = []
    for sample in samples:
        texts.append(_row_text(sample))
        if len(texts) == _ROWS_PER_UPDATE:
            digest.update(("\n" + "\n".join(texts)).encode())
            texts.clear()
    if texts:
        digest.update(("\n" + "\n".join(texts)).encode())
    return digest.hexdigest()


_ROWS_PER_UPDATE = 4096  # about 0.6 MB of text at a time
_quote = json_string


@lru_cache(maxsize=256)  # formats are a handful a dataset, but any string may be given
def _format(fmt: str) -> tuple[str, str]:
    """An image format's usual extension and its JSON text."""
    return FORMAT_EXTENSIONS.get(fmt.lower(), fmt), format_json_string(fmt)


def _row_text(s: Sample) -> str:
    """The JSON text (keys.encode_row) of a sample's row in its shard's key: [id, prompt, [each
    control's _ref_fact], the mask's, the target's]. Written directly for strings, and for the
    images of _ref_text's plain case; held to encode_row of the row by tests/shards/test_shard_keys.py."""
    sid, prompt, controls, mask, target = s.id, s.prompt, s.controls, s.mask, s.target
    if len(controls) == 1 and mask is None and target is not None:
        # Most samples: one control and a target of one format, validated, named <id>.<ext>.
        control = controls[0]
        held, target_held, fmt = held_sha256_of(control), held_sha256_of(target), target.format
        size, target_size = control.size, target.size
        if (
            held.__class__ is bytes
            and target_held.__class__ is bytes
            and fmt.__class__ is str
            and fmt
            and control.format == fmt
            and size.__class__ is int
            and target_size.__class__ is int
            and sid.__class__ is str
            and prompt.__class__ is str
        ):
            known = _format(fmt)
            usual = f"{sid}.{known[0]}"
            cut = -len(usual) - 1
            relpath, target_relpath = control.relpath, target.relpath
            if (
                relpath.endswith(usual)
                and target_relpath.endswith(usual)
                and (cut == -len(relpath) - 1 or relpath[cut] in "/\\")
                and (cut == -len(target_relpath) - 1 or target_relpath[cut] in "/\\")
            ):
                return (
                    f'[{_quote(sid)}, {_quote(prompt)}, [["{held.hex()}", {known[1]}, {size}]], null, '
                    f'["{target_held.hex()}", {known[1]}, {target_size}]]'
                )
    if len(controls) == 1:
        control_text = f"[{_ref_text(controls[0], sid)}]"
    else:
        parts = [_ref_text(r, sid if i == 0 else f"{sid}_control_{i}") for i, r in enumerate(controls)]
        control_text = f"[{', '.join(parts)}]"
    return (
        f"[{_quote(sid) if sid.__class__ is str else encode_row(sid)}, "
        f"{_quote(prompt) if prompt.__class__ is str else encode_row(prompt)}, {control_text}, "
        f"{_ref_text(mask, f'{sid}_mask') if mask else 'null'}, {_ref_text(target, sid) if target else 'null'}]"
    )


def _ref_text(ref: FileRef, usual_stem: str) -> str:
    """encode_row(_ref_fact(ref, usual_stem)), written directly for a file validated (its sha256
    held as its digest), with a format and named the usual way: nearly every image of a dataset."""
    held, fmt, size = held_sha256_of(ref), ref.format, ref.size
    if held.__class__ is bytes and fmt and fmt.__class__ is str and size.__class__ is int:
        known = _format(fmt)
        usual = f"{usual_stem}.{known[0]}"
        relpath = ref.relpath
        if relpath.endswith(usual) and (len(relpath) == len(usual) or relpath[-len(usual) - 1] in "/\\"):
            return f'["{held.hex()}", {known[1]}, {size}]'
    return encode_row(_ref_fact(ref, usual_stem))


# A plan per shard and a tuple per sample, all kept: the cyclic GC would only rescan the intake's
# millions of objects (about half of planning's time at 100,000 samples).
@gc_paused()
def plan_shards(
    split: str,
    samples: list[Sample],
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    *,
    min_shard_size: int | str | None = None,
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    row_group_bytes: int | str = DEFAULT_ROW_GROUP_BYTES,
) -> list[ShardPlan]:
    """Group a split's samples into shards and row groups with `cut_rows`. Pure.

    A shard ends at a content-defined boundary once it holds at least `min_shard_size` (default
    max/8) bytes, and is cut early when the next sample would take it past `max_shard_size` (a
    single larger sample gets a shard of its own).
    """
    check_split_name(split)
    bounds = ShardBounds.of(max_shard_size, min_shard_size, row_group_rows, row_group_bytes)
    ordered = sorted(samples, key=_ID)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.id == after.id:
            raise ValueError(
                f"Sample id {before.id!r} appears twice in split {split!r}; intake should have refused it."
            )
    plans: list[ShardPlan] = []
    # Each row's key (sample_key) and size, made as the cut reads them: no list of either.
    keys = (s.id.encode() for s in ordered)
    sizes = (estimate_sample_size(s) for s in ordered)
    start = 0
    for groups, shard_size in cut_counts(keys, sizes, bounds):
        stop = start + sum(groups)
        shard = ordered[start:stop]
        plans.append(
            ShardPlan(
                split=split,
                samples=tuple(shard),
                estimated_size=shard_size,
                key=_plan_key(split, shard, bounds.row_group_rows, bounds.row_group_bytes),
                row_group_rows=bounds.row_group_rows,
                row_group_bytes=bounds.row_group_bytes,
                row_groups=groups,
            )
        )
        start = stop
    return plans


_ID = attrgetter("id")


def write_shard(
    plan: ShardPlan,
    out: str | os.PathLike[str],
    read_bytes: Callable[[FileRef], bytes] | None = None,
) -> BuiltShard:
    """Write one shard. `out` is a directory (the file goes to `<out>/<plan.path_in_repo>`) or a
    `.parquet` path. Only one row group of image bytes is held in memory at a time. The file
    appears complete or not at all (hubpress.shards.parquet.ShardWriter)."""
    read = read_bytes or SourceReader()
    out = Path(out)
    target = out if out.suffix == ".parquet" else out / plan.path_in_repo
    with ShardWriter(target.parent, EDITING_PARQUET, editing_format.writer_options()) as writer:
        for group in plan.groups():
            writer.write_row_group(editing_table(group, read))
        return writer.finish(plan.path_in_repo, plan.split, local_path=target)


def in_folders(plans: list[ShardPlan], files_per_folder: int) -> list[ShardPlan]:
    """The plans, placed so that no folder holds more than `files_per_folder` entries (the Hub
    refuses a commit that would put more than 10,000 in one folder). Shards stay in `data/` while
    they fit; otherwise the largest splits move, one at a time, into `data/<split>/<b>/`, `<b>` a
    bucket (in hex) of the shard's content key: 16 buckets, 256 for a split of more than 8 folders'
    worth, never more than a folder takes. A shard's folder, like its name, depends only on its
    content (and the limit). Pure."""
    counts: dict[str, int] = {}
    for plan in plans:
        counts[plan.split] = counts.get(plan.split, 0) + 1
    in_data = len(plans)
    buckets: dict[str, int] = {}
    for split, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if in_data <= files_per_folder:
            break
        buckets[split] = min(16 if count <= 8 * files_per_folder else 256, files_per_folder)
        in_data -= count - 1  # the split's shards leave; its folder is one entry of data/

    def folder(plan: ShardPlan) -> str:
        bucket = int(plan.key[:8], 16) % buckets[plan.split]
        return f"data/{plan.split}/{bucket:x}"

    return [replace(plan, folder=folder(plan)) if plan.split in buckets else plan for plan in plans]


# --- building into the shard store (the plain functions behind hubpress/tasks/build.py) ---------------------


_build_slots_lock = threading.Lock()


_build_slots: dict[int, threading.BoundedSemaphore] = {}


def _slots(count: int) -> threading.BoundedSemaphore:
    with _build_slots_lock:
        if count not in _build_slots:
            _build_slots[count] = threading.BoundedSemaphore(count)
        return _build_slots[count]


def stage_shard(
    staging: Staging,
    plan: ShardPlan,
    read_bytes: Callable[[FileRef], bytes] | None = None,
    decode_in_process: bool = False,
) -> SealedShard:
    """Build one shard and seal it in the shard store under its key (hubpress.shards.shard_store):
    in place for local staging, via a temporary file for S3.

    At most `Settings.build_concurrency` shards are built at once in one process, whatever the
    task runner's thread count: each build holds one row group of image bytes, so this is what
    keeps peak memory bounded (threads beyond it still overlap uploads and S3 reads).
    `decode_in_process`: the build has only a few images to decode (SourceReader)."""
    with _slots(max(1, staging.settings.build_concurrency)):
        try:
            return _stage_shard(ShardStore(staging), plan, read_bytes, decode_in_process)
        finally:
            release_free_memory()


def _stage_shard(
    store: ShardStore,
    plan: ShardPlan,
    read_bytes: Callable[[FileRef], bytes] | None,
    decode_in_process: bool = False,
) -> SealedShard:
    read = read_bytes or SourceReader(store.staging.settings, decode_in_process)

    def write(out: Path) -> BuiltShard:
        built = write_shard(plan, out, read)
        _refuse_undecodable(read, built)
        return built

    return seal_written(store, plan.key, write)


def seal_written(store: ShardStore, key: str, write: Callable[[Path], BuiltShard]) -> SealedShard:
    """Seal the shard `write(path)` writes at `path` under `key`: written in place in local
    staging (write_shard hashed its bytes before renaming them into the store: no second read),
    or in a temporary file that is then put on S3."""
    in_place = store.build_path(key)
    if in_place is not None:
        return store.seal(key, write(in_place))
    with scratch_dir("shard") as tmp:
        return store.seal(key, write(Path(tmp) / "shard.parquet"))


def _refuse_undecodable(read: Callable[[FileRef], bytes], built: BuiltShard) -> None:
    """A shard holding an image that did not decode is not staged: every image of the shard was
    read (so one pass finds them all), and the caller takes the intake again without them."""
    problems = getattr(read, "undecodable", None)
    if problems:
        Path(built.local_path).unlink(missing_ok=True)
        raise UndecodableAtBuild(tuple(problems))


__all__ = [
    "SHARD_FORMAT",
    "BuiltShard",
    "ShardPlan",
    "estimate_sample_size",
    "plan_shards",
    "sample_key",
    "seal_written",
    "stage_shard",
    "write_shard",
]
