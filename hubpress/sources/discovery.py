"""Discovery: which samples a source holds, decided from ONE listing of it (and the CSV texts).

Pure functions: no file is opened, globbed or stat-ed here. The caller lists the source once
(`Storage.list`, one paginated ListObjectsV2 on S3) and, for the CSV layout, reads train.csv /
test.csv; everything else is matching names in memory, which is what keeps 100,000 samples
within seconds. Bytes (formats, decoding, prompts in files) are validation's job.

The layouts live in hubpress.sources.folder_layout and hubpress.sources.csv_layout.

Folder layout: `train/` and/or `test/` with `training_images/` and `control_images/` (the rules
are in folder_layout's docstring).

CSV layout: `train.csv` / `test.csv` at the root, columns image, control, control_1..K, prompt,
optionally mask and id; paths relative to the root.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager

from hubpress.errors import SourceError
from hubpress.sources.csv_layout import discover_csv, normalise_csv_path
from hubpress.sources.folder_layout import discover_folder
from hubpress.sources.found import (
    CSV_COLUMNS_HELP,
    CSV_NAMES,
    LAYOUT_HELP,
    SPLITS,
    Discovery,
    file_ref,
    problem,
)
from hubpress.sources.models import Layout, Problem
from hubpress.storage.files import UNLISTED, ListedFile
from hubpress.storage.listing import Listing, relpaths_of
from hubpress.storage.names import PLAIN_PATH, UNSAFE_NAME, why_unsafe

__all__ = [
    "CSV_COLUMNS_HELP",
    "CSV_NAMES",
    "LAYOUT_HELP",
    "SPLITS",
    "Discovery",
    "detect_layout",
    "discover",
    "discover_csv",
    "discover_folder",
    "file_ref",
    "gc_paused",
    "normalise_csv_path",
]


_SPLIT_DIRS = tuple(f"{split}/" for split in SPLITS)
_SPLIT_CSVS = frozenset(CSV_NAMES.values())


def detect_layout(relpaths: Iterable[str], requested: str = "auto", where: str = "the source") -> Layout:
    """csv when train.csv or test.csv is at the root, folder when train/ or test/ is; else
    SourceError naming `where` (the source's path or URI, when the caller knows it)."""
    has_csv = has_dirs = False
    for rel in relpaths:
        if rel.startswith(_SPLIT_DIRS):
            has_dirs = True
        elif rel in _SPLIT_CSVS:
            has_csv = True
        else:
            continue
        if has_csv and has_dirs:
            break  # nothing later changes the answer: a CSV source is not read twice over
    if requested == "csv":
        if not has_csv:
            raise SourceError(
                f"--layout csv: no train.csv or test.csv at the root of {where} ({LAYOUT_HELP})."
            )
        return "csv"
    if requested == "folder":
        if not has_dirs:
            raise SourceError(
                f"--layout folder: neither train/ nor test/ exists (or both are empty) at the root of "
                f"{where}; expected train/ and/or test/, each with control_images/ and training_images/."
            )
        return "folder"
    if requested != "auto":
        raise SourceError(f"unknown layout {requested!r}: use auto, folder or csv.")
    if has_csv:
        return "csv"
    if has_dirs:
        return "folder"
    raise SourceError(f"cannot tell the layout of {where}: {LAYOUT_HELP}. Found neither.")


def discover(
    listing: Sequence[ListedFile],
    *,
    root: str,
    layout: str = "auto",
    csv_texts: Mapping[str, str] | None = None,
    allow_missing_target: bool = False,
    splits: Iterable[str] | None = None,
) -> Discovery:
    """Samples of every split (or of `splits`), from one listing of the source (and the CSV texts).

    `root` is the source URI (local path or s3://bucket/prefix) that FileRef URIs are built on;
    `csv_texts` maps a split to the decoded text of its CSV file.
    """
    listing, unnamed = _split_undecodable_names(listing)
    chosen = detect_layout(relpaths_of(listing), layout)
    with gc_paused():
        if chosen == "folder":
            found = discover_folder(listing, root=root, splits=splits)
        else:
            found = discover_csv(
                listing,
                root=root,
                csv_texts=csv_texts or {},
                allow_missing_target=allow_missing_target,
                splits=splits,
            )
    found.problems.extend(unnamed)
    return found


def _split_undecodable_names(listing: Sequence[ListedFile]) -> tuple[Sequence[ListedFile], list[Problem]]:
    """Files whose names are not valid UTF-8 (a local listing carries them surrogate-escaped) cannot
    become sample ids, Arrow strings or Hub paths: each is left out with its own problem, shown
    with backslash escapes, instead of breaking the whole run later. So are names the name gate
    refuses (an S3 key with `//`, `.` or `..` segments, a control character): reported, never
    dropped silently, never joined to a path."""
    if isinstance(listing, Listing):
        # Only the entries whose names are not plain, or that are held whole (every unlisted
        # entry is), are looked at: no ListedFile is made for the others.
        looked = sorted(listing.held_whole_at().union(_not_plain_at(listing.relpaths)))
        left_out: set[int] = set()
        problems: list[Problem] = []
        for n in looked:
            found = _name_problem(listing[n])
            if found is not None:
                left_out.add(n)
                problems.append(found)
        if not problems:
            return listing, problems
        return listing.without(left_out), problems  # still columns: not a ListedFile per file
    problems = []
    kept: list[ListedFile] = []
    for lf in listing:
        if lf.size != UNLISTED and PLAIN_PATH.fullmatch(lf.relpath):
            kept.append(lf)  # most names: ASCII, and safe by every rule below
            continue
        found = _name_problem(lf)
        if found is None:
            kept.append(lf)
        else:
            problems.append(found)
    return (listing, problems) if not problems else (kept, problems)


_PLAIN_AT_ONCE = 4096
# A text of plain names joined by NULs (no plain name holds a NUL): one match tells that all the
# names of a chunk are plain, where a match per name was half a second at a million samples.
_ALL_PLAIN = re.compile(rf"(?:{PLAIN_PATH.pattern}\x00)*{PLAIN_PATH.pattern}")


def _not_plain_at(relpaths: list[str]) -> list[int]:
    """The positions of the relpaths PLAIN_PATH does not match in full, in order."""
    plain, all_plain = PLAIN_PATH.fullmatch, _ALL_PLAIN.fullmatch
    found: list[int] = []
    for start in range(0, len(relpaths), _PLAIN_AT_ONCE):
        chunk = relpaths[start : start + _PLAIN_AT_ONCE]
        text = "\0".join(chunk)
        if text.count("\0") == len(chunk) - 1 and all_plain(text):
            continue  # no name holds a NUL, and each is plain
        found.extend(start + n for n, rel in enumerate(chunk) if not plain(rel))
    return found


def _name_problem(lf: ListedFile) -> Problem | None:
    """Why the listed entry `lf` is left out (a name not UTF-8, an unlisted entry, a name the gate
    refuses), or None: it is kept."""
    try:
        lf.relpath.encode("utf-8")
    except UnicodeEncodeError:
        shown = lf.relpath.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        split = shown.split("/", 1)[0]
        detail = f"the file name {shown!r} is not valid UTF-8; rename it"
        return problem(split, None, "name_not_utf8", detail, shown)
    if lf.size == UNLISTED:  # a symlink that loops, dangles or leaves the root; a device, FIFO
        split = lf.relpath.split("/", 1)[0]
        detail = f"{lf.relpath!r} {lf.version}"
        kind = "not_regular_file" if "not a regular file" in lf.version else "symlink_not_followed"
        return problem(split, None, kind, detail, lf.relpath)
    why = why_unsafe(lf.relpath)
    if why is None:
        return None
    split = lf.relpath.split("/", 1)[0]
    detail = f"the name {lf.relpath!r} {why}; it is left out"
    return problem(split, None, UNSAFE_NAME, detail, lf.relpath)


@contextmanager
def gc_paused():
    """Discovery allocates a few objects per file and frees none of them: the cyclic GC would
    rescan that growing heap again and again (a third of the time at 100,000 samples).

    On the way out, what the pause made goes to the oldest generation unscanned (gc.freeze, then
    gc.unfreeze, which puts the frozen objects there): it is long-lived, and the first young
    collection after the pause would otherwise walk all of it (7% of a night's plan). Nothing is
    kept from the collector: the next full collection sees every object, as before. Left alone
    when someone else has frozen objects (gc.get_freeze_count), as a forking server may."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()
