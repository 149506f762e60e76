"""The file-facts cache: what validation (and the build's decode) established about each version
of each file, kept in the shared hash cache under Settings.cache_dir, so that an unchanged tree is
never read or decoded again."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import fields as dataclass_fields
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, Literal

from hubpress.settings import Settings, get_settings
from hubpress.sources.image_checks import FileFacts, apply_pixel_limit
from hubpress.sources.models import FileRef, held_root, joined_uri, uri_root
from hubpress.storage.hashcache import HashCache

# Bump when what a cached fact means changes: older entries are then checked again.
FACTS_VERSION = 3  # 2: EXIF orientation; 3: high bit depth, frame counts
CACHE_FILE = "files.sqlite"


class FileJob(tuple):
    """One file to validate: FileJob(relpath, uri, size, version, kind="image"), read as those
    five attributes. A tuple, not a dataclass: validation makes one per file of a dataset
    (2,000,000 at a million samples), and a frozen dataclass costs three times as much to build.

    Held as FileRef holds its file: the source root (shared by every file under it) in place of
    the URI, which is made from root and relpath when asked. A whole URI made per file was about
    110 bytes, 220 MB of a million samples' validation (docs/performance.md, "Planning
    (eleventh session)"). Construction, equality, hashing, repr and pickling are those of the
    tuple holding the whole URI (tests/sources/test_file_jobs.py)."""

    __slots__ = ()
    _fields = ("relpath", "uri", "size", "version", "kind")

    def __new__(
        cls, relpath: str, uri: str, size: int, version: str, kind: Literal["image", "prompt"] = "image"
    ) -> FileJob:
        return tuple.__new__(cls, (relpath, uri_root(uri, relpath), size, version, kind))

    relpath: str = property(itemgetter(0))  # type: ignore[assignment]
    size: int = property(itemgetter(2))  # type: ignore[assignment]
    version: str = property(itemgetter(3))  # type: ignore[assignment]
    kind: Literal["image", "prompt"] = property(itemgetter(4))  # type: ignore[assignment]

    @property
    def uri(self) -> str:
        return joined_uri(self[1], self[0])

    @classmethod
    def of(cls, ref: FileRef, kind: Literal["image", "prompt"]) -> FileJob:
        """The job of a discovered file, holding the FileRef's own root (no URI made)."""
        return tuple.__new__(cls, (ref.relpath, held_root(ref), ref.size, ref.version or "", kind))

    def __repr__(self) -> str:
        return (
            f"FileJob(relpath={self[0]!r}, uri={self.uri!r}, size={self[2]!r}, "
            f"version={self[3]!r}, kind={self[4]!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (FileJob, (self[0], self.uri, self[2], self[3], self[4]))


def intake_cache(settings: Settings | None = None) -> HashCache:
    """The shared file-facts cache under Settings.cache_dir (sha256 plus validation results)."""
    settings = settings or get_settings()
    return HashCache(Path(settings.cache_dir).expanduser() / CACHE_FILE)


def to_info(job: FileJob, facts: FileFacts) -> dict[str, Any]:
    info: dict[str, Any] = {"v": FACTS_VERSION, "kind": job.kind}
    if job.kind == "prompt":
        info["text_b64"] = base64.b64encode(facts.text or b"").decode("ascii")
    else:
        info.update(format=facts.format, width=facts.width, height=facts.height)
        info.update(error=facts.error, detail=facts.detail, checked_pixels=facts.checked_pixels)
        info.update(orientation=facts.orientation, decoded=facts.decoded, frames=facts.frames)
    return info


def from_cache(job: FileJob, sha: str | None, info: dict[str, Any] | None) -> FileFacts | None:
    if not info or info.get("v") != FACTS_VERSION or info.get("kind") != job.kind:
        return None
    if job.kind == "prompt":
        text = info.get("text_b64", "")
        try:
            return (
                FileFacts(sha, text=base64.b64decode(text, validate=True)) if isinstance(text, str) else None
            )
        except ValueError:  # a damaged entry: the file is read again
            return None
    fields = image_facts_fields(info)
    return FileFacts(sha, *fields) if _well_formed(fields) else None


# FileFacts' fields but the sha256, as image_facts_fields gives them: the types a damaged or
# hand-edited entry might break (None is always allowed, but for `decoded`).
_FIELD_TYPES = (str, int, int, str, str, type(None), int, int, bool, int)


def _well_formed(fields: tuple[Any, ...]) -> bool:
    """Whether cached fields are what to_info writes: the rules multiply widths and compare
    limits, so a damaged entry (a width as text) is read again, not a traceback."""
    for value, kind in zip(fields, _FIELD_TYPES, strict=True):
        if value is None and kind is not bool:
            continue
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            return False
    return True


def image_facts_fields(info: dict[str, Any]) -> tuple[Any, ...]:
    """An image's cached facts but its sha256, in FileFacts' field order. Most images of a
    dataset share them (format, size, no error): HashCache.get_many parses each distinct text
    once, so validation works these out once per distinct entry (`FactsFromCache`)."""
    return (
        info.get("format"),
        info.get("width"),
        info.get("height"),
        info.get("error"),
        info.get("detail"),
        None,
        info.get("checked_pixels"),
        info.get("orientation"),
        info.get("decoded", True),  # entries from before deferred decoding were decoded
        info.get("frames"),
    )


class FactsFromCache:
    """`from_cache` for one batch of cache answers, with each distinct image entry's fields
    worked out once. Keyed by the entry's identity: valid while the batch's answers are alive."""

    def __init__(self) -> None:
        self._fields: dict[int, tuple[Any, ...]] = {}

    def __call__(self, job: FileJob, sha: str | None, info: dict[str, Any] | None) -> FileFacts | None:
        if job.kind != "image" or not info:
            return from_cache(job, sha, info)
        fields = self._fields.get(id(info))
        if fields is None:
            if info.get("v") != FACTS_VERSION or info.get("kind") != "image":
                return None
            fields = image_facts_fields(info)
            fields = self._fields[id(info)] = fields if _well_formed(fields) else ()  # (): damaged
        return FileFacts(sha, *fields) if fields else None


def usable_facts(facts: FileFacts | None, job: FileJob, max_pixels: int, decode: bool) -> FileFacts | None:
    """Cached facts as this validation may use them: under its pixel limit, and decoded when it
    decodes; None when the file must be read again."""
    if facts is not None and job.kind == "image":
        facts = apply_pixel_limit(facts, max_pixels)
        if facts is not None and decode and not facts.decoded:
            return None  # only its header was checked: decode it now
    return facts


_IMAGE = FileJob("", "", 0, "", "image")
_FIELDS_BUT_SHA = attrgetter(*(f.name for f in dataclass_fields(FileFacts)[1:]))


def cached_image_verdict(info: dict[str, Any], max_pixels: int, decode: bool) -> tuple[Any, ...] | None:
    """What `usable_facts(from_cache(job, sha, info), job, max_pixels, decode)` says of an image job,
    as the fields of its FileFacts but the sha256 (which none of the rules read), or None when
    the file must be read again. A night's scan asks it once per distinct cache entry, not once
    per file (tests/sources/test_scan_verdicts.py holds it equal to the per-file rule)."""
    usable = usable_facts(from_cache(_IMAGE, None, info), _IMAGE, max_pixels, decode)
    return None if usable is None else _FIELDS_BUT_SHA(usable)


def record_build_problems(problems: Iterable[tuple[FileRef, str]], settings: Settings | None = None) -> None:
    """Cache what the build found when it decoded images that validation checked by header only
    (`decode_problem`): the next intake sees them as undecodable, as full validation would have."""
    rows = []
    for ref, detail in problems:
        if ref.sha256 is None:
            continue
        facts = FileFacts(ref.sha256, ref.format, ref.width, ref.height, "undecodable_image", detail)
        job = FileJob.of(ref, "image")
        rows.append((job.uri, job.size, job.version, facts.sha256, to_info(job, facts)))
    intake_cache(settings).put_many(rows)


def record_decoded(refs: Iterable[FileRef], settings: Settings | None = None) -> None:
    """Mark images the build decoded (FileRef.decode_pending) as decoded in the facts cache, so no
    later build or full validation decodes them again while they are unchanged."""
    keys = [(ref.uri, ref.size, ref.version or "") for ref in refs if ref.decode_pending]
    if not keys:
        return
    cache = intake_cache(settings)
    rows = []
    for key, (sha, info) in cache.get_many(keys).items():
        if info and info.get("decoded") is False and not info.get("error"):
            rows.append((*key, sha, {**info, "decoded": True}))
    cache.put_many(rows)
