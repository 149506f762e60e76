"""The file-facts cache: what validation (and the build's decode) established about each version
of each file, kept in the shared hash cache under Settings.cache_dir, so that an unchanged tree is
never read or decoded again."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import fields as dataclass_fields
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal, NamedTuple

from hubpress.settings import Settings, get_settings
from hubpress.sources.image_checks import FileFacts, apply_pixel_limit
from hubpress.sources.models import FileRef
from hubpress.storage.hashcache import HashCache

# Bump when what a cached fact means changes: older entries are then checked again.
FACTS_VERSION = 3  # 2: EXIF orientation; 3: high bit depth, frame counts
CACHE_FILE = "files.sqlite"


class FileJob(NamedTuple):
    """One file to validate. A tuple, not a dataclass: validation makes one per file of a
    dataset (2,000,000 at a million samples), and a frozen dataclass costs three times as much
    to build."""

    relpath: str
    uri: str
    size: int
    version: str
    kind: Literal["image", "prompt"] = "image"


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
        return FileFacts(sha, text=base64.b64decode(info.get("text_b64", "")))
    return FileFacts(sha, *image_facts_fields(info))


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
            fields = self._fields[id(info)] = image_facts_fields(info)
        return FileFacts(sha, *fields)


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
        job = FileJob(ref.relpath, ref.uri, ref.size, ref.version or "", "image")
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
