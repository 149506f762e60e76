"""Validation: read every file a sample uses, hash it, check every image's header, and fully
decode it here or, for a publish, in the build (`decode=False`: see below).

Work goes chunk by chunk. For each chunk the hash cache is asked first (one batched lookup keyed
by URI, size and mtime_ns:inode locally or ETag on S3); only files it does not know are read, in
worker processes (decoding is CPU-bound), and their facts are written back.

The worker processes come from loky's reusable executor, not from a multiprocessing pool: its
workers do not re-import the caller's `__main__` (spawn and forkserver do, which makes library code
called from a plain script without an `if __name__ == "__main__":` guard fail with "... before the
current process has finished its bootstrapping phase"), they are started once per process and
reused by every chunk and every call, they exit after `POOL_IDLE_SECONDS` without work, and they
are stopped when the interpreter exits (or dies: they watch their parent).
A re-run over an unchanged tree therefore reads no bytes at all, and a changed tree reads only
what changed. `ValidationStats` counts the work, so tests and reports can show it.

Facts are plain values (`FileFacts`); what they mean for a sample (skip it, warn, correct) is
decided later by `hubpress.sources.intake.decide`.

`decode=False` checks an image's header (format, size, EXIF orientation, the pixel limit) and
leaves its pixels to the shard build, which has the bytes in hand anyway: a publish then reads
each new image for its hash here and decodes it once, in the build, while earlier shards upload
(`decode_problem`; hubpress.sources.reader.SourceReader). Such facts say `decoded=False`, and a
full validation (`hubpress scan`, the Python API) decodes the image again rather than trust them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hubpress.settings import Settings, get_settings
from hubpress.sources.formats import DEFAULT_MAX_PIXELS, PIL_FORMAT, SUPPORTED_FORMATS, sniff_format
from hubpress.sources.models import FileRef, Sample
from hubpress.storage.fetched import FetchedSpool
from hubpress.storage.files import Storage, is_s3, open_storage
from hubpress.storage.hashcache import HashCache
from hubpress.storage.regular import NotRegularFile, open_regular

# Bump when what a cached fact means changes: older entries are then checked again.
FACTS_VERSION = 3  # 2: EXIF orientation; 3: high bit depth, frame counts

# Pillow modes of more than 8 bits a channel (16-bit grayscale PNG, 32-bit integer or float TIFF).
# Converted to RGB, as trainers do (`image.convert("RGB")`), their values are clipped at 255: a
# 16-bit image becomes (nearly) all white. 16-bit RGB PNGs open as 8-bit RGB and are not listed.
HIGH_BIT_DEPTH_MODES = frozenset({"I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
CACHE_FILE = "files.sqlite"
DEFAULT_CHUNK = 2000
# Fewer files than this are checked inline: starting worker processes would cost more.
INLINE_BELOW = 16
# Idle decode workers exit after this long; the next chunk starts them again (~0.3 s).
POOL_IDLE_SECONDS = 60


@dataclass(frozen=True, slots=True)
class FileJob:
    relpath: str
    uri: str
    size: int
    version: str
    kind: Literal["image", "prompt"] = "image"


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What reading one file established. `error` is a problem kind, or None when the file is fine."""

    sha256: str | None = None
    format: str | None = None  # true format, from the bytes
    width: int | None = None
    height: int | None = None
    error: str | None = None
    detail: str | None = None
    text: bytes | None = None  # prompt files: their raw bytes (decoded by policy, not here)
    checked_pixels: int | None = None  # the pixel limit a too-large verdict was reached under
    # EXIF orientation (1 = as stored). width/height are as a trainer sees the image: `datasets`
    # and Pillow's exif_transpose apply the orientation, so 5-8 swap the stored width and height.
    orientation: int | None = None
    # False: only the header was checked; the pixels are decoded where the bytes are next read.
    decoded: bool = True
    frames: int | None = None  # more than one frame (animated PNG/WebP, multi-page TIFF); else None


