"""Typed values that describe dataset intake and publishing.

Decisions are pure functions over these values; I/O happens at the edges (discovery reads a
listing, validation reads bytes, the hub module talks HTTP). Every value round-trips through
JSON with `to_json` / `from_json` (pydantic's TypeAdapter over plain dataclasses, which keeps
construction cheap on the 100,000-sample hot path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import TypeAdapter

from hubpress.frozen_init import quick_frozen_init

Severity = Literal["error", "warning"]
Layout = Literal["folder", "csv"]

# Stable problem kinds used in reports and tests (see the intake issue).
ERROR_KINDS = frozenset(
    {
        "missing_control",
        "missing_target",
        "missing_prompt",
        "prompt_not_utf8",
        "undecodable_image",
        "unsupported_format",
        "image_too_large",
        "mask_size_mismatch",
        "duplicate_id",
        "path_outside_root",
        "ambiguous_file",
        "missing_file",
        "missing_cell",
        "prompt_undecodable",
        "name_not_utf8",
    }
)
WARNING_KINDS = frozenset(
    {
        "empty_prompt",  # kept, as qflux keeps it: an unconditional example
        "orphan_control",
        "orphan_mask",
        "orphan_target",
        "extension_mismatch",
        "file_resolved",
        "unknown_column",
        "ignored_file",
        "symlink_not_followed",  # a symlink that loops, dangles or leads a folder outside the root
        "not_regular_file",  # a device, FIFO or socket (or a symlink to one, e.g. /dev/zero): never read
        "image_rotated",  # EXIF orientation: sizes are compared as a trainer sees them
        "multi_frame_image",  # animated or multi-page: a trainer sees the first frame only
    }
)


def severity_of(kind: str) -> Severity:
    """Warnings are the kinds listed in WARNING_KINDS; every other kind stops a sample."""
    return "warning" if kind in WARNING_KINDS else "error"


@quick_frozen_init  # one per file, in discovery and again in the decision
@dataclass(frozen=True, slots=True)
class FileRef:
    """One source file. `uri` is an absolute local path or s3://bucket/key."""

    uri: str
    relpath: str  # POSIX path relative to the source root, as listed
    size: int
    format: str | None = None  # true format from the bytes: png, jpeg, webp, bmp, tiff, gif
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    version: str | None = None  # mtime_ns locally, ETag on S3: the cache key together with size
    # Validation checked only the header: the build decodes the pixels when it reads the bytes.
    decode_pending: bool = False

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Problem:
    split: str
    sample: str | None
    kind: str
    detail: str
    path: str | None = None
    severity: Severity = "error"


@dataclass(frozen=True, slots=True)
class Correction:
    """Something hubpress corrected rather than refused; `from_` and `to` are relpaths or formats."""

    split: str
    sample: str | None
    path: str
    from_: str
    to: str
    kind: str = "extension_mismatch"  # or "file_resolved"


@dataclass(slots=True)
class Sample:
    id: str
    split: str
    prompt: str | None = None
    controls: list[FileRef] = field(default_factory=list)
    mask: FileRef | None = None
    target: FileRef | None = None
    prompt_file: FileRef | None = None  # folder layout: training_images/<base>.txt
    row: int | None = None  # CSV layout: 1-based data row number

    def images(self) -> list[FileRef]:
        refs = list(self.controls)
        if self.mask is not None:
            refs.append(self.mask)
        if self.target is not None:
            refs.append(self.target)
        return refs


@dataclass(frozen=True, slots=True)
class SkippedSample:
    id: str
    reasons: list[str]  # problem kinds


@dataclass(slots=True)
class SplitManifest:
    split: str
    samples: list[Sample] = field(default_factory=list)  # kept, ordered by id
    skipped: list[SkippedSample] = field(default_factory=list)


@dataclass(slots=True)
class IntakeReport:
    source: str
    layout: Layout
    splits: dict[str, SplitManifest] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    corrections: list[Correction] = field(default_factory=list)
    options: dict[str, object] = field(default_factory=dict)
    # Work counters of the run that made the report (files, cache_hits, files_read, bytes_read,
    # images_decoded, ...): how a test or a person sees that a re-run read nothing.
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def to_json(self) -> bytes:
        return _REPORT.dump_json(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> IntakeReport:
        return _REPORT.validate_json(data)


_REPORT = TypeAdapter(IntakeReport)
