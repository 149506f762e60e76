"""The pure checks of one file's bytes: identify, size-check and decode an image without ever
letting Pillow allocate a bomb; what a prompt file holds. Facts are plain values (`FileFacts`);
hubpress.sources.validation runs these checks over a dataset, and hubpress.sources.facts_cache
remembers their outcome per file version."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hubpress.frozen_init import quick_frozen_init
from hubpress.sources.formats import DEFAULT_MAX_PIXELS, PIL_FORMAT, SUPPORTED_FORMATS, sniff_format

# Pillow modes of more than 8 bits a channel (16-bit grayscale PNG, 32-bit integer or float TIFF).
# Converted to RGB, as trainers do (`image.convert("RGB")`), their values are clipped at 255: a
# 16-bit image becomes (nearly) all white. 16-bit RGB PNGs open as 8-bit RGB and are not listed.
HIGH_BIT_DEPTH_MODES = frozenset({"I", "F", "I;16", "I;16B", "I;16L", "I;16N"})


_guard_lock = threading.Lock()
_guard_users = 0
_guard_saved: int | None = None


@contextmanager
def _pillow_guard_lifted() -> Iterator[None]:
    """Pillow's bomb guard (the process-wide Image.MAX_IMAGE_PIXELS) lifted while hubpress checks
    images, and put back when the last check running in any thread ends. Checks run on several
    threads at once (a night's few images decode on the build's threads): each saving and
    restoring the global itself interleaved, and one left it None for the rest of the process.
    Lifting it is safe because every check applies its own limit to the header's size before any
    pixel is decoded; with the guard lifted Pillow warns of nothing, so no warnings filter (a
    global too) is needed."""
    from PIL import Image

    global _guard_users, _guard_saved
    with _guard_lock:
        if _guard_users == 0:
            _guard_saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _guard_users += 1
    try:
        yield
    finally:
        with _guard_lock:
            _guard_users -= 1
            if _guard_users == 0:
                Image.MAX_IMAGE_PIXELS = _guard_saved


@quick_frozen_init  # one per file, at every cache hit of a night's validation
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


def check_image_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, decode: bool = True) -> FileFacts:
    """Identify, size-check and (with `decode`) fully decode one image. Never lets Pillow allocate
    a bomb: the pixel limit is applied from the header, before any pixel buffer exists."""
    from PIL import Image

    sha = hashlib.sha256(data).hexdigest()
    fmt = sniff_format(data)
    if fmt is None:
        # An empty file (a copy that never finished, a placeholder) says so: "magic bytes" sent
        # people looking for a format problem in a file with no bytes at all.
        detail = "an empty file (0 bytes)" if not data else "not a recognisable image (unknown magic bytes)"
        return FileFacts(sha, None, error="undecodable_image", detail=detail)
    if fmt not in SUPPORTED_FORMATS:
        detail = f"{fmt.upper()} images are not supported (use png, jpeg, webp, bmp or tiff)"
        return FileFacts(sha, fmt, error="unsupported_format", detail=detail)
    # Opening reads only the header (no pixel buffer exists yet), so Pillow's own guard is lifted
    # for it and the explicit check below applies our limit before load() allocates anything.
    # Pillow's guard would raise before telling us the size, which the cache needs to reconsider
    # the verdict under a higher --max-pixels later.
    try:
        with _pillow_guard_lifted(), Image.open(io.BytesIO(data), formats=[PIL_FORMAT[fmt]]) as im:
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

    try:
        with _pillow_guard_lifted():
            formats = [PIL_FORMAT[fmt]] if fmt in PIL_FORMAT else None
            with Image.open(io.BytesIO(data), formats=formats) as im:
                im.load()
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for broken files
        return f"cannot decode: {exc}"
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