@dataclass(slots=True)
class ValidationStats:
    files: int = 0
    cache_hits: int = 0
    files_read: int = 0
    bytes_read: int = 0
    images_decoded: int = 0
    files_kept: int = 0  # new S3 objects kept for the build (hubpress.storage.fetched)
    chunks: int = 0

    def add(self, other: ValidationStats) -> None:
        for name in self.__slots__:  # type: ignore[attr-defined]
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


@dataclass(slots=True)
class ValidationResult:
    facts: dict[str, FileFacts] = field(default_factory=dict)  # by relpath
    stats: ValidationStats = field(default_factory=ValidationStats)


def intake_cache(settings: Settings | None = None) -> HashCache:
    """The shared file-facts cache under Settings.cache_dir (sha256 plus validation results)."""
    settings = settings or get_settings()
    return HashCache(Path(settings.cache_dir).expanduser() / CACHE_FILE)


def file_jobs(samples: Iterable[Sample]) -> list[FileJob]:
    """Every file the samples use, once each, in a stable order."""
    jobs: dict[str, FileJob] = {}
    for sample in samples:
        if sample.prompt_file is not None:
            ref = sample.prompt_file
            if ref.relpath not in jobs:
                jobs[ref.relpath] = FileJob(ref.relpath, ref.uri, ref.size, ref.version or "", "prompt")
        for ref in sample.images():
            if ref.relpath not in jobs:  # a job is built once per file, not once per mention
                jobs[ref.relpath] = FileJob(ref.relpath, ref.uri, ref.size, ref.version or "", "image")
    return list(jobs.values())


# ------------------------------------------------------------------------------------- pure checks


def check_image_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, decode: bool = True) -> FileFacts:
    """Identify, size-check and (with `decode`) fully decode one image. Never lets Pillow allocate
    a bomb: the pixel limit is applied from the header, before any pixel buffer exists."""
    from PIL import Image

    sha = hashlib.sha256(data).hexdigest()
    fmt = sniff_format(data)
    if fmt is None:
        return FileFacts(
            sha, None, error="undecodable_image", detail="not a recognisable image (unknown magic bytes)"
        )
    if fmt not in SUPPORTED_FORMATS:
        detail = f"{fmt.upper()} images are not supported (use png, jpeg, webp, bmp or tiff)"
        return FileFacts(sha, fmt, error="unsupported_format", detail=detail)
    saved = Image.MAX_IMAGE_PIXELS
    # Opening reads only the header (no pixel buffer exists yet), so Pillow's own guard is lifted
    # for it and the explicit check below applies our limit before load() allocates anything.
    # Pillow's guard would raise before telling us the size, which the cache needs to reconsider
    # the verdict under a higher --max-pixels later.
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[PIL_FORMAT[fmt]]) as im:
                width, height = im.size
                # width x height is the same either way round: the limit is applied before any
                # pixel is decoded, EXIF orientation included (a PNG's getexif() would decode).
                if width * height > max_pixels:
                    width, height = _as_seen(width, height, _header_orientation(im))
                    return _too_large(sha, fmt, width, height, max_pixels)
                if im.mode in HIGH_BIT_DEPTH_MODES:
                    return FileFacts(
                        sha,
                        fmt,
                        width,
                        height,
                        error="high_bit_depth_image",
                        detail=f"{fmt.upper()} of mode {im.mode} (more than 8 bits a channel): converted to "
                        "RGB, as trainers do, it becomes all white; save it as 8-bit",
                    )
                frames = getattr(im, "n_frames", 1)
                Image.MAX_IMAGE_PIXELS = max_pixels  # any later check inside Pillow uses our limit
                if not decode and _metadata_after_pixels(fmt, data):
                    decode = True  # Pillow reads metadata after the pixels only by decoding them
                if decode:
                    im.load()  # first: a load error must not be swallowed by an EXIF lookup
                orientation = _orientation(im) if decode else _header_orientation(im)
                width, height = _as_seen(width, height, orientation)
    except Image.DecompressionBombError as exc:
        return FileFacts(sha, fmt, error="image_too_large", detail=str(exc), checked_pixels=max_pixels)
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for broken files
        return FileFacts(sha, fmt, error="undecodable_image", detail=f"cannot decode: {exc}")
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    orientation = orientation if orientation != 1 else None
    return FileFacts(
        sha,
        fmt,
        width,
        height,
        orientation=orientation,
        decoded=decode,
        frames=frames if isinstance(frames, int) and frames > 1 else None,
    )


