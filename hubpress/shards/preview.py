"""The dataset card's picture: a small grid of the first few samples, main control beside target.

Chosen by a stable rule (the first PREVIEW_SAMPLES samples by id of the card's first split) and
encoded deterministically (fixed cell size, background, encoder settings; no timestamps), so the
same samples give the same bytes: an unchanged publish finds `preview.webp` unchanged on the
target and sends nothing. An image Pillow cannot convert becomes an empty cell, and the reason is
logged; a source file that changed since validation fails the publish, as it does in the build."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

from hubpress.shards.card import split_order
from hubpress.sources.models import FileRef, IntakeReport, Sample

log = logging.getLogger("hubpress.preview")

PREVIEW_FILE = "preview.webp"
PREVIEW_SAMPLES = 4
CELL = 128  # pixels: each image is scaled (up or down) to fit a CELL x CELL square
GAP = 4
BACKGROUND = (245, 245, 245)
EMPTY = (210, 210, 210)  # a sample without a target (test splits often have none)
WEBP = {"format": "WEBP", "quality": 80, "method": 6, "exact": False}


def preview_samples(report: IntakeReport, count: int = PREVIEW_SAMPLES) -> list[Sample]:
    """The first `count` samples (by id, as intake orders them) of the card's first split."""
    for name in split_order(report.splits):
        samples = report.splits[name].samples
        if samples:
            return list(samples[:count])
    return []


def preview_image(samples: list[Sample], read: Callable[[FileRef], bytes]) -> bytes | None:
    """The grid for `samples` (one row each: main control, target) as WebP bytes, or None for no
    samples. `read` returns a file's bytes (hubpress.sources.reader.SourceReader)."""
    if not samples:
        return None
    from PIL import Image

    width = 2 * CELL + 3 * GAP
    height = len(samples) * (CELL + GAP) + GAP
    grid = Image.new("RGB", (width, height), BACKGROUND)
    for row, sample in enumerate(samples):
        top = GAP + row * (CELL + GAP)
        refs = [sample.controls[0] if sample.controls else None, sample.target]
        for col, ref in enumerate(refs):
            left = GAP + col * (CELL + GAP)
            thumb = _thumbnail(ref, read) if ref is not None else None
            if thumb is None:
                grid.paste(EMPTY, (left, top, left + CELL, top + CELL))
                continue
            grid.paste(thumb, (left + (CELL - thumb.width) // 2, top + (CELL - thumb.height) // 2))
    out = io.BytesIO()
    grid.save(out, **WEBP)
    return out.getvalue()


def _thumbnail(ref: FileRef, read: Callable[[FileRef], bytes]):
    from PIL import Image, ImageOps

    data = read(ref)  # a source file that changed since validation is an error, as in the build
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (CELL, CELL))  # JPEG: decode at a reduced scale, deterministically
            rgb = img.convert("RGBA").convert("RGB") if img.mode in ("P", "LA", "PA") else img.convert("RGB")
            # Scaled to fit the cell, up or down: small training images still show.
            return ImageOps.contain(rgb, (CELL, CELL), Image.Resampling.LANCZOS)
    except Exception as exc:  # noqa: BLE001 - a picture for the card; the data was validated already
        log.warning("%s: left out of the card's preview (%s).", ref.relpath, exc)
        return None
