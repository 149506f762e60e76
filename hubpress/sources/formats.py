"""Image formats: which extensions hubpress accepts, and what a file really is, read from its bytes.

A file's name is only a hint. The true format comes from the magic numbers at the start of the
bytes, identified by Pillow's own plugin `accept` functions (the check `Image.open` makes before
choosing a decoder), so hubpress and Pillow never disagree about what a file is.
"""

from __future__ import annotations

from functools import cache

# Extensions the qflux guide accepts, lower-case, mapped to the format their bytes should have.
EXTENSION_FORMATS: dict[str, str] = {
    "png": "png",
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "webp": "webp",
    "bmp": "bmp",
    "tiff": "tiff",
    "tif": "tiff",
}
IMAGE_EXTENSIONS = frozenset(EXTENSION_FORMATS)
SUPPORTED_FORMATS = frozenset(EXTENSION_FORMATS.values())

# The extension a file of a given true format is named with when hubpress renames or publishes it.
CANONICAL_EXTENSION: dict[str, str] = {
    "png": "png",
    "jpeg": "jpg",
    "webp": "webp",
    "bmp": "bmp",
    "tiff": "tiff",
}

# Pillow's name for each supported format (what `Image.open(..., formats=[...])` expects).
PIL_FORMAT: dict[str, str] = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "bmp": "BMP", "tiff": "TIFF"}

# Pillow's default decompression-bomb limit; `--max-pixels` overrides it per run.
DEFAULT_MAX_PIXELS = 89_478_485

# How many leading bytes identification needs (Image.open reads the same 16).
SNIFF_BYTES = 16

# Formats tried first, so the common ones win when two plugins would both accept a prefix.
_PREFERRED = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")


def split_extension(name: str) -> tuple[str, str | None]:
    """("a.b", "png") for "a.b.PNG"; (name, None) when the name has no image extension."""
    stem, dot, ext = name.rpartition(".")
    if dot and stem and ext.lower() in IMAGE_EXTENSIONS:
        return stem, ext.lower()
    return name, None


def format_of_extension(ext: str | None) -> str | None:
    return EXTENSION_FORMATS.get(ext.lower()) if ext else None


def extension_agrees(ext: str | None, true_format: str | None) -> bool:
    """True when a name's extension already says what the bytes are (jpg and jpeg both say jpeg)."""
    return true_format is None or format_of_extension(ext) == true_format


@cache
def _acceptors() -> tuple[tuple[str, object], ...]:
    from PIL import Image

    Image.init()
    order = [f for f in _PREFERRED if f in Image.OPEN] + [f for f in Image.ID if f not in _PREFERRED]
    return tuple(
        (fmt, Image.OPEN[fmt][1]) for fmt in order if Image.OPEN.get(fmt, (None, None))[1] is not None
    )


def sniff_format(prefix: bytes) -> str | None:
    """The true format of a file from its first bytes, lower-case (png, jpeg, gif, ...), or None.

    Formats outside SUPPORTED_FORMATS are still named (gif, ico, ...), so a report can say
    "this is a GIF" rather than "this is broken".
    """
    head = prefix[:SNIFF_BYTES]
    if not head:
        return None
    for fmt, accept in _acceptors():
        try:
            verdict = accept(head)  # type: ignore[operator]
        except Exception:  # an acceptor that cannot judge a short prefix simply does not accept it
            continue
        # Some acceptors return a message string when they recognise a format they cannot open.
        if verdict and not isinstance(verdict, str):
            return "jpeg" if fmt == "MPO" else fmt.lower()
    return None


def canonical_name(name: str, true_format: str) -> str:
    """The file name with the extension its bytes call for: "a.png" holding JPEG -> "a.jpg"."""
    stem, ext = split_extension(name)
    base = stem if ext is not None else name
    return f"{base}.{CANONICAL_EXTENSION.get(true_format, true_format)}"