def decode_problem(data: bytes, fmt: str | None) -> str | None:
    """Decode an image whose header `check_image_bytes(decode=False)` accepted: None when its
    pixels decode, else the problem's detail, worded as full validation words it. The header
    kept the image within the pixel limit (--max-pixels, which may be above Pillow's own), so
    Pillow's guard is lifted here as it is there."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            formats = [PIL_FORMAT[fmt]] if fmt in PIL_FORMAT else None
            with Image.open(io.BytesIO(data), formats=formats) as im:
                im.load()
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for broken files
        return f"cannot decode: {exc}"
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    return None


# PNG chunks that can carry orientation (EXIF, XMP, ImageMagick's raw EXIF profile in text).
_PNG_METADATA = (b"eXIf", b"tEXt", b"zTXt", b"iTXt")


def _metadata_after_pixels(fmt: str, data: bytes) -> bool:
    """A PNG with metadata chunks after its pixel data: Pillow reads them only by decoding. The
    chunks are walked by their headers (a damaged walk says yes: the decode will judge)."""
    if fmt != "png":
        return False
    offset, seen_pixels = 8, False
    while offset + 8 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            seen_pixels = True
        elif seen_pixels and kind in _PNG_METADATA:
            return True
        elif kind == b"IEND":
            return False
        offset += 12 + length
    return True


def _as_seen(width: int, height: int, orientation: int | None) -> tuple[int, int]:
    """The size a trainer sees: `datasets` and exif_transpose turn a quarter (EXIF 5-8)."""
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _header_orientation(im) -> int | None:
    """EXIF orientation from what Pillow has read so far (EXIF, XMP, raw profiles), without
    decoding: Image.getexif itself, as a PNG's own getexif() would decode the pixels first.

    None for a TIFF: Pillow applies a TIFF's Orientation tag itself (the size it reports at open
    is already turned, and load() turns the pixels and drops the tag), as a full decode shows."""
    from PIL import Image

    if im.format == "TIFF":
        return None
    try:
        value = Image.Image.getexif(im).get(0x0112)
    except Exception:  # a damaged EXIF block is not a damaged image
        return None
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def _orientation(im) -> int | None:
    try:
        value = im.getexif().get(0x0112)
    except Exception:  # a damaged EXIF block is not a damaged image
        return None
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def _too_large(sha: str | None, fmt: str | None, width: int, height: int, max_pixels: int) -> FileFacts:
    detail = (
        f"{width}x{height} = {width * height:,} pixels is above the limit of {max_pixels:,} (--max-pixels)"
    )
    return FileFacts(sha, fmt, width, height, "image_too_large", detail, checked_pixels=max_pixels)


def check_prompt_bytes(data: bytes) -> FileFacts:
    return FileFacts(hashlib.sha256(data).hexdigest(), text=data)


def apply_pixel_limit(facts: FileFacts, max_pixels: int) -> FileFacts | None:
    """Cached facts under a (possibly) different limit; None when the image must be decoded again."""
    if facts.error == "image_too_large":
        if facts.width and facts.height and facts.width * facts.height <= max_pixels:
            return None  # the limit was raised: decode it now
        return facts
    if facts.error is None and facts.width and facts.height and facts.width * facts.height > max_pixels:
        return _too_large(facts.sha256, facts.format, facts.width, facts.height, max_pixels)
    return facts


# ----------------------------------------------------------------------------------- cache mapping


def _to_info(job: FileJob, facts: FileFacts) -> dict[str, Any]:
    info: dict[str, Any] = {"v": FACTS_VERSION, "kind": job.kind}
    if job.kind == "prompt":
        info["text_b64"] = base64.b64encode(facts.text or b"").decode("ascii")
    else:
        info.update(format=facts.format, width=facts.width, height=facts.height)
        info.update(error=facts.error, detail=facts.detail, checked_pixels=facts.checked_pixels)
        info.update(orientation=facts.orientation, decoded=facts.decoded, frames=facts.frames)
    return info


def _from_cache(job: FileJob, sha: str | None, info: dict[str, Any] | None) -> FileFacts | None:
    if not info or info.get("v") != FACTS_VERSION or info.get("kind") != job.kind:
        return None
    if job.kind == "prompt":
        return FileFacts(sha, text=base64.b64decode(info.get("text_b64", "")))
    return FileFacts(
        sha,
        info.get("format"),
        info.get("width"),
        info.get("height"),
        info.get("error"),
        info.get("detail"),
        checked_pixels=info.get("checked_pixels"),
        orientation=info.get("orientation"),
        decoded=info.get("decoded", True),  # entries from before deferred decoding were decoded
        frames=info.get("frames"),
    )


# --------------------------------------------------------------------------------------- workers

_WORKER_STORAGE: dict[str, Storage] = {}


def _storage_for(root: str, settings: Settings | None) -> Storage:
    storage = _WORKER_STORAGE.get(root)
    if storage is None:
        storage = _WORKER_STORAGE[root] = open_storage(root, settings)
    return storage


def _read(storage: Storage, job: FileJob) -> tuple[bytes | None, FileFacts | None]:
    """The file's bytes, or the facts that say why it cannot be used. Transient S3 errors propagate."""
    if not is_s3(job.uri):
        real = os.path.realpath(job.uri)
        root = os.path.realpath(storage.root)
        if real != root and not real.startswith(root + os.sep):
            return None, FileFacts(
                error="path_outside_root", detail=f"a symlink that leaves the source root (-> {real})"
            )
        try:
            with open_regular(real) as fh:
                return fh.read(), None
        except FileNotFoundError:
            return None, FileFacts(error="missing_file", detail="listed, but gone before it could be read")
        except NotRegularFile as exc:  # swapped for a device or FIFO after the listing
            return None, FileFacts(error="undecodable_image", detail=str(exc))
        except OSError as exc:
            return None, FileFacts(error="undecodable_image", detail=f"cannot read: {exc.strerror or exc}")
    from botocore.exceptions import ClientError

    try:
        return storage.read_bytes(job.relpath), None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
            return None, FileFacts(error="missing_file", detail="listed, but gone before it could be read")
        raise


