"""What discovery found, shared by both layouts: the Discovery, FileRefs of listed files, problems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from hubpress.sources.models import Correction, FileRef, Layout, Problem, Sample, severity_of
from hubpress.storage.files import ListedFile

SPLITS = ("train", "test")
CSV_NAMES = {split: f"{split}.csv" for split in SPLITS}
LAYOUT_HELP = (
    "expected either the folder layout (train/ and/or test/ holding control_images/ and "
    "training_images/) or the CSV layout (train.csv and/or test.csv at the root)"
)
CSV_COLUMNS_HELP = "image, control, control_1 ... control_K, prompt, and optionally mask and id"


@dataclass(slots=True)
class Discovery:
    """What a listing says: samples per split (ordered by id), with the problems found on the way."""

    layout: Layout
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    corrections: list[Correction] = field(default_factory=list)

    def sample_count(self) -> int:
        return sum(len(s) for s in self.samples.values())


def problem(split: str, sample: str | None, kind: str, detail: str, path: str | None = None) -> Problem:
    return Problem(split, sample, kind, detail, path, severity_of(kind))


def file_ref(listed: ListedFile, root: str) -> FileRef:
    """A FileRef for a listed file; its version (mtime_ns[:inode] or ETag) keys the caches."""
    return file_ref_under(listed, _prefix(root))


@lru_cache(maxsize=64)
def _prefix(root: str) -> str:
    # One prefix string per root, shared by its FileRefs (they hold the root, not a whole URI).
    return f"{root.rstrip('/')}/"


def file_ref_under(listed: ListedFile, prefix: str) -> FileRef:
    """file_ref, given the root as its URI prefix (ending in "/"): a caller making a million refs
    under one root makes the prefix once, and every FileRef holds that one string (FileRef.under)."""
    version = f"{listed.version}:{listed.inode}" if listed.inode is not None else listed.version
    return FileRef.under(prefix, listed.relpath, listed.size, version)


def ambiguous(
    split: str, sample: str | None, role: str, lfs: Sequence[ListedFile] | Sequence[str]
) -> Problem:
    names = sorted(x if isinstance(x, str) else x.relpath for x in lfs)
    return problem(
        split, sample, "ambiguous_file", f"several files could be the {role}: {', '.join(names)}", names[0]
    )
