"""What the last publish of a source to a target saw, so an unchanged night costs one listing of
the source and one round trip to the target.

A scheduled publish mostly finds nothing new. The listing of the source (relpath, size and
version of every file: mtime_ns and inode locally, the ETag on S3) plus the options that shape
the published bytes decide that without reading a file: `listing_digest`. After each publish the
digest, the target's head and a digest per sample are recorded locally (`PublishedRecords`, under
Settings.cache_dir). The next run compares its own listing digest with the record, and asks the
target for its head: both equal means "unchanged", and the run ends there, with no intake, no
build and no commit. Anything else (a new file, another machine without the record, someone
else's commit) takes the full path, which is itself cheap for unchanged data (the validation
cache, stage reuse and the plan).

The per-sample digests let a run that did publish say what changed: `sample_changes`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from operator import attrgetter, le
from pathlib import Path
from typing import Any

import hubpress
from hubpress.sources.models import IntakeReport
from hubpress.storage.files import ListedFile
from hubpress.storage.hashcache import stat_version
from hubpress.storage.listing import ODD, Listing

log = logging.getLogger("hubpress.published")

RECORD_FORMAT = 1


# --- pure ---------------------------------------------------------------------------------------


def listing_digest(listing: Iterable[ListedFile], options: Mapping[str, Any]) -> str:
    """A digest of a source listing and the options of a publish: equal digests mean the same
    files (by path, size and version) published the same way. Order of the listing does not matter."""
    digest = hashlib.sha256()
    head = ["hubpress-listing", RECORD_FORMAT, hubpress.__version__, dict(options)]
    digest.update(json.dumps(head, sort_keys=True, default=str).encode() + b"\n")
    if isinstance(listing, Listing) and _in_relpath_order(listing.relpaths):
        # A local listing is made in relpath order: its batches are slices of its columns, read
        # by `zip` (five indexings per file were a third of a million samples' digest)
        lines = (
            _sliced_lines(listing, start, start + LINES_PER_UPDATE)
            for start in range(0, len(listing), LINES_PER_UPDATE)
        )
    elif isinstance(listing, Listing):  # its entries in relpath order, read from its columns
        relpaths, sizes, mtimes, ctimes, inodes = listing.columns()
        order = sorted(range(len(relpaths)), key=relpaths.__getitem__)
        # _line of each entry; the version is stamp_version(mtime, ctime), written out here: a
        # call per file is a tenth of the digest (tests/storage/test_listing_columns.py)
        lines = (
            "".join(
                [
                    f"{relpaths[n]}\0{sizes[n]}\0{mtimes[n]}+{ctimes[n]}\0{inodes[n]}\n"
                    if inodes[n] != ODD
                    else _line(listing[n])
                    for n in order[start : start + LINES_PER_UPDATE]
                ]
            )
            for start in range(0, len(order), LINES_PER_UPDATE)
        )
    else:
        ordered = sorted(listing, key=_RELPATH)
        lines = (
            "".join(
                [
                    f"{lf.relpath}\0{lf.size}\0{lf.version}\0{lf.inode}\n"
                    for lf in ordered[start : start + LINES_PER_UPDATE]
                ]
            )
            for start in range(0, len(ordered), LINES_PER_UPDATE)
        )
    # One line per file, hashed LINES_PER_UPDATE lines at a time: the same bytes in the same order
    # as one update per line (a hash of a stream does not see how it was cut), without a call and
    # an encode per file (2,000,000 of each at a million samples), nor one text of them all.
    for text in lines:
        # surrogateescape: a name that is not UTF-8 (reported by intake as name_not_utf8) still
        # has bytes, and those bytes decide the digest
        digest.update(text.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


LINES_PER_UPDATE = 10_000
_RELPATH = attrgetter("relpath")


def _line(lf: ListedFile) -> str:
    return f"{lf.relpath}\0{lf.size}\0{lf.version}\0{lf.inode}\n"


def _in_relpath_order(relpaths: list[str]) -> bool:
    """Whether sorting by relpath leaves the entries where they are (sorted is stable)."""
    return all(map(le, relpaths, islice(relpaths, 1, None)))


def _sliced_lines(listing: Listing, start: int, stop: int) -> str:
    """_line of the entries start:stop of a listing in relpath order, the version written out
    as stamp_version(mtime, ctime) does; an entry held whole (its inode ODD) by _line."""
    relpaths, sizes, mtimes, ctimes, inodes = listing.columns()
    texts = [
        f"{relpath}\0{size}\0{mtime}+{ctime}\0{inode}\n"
        for relpath, size, mtime, ctime, inode in zip(
            relpaths[start:stop],
            sizes[start:stop],
            mtimes[start:stop],
            ctimes[start:stop],
            inodes[start:stop],
            strict=True,
        )
    ]
    if ODD in inodes[start:stop]:
        for at, n in enumerate(range(start, start + len(texts))):
            if inodes[n] == ODD:
                texts[at] = _line(listing[n])
    return "".join(texts)


def local_listing(paths: Iterable[str | os.PathLike[str]]) -> list[ListedFile]:
    """Listing entries for local files named one by one (LoRA weights and extra files): what a
    directory listing would say about them, from one stat each."""
    listed = []
    for path in paths:
        real = os.path.realpath(path)
        st = os.stat(real)
        listed.append(ListedFile(real, st.st_size, stat_version(st), st.st_ino))
    return listed


def sample_digests(report: IntakeReport) -> dict[str, str]:
    """`split/id` -> a short digest of what the sample publishes (ids, prompt, file sha256s), the
    same facts the stage's fingerprint is made of (hubpress.shards.fingerprint, which makes both
    in one pass: fingerprint_and_digests)."""
    from hubpress.shards.fingerprint import fingerprint_and_digests

    return dict(fingerprint_and_digests(report, {})[1].items())  # a dict, for json and the like


@dataclass(frozen=True, slots=True)
class SampleChanges:
    added: int
    changed: int
    removed: int

    def line(self, bytes_sent: int) -> str:
        return (
            f"{self.added} samples added, {self.changed} changed, {self.removed} removed: "
            f"{bytes_sent:,} bytes sent"
        )


_ABSENT = object()


def sample_changes(before: Mapping[str, str] | None, after: Mapping[str, str]) -> SampleChanges:
    """How the samples moved between two publishes (no earlier record: every sample is new)."""
    before = before or {}
    added = changed = 0
    for key, value in after.items():
        was = before.get(key, _ABSENT)
        if was is _ABSENT:
            added += 1
        elif was != value:
            changed += 1
    # Keys are unique on both sides: those of `before` not in `after` are those `after` did not
    # find there (no lookup in `after`, which SampleDigests would index for it).
    removed = len(before) - (len(after) - added)
    return SampleChanges(added, changed, removed)


def reported_changes(
    record: PublishedRecord | None, after: Mapping[str, str], plan: Mapping[str, list[str]], head: str | None
) -> SampleChanges | None:
    """The sample changes a publish reports, against what the target holds at `head` (the head the
    plan was made against): the record of the last publish when it is of that head; else nothing
    when no data file changes; else every sample new when the target held nothing. Otherwise the
    target was last written from another machine or cache, and the counts are unknown (None), never
    "every sample added" for a repo that already holds them."""
    if record is not None and (head is None or record.head == head):
        return sample_changes(record.samples, after)
    data_moved = any(
        path.endswith(".parquet") for kind in ("added", "changed", "deleted") for path in plan.get(kind) or []
    )
    if not data_moved:
        return SampleChanges(0, 0, 0)
    target_was_empty = not any(plan.get(kind) for kind in ("changed", "unchanged", "deleted"))
    return sample_changes(None, after) if target_was_empty else None


@dataclass(slots=True)
class PublishedRecord:
    listing: str  # listing_digest of the source as published
    head: str  # the target's head after that publish
    samples: Mapping[str, str] = field(default_factory=dict)  # sample_digests of what was published
    # samples left out per split at that publish: an unchanged re-run reports them too, not {}
    skipped: dict[str, int] = field(default_factory=dict)
    # card_shape of the card `datasets` last opened at or before `head`, along a chain of this
    # machine's verified publishes (hubpress.shards.verify): a night whose parent is `head` may
    # verify by footers and card alone. None: the next changed night opens with datasets.
    opened_shape: str | None = None


def opened_before(record: PublishedRecord | None, parent_commit: str | None) -> str | None:
    """The card shape datasets opened at `parent_commit` or before it, if this machine's last
    publish recorded one for exactly that commit; else None (open with datasets again)."""
    if record is None or parent_commit is None or record.head != parent_commit:
        return None
    return record.opened_shape


def head_can_decide(record: PublishedRecord | None, listing: str | None, asks_more: bool) -> bool:
    """Whether the target's head (one round trip) can make this publish a no-op: the same listing
    as the last publish recorded, and options that ask only "is there anything new" (a dry run, a
    pull request or a tag asks for more). The flows and the check before a flow run
    (hubpress.shards.unchanged) both ask this first, then `is_unchanged`."""
    return not asks_more and record is not None and listing is not None and record.listing == listing


def is_unchanged(record: PublishedRecord | None, listing: str | None, head: str | None) -> bool:
    """The whole "nothing to do" decision: same listing, and nobody committed since."""
    return record is not None and head is not None and record.listing == listing and record.head == head


# --- edge: the records on disk ------------------------------------------------------------------


class PublishedRecords:
    """One small JSON file per (kind of repo, target, revision) under `<cache_dir>/published/`."""

    def __init__(self, cache_dir: str | os.PathLike[str], kind: str = "dataset"):
        self.root = Path(cache_dir).expanduser() / "published"
        self.kind = kind

    def _path(self, target: str, revision: str) -> Path:
        name = hashlib.sha256(f"{self.kind}\0{target}\0{revision}".encode()).hexdigest()[:32]
        return self.root / f"{name}.json"

    def get(self, target: str, revision: str) -> PublishedRecord | None:
        try:
            data = json.loads(self._path(target, revision).read_text(encoding="utf-8"))
            if data.get("format") != RECORD_FORMAT:
                return None
            skipped = {str(split): int(count) for split, count in (data.get("skipped") or {}).items()}
            shape = data.get("opened_shape")
            return PublishedRecord(
                str(data["listing"]),
                str(data["head"]),
                dict(data.get("samples") or {}),
                skipped,
                shape if isinstance(shape, str) else None,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # absent or unreadable: the full path decides, and writes a new one

    def put(self, target: str, revision: str, record: PublishedRecord) -> None:
        """Write atomically (a temporary file renamed over the old one); a failure only costs the
        next run its shortcut, so it is logged, not raised."""
        path = self._path(target, revision)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".record-", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                # The digests as a dict (a SampleDigests is no JSON object), copied once: asdict
                # would copy them first.
                fields = asdict(replace(record, samples={}))
                json.dump(
                    {"format": RECORD_FORMAT, **fields, "samples": dict(record.samples)}, fh, sort_keys=True
                )
            os.replace(tmp, path)
        except OSError as exc:
            log.warning(
                "could not record the publish of %s (%s): the next run takes the full path", target, exc
            )