def check_files(
    root: str,
    jobs: Sequence[FileJob],
    max_pixels: int,
    settings: Settings | None = None,
    storage: Storage | None = None,
    decode: bool = True,
    keep_for_build: bool = False,
) -> tuple[list[tuple[str, FileFacts]], ValidationStats]:
    """Read and check one batch of files (in a worker process, or inline with the caller's storage).
    `keep_for_build`: S3 objects read here are kept for the build (hubpress.storage.fetched)."""
    storage = storage if storage is not None else _storage_for(root, settings)
    spool = FetchedSpool.of(settings) if keep_for_build and is_s3(root) else None
    stats = ValidationStats()
    out: list[tuple[str, FileFacts]] = []
    for job in jobs:
        data, refused = _read(storage, job)
        if refused is not None:
            out.append((job.relpath, refused))
            continue
        assert data is not None
        stats.files_read += 1
        stats.bytes_read += len(data)
        if job.kind == "prompt":
            out.append((job.relpath, check_prompt_bytes(data)))
        else:
            facts = check_image_bytes(data, max_pixels, decode)
            stats.images_decoded += facts.decoded  # header-only checks leave it to the build
            if spool is not None and facts.error is None and facts.sha256 is not None:
                stats.files_kept += spool.keep(facts.sha256, data)
            out.append((job.relpath, facts))
    return out, stats


def _batched(items: Sequence[FileJob], size: int) -> Iterator[Sequence[FileJob]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def decode_pool(workers: int) -> Executor:
    """The process's shared pool of `workers` decode processes (see the module docstring)."""
    from loky import get_reusable_executor

    return get_reusable_executor(max_workers=workers, timeout=POOL_IDLE_SECONDS)


def validate_files(
    jobs: Sequence[FileJob],
    *,
    root: str,
    settings: Settings | None = None,
    cache: HashCache | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    decode: bool = True,
    keep_for_build: bool = False,
) -> ValidationResult:
    """Facts for every job: from the cache when it knows the file's version, else read and decoded.

    `workers=1` checks inline (no processes); otherwise `decode_pool(workers)` (default: the
    usable CPUs) checks the files the cache did not know. `decode=False` checks image headers
    only and leaves the pixels to the build (see the module docstring); with `decode`, cached
    header-only facts are checked again. `keep_for_build` (a publish's intake): the S3 objects
    read here are kept on local disk for the build, which then does not fetch them again
    (hubpress.storage.fetched).
    """
    settings = settings or get_settings()
    cache = cache if cache is not None else intake_cache(settings)
    workers = workers or default_workers()
    if keep_for_build and is_s3(root):
        FetchedSpool.of(settings).sweep()  # what earlier runs kept and no build took
    result = ValidationResult()
    pool: Executor | None = None
    inline_storage: Storage | None = None
    for chunk in _batched(jobs, chunk_size):
        result.stats.chunks += 1
        result.stats.files += len(chunk)
        known = cache.get_many([(j.uri, j.size, j.version) for j in chunk])
        todo: list[FileJob] = []
        for job in chunk:
            hit = known.get((job.uri, job.size, job.version))
            facts = _from_cache(job, *hit) if hit else None
            if facts is not None and job.kind == "image":
                facts = apply_pixel_limit(facts, max_pixels)
                if facts is not None and decode and not facts.decoded:
                    facts = None  # only its header was checked: decode it now
            if facts is None:
                todo.append(job)
            else:
                result.facts[job.relpath] = facts
                result.stats.cache_hits += 1
        if not todo:
            continue
        if workers > 1 and len(todo) >= INLINE_BELOW and pool is None:
            pool = decode_pool(workers)
        batches: list[tuple[list[tuple[str, FileFacts]], ValidationStats]]
        if pool is None or len(todo) < INLINE_BELOW:
            if inline_storage is None:
                inline_storage = open_storage(root, settings)
            batches = [check_files(root, todo, max_pixels, settings, inline_storage, decode, keep_for_build)]
        else:
            size = max(4, min(256, -(-len(todo) // (workers * 4))))
            futures = [
                pool.submit(check_files, root, list(part), max_pixels, settings, None, decode, keep_for_build)
                for part in _batched(todo, size)
            ]
            try:
                batches = [f.result() for f in futures]
            except BaseException:
                for future in futures:  # the pool is shared: leave it no work nobody waits for
                    future.cancel()
                raise
        by_path = {job.relpath: job for job in todo}
        rows = []
        for checked, stats in batches:
            result.stats.add(stats)
            for relpath, facts in checked:
                result.facts[relpath] = facts
                job = by_path[relpath]
                # Read failures say nothing lasting about a version of a file: not cached.
                if facts.error not in ("missing_file", "path_outside_root") and facts.sha256 is not None:
                    rows.append((job.uri, job.size, job.version, facts.sha256, _to_info(job, facts)))
        cache.put_many(rows)
    return result


def validate_samples(
    samples: Sequence[Sample],
    *,
    root: str,
    settings: Settings | None = None,
    cache: HashCache | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    decode: bool = True,
    keep_for_build: bool = False,
) -> ValidationResult:
    """Validate every file of the samples (see validate_files), chunk by chunk."""
    return validate_files(
        file_jobs(samples),
        root=root,
        settings=settings,
        cache=cache,
        max_pixels=max_pixels,
        workers=workers,
        chunk_size=chunk_size,
        decode=decode,
        keep_for_build=keep_for_build,
    )


def record_build_problems(problems: Iterable[tuple[FileRef, str]], settings: Settings | None = None) -> None:
    """Cache what the build found when it decoded images that validation checked by header only
    (`decode_problem`): the next intake sees them as undecodable, as full validation would have."""
    rows = []
    for ref, detail in problems:
        if ref.sha256 is None:
            continue
        facts = FileFacts(ref.sha256, ref.format, ref.width, ref.height, "undecodable_image", detail)
        job = FileJob(ref.relpath, ref.uri, ref.size, ref.version or "", "image")
        rows.append((job.uri, job.size, job.version, facts.sha256, _to_info(job, facts)))
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
