"""The dataset card's picture: a small grid of the first few samples, main control beside target.

Chosen by a stable rule (the first PREVIEW_SAMPLES samples by id of the card's first split) and
encoded deterministically (fixed cell size, background, encoder settings; no timestamps), so the
same samples give the same bytes: an unchanged publish finds `preview.webp` unchanged on the
target and sends nothing. An image Pillow cannot convert becomes an empty cell, and the reason is
logged.

The pictures come from the shards this run sealed in staging when they hold the preview's samples
(`shard_cells`): a source byte is read once, by intake, and a new first sample is not fetched
again. Only when the target alone holds those shards (the first samples did not change) are the
source files read (`source_cells`); a file that changed since validation then fails the publish,
as it does in the build."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import BinaryIO

from hubpress.shards.card import split_order
from hubpress.sources.models import FileRef, IntakeReport, Sample

# One row of the grid: the main control's and the target's bytes (None: an empty cell).
Cells = list[tuple[bytes | None, bytes | None]]

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


def source_cells(samples: list[Sample], read: Callable[[FileRef], bytes]) -> Cells:
    """The samples' pictures from their source files; `read` is hubpress.sources.reader.SourceReader."""
    refs = [(sample.controls[0] if sample.controls else None, sample.target) for sample in samples]
    return [(read(c) if c is not None else None, read(t) if t is not None else None) for c, t in refs]


def shard_cells(shards: list[Callable[[], BinaryIO]], count: int) -> Cells:
    """The first `count` rows' pictures (the first control, the target), read from shard files in
    id order (callables that open them), as the shards store them."""
    import pyarrow.parquet as pq

    cells: Cells = []
    for open_shard in shards:
        with open_shard() as fh:
            table = pq.ParquetFile(fh).read(columns=["control_images", "target_image"])
        for row in table.slice(0, count - len(cells)).to_pylist():
            controls = row.get("control_images") or []
            first = controls[0].get("bytes") if controls and controls[0] else None
            target = (row.get("target_image") or {}).get("bytes")
            cells.append((first, target))
        if len(cells) >= count:
            break
    return cells


def preview_image(cells: Cells) -> bytes | None:
    """The grid (one row per sample: main control, target) as WebP bytes, or None for no rows."""
    if not cells:
        return None
    from PIL import Image

    width = 2 * CELL + 3 * GAP
    height = len(cells) * (CELL + GAP) + GAP
    grid = Image.new("RGB", (width, height), BACKGROUND)
    thumbs = iter(_thumbnails([data for pair in cells for data in pair]))
    for row, pair in enumerate(cells):
        top = GAP + row * (CELL + GAP)
        for col in range(len(pair)):
            left = GAP + col * (CELL + GAP)
            thumb = next(thumbs)
            if thumb is None:
                grid.paste(EMPTY, (left, top, left + CELL, top + CELL))
                continue
            grid.paste(thumb, (left + (CELL - thumb.width) // 2, top + (CELL - thumb.height) // 2))
    out = io.BytesIO()
    grid.save(out, **WEBP)
    return out.getvalue()


# Thumbnails drawn at once. Pillow decodes and scales without the GIL, and the preview is drawn
# after every shard is built, with nothing else to run beside it: one at a time, the eight
# decodes of 1024 px PNGs left one core of two idle. Two at once hold two decoded images.
THUMBNAILS_AT_ONCE = 2


def _thumbnails(images: list[bytes | None]) -> list:
    """The thumbnail of each image, in order (None for no image, or one Pillow cannot convert)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(data: bytes | None):
        return _thumbnail(data) if data is not None else None

    with ThreadPoolExecutor(max_workers=THUMBNAILS_AT_ONCE) as pool:
        return list(pool.map(one, images))


def _thumbnail(data: bytes):
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (CELL, CELL))  # JPEG: decode at a reduced scale, deterministically
            rgb = img.convert("RGBA").convert("RGB") if img.mode in ("P", "LA", "PA") else img.convert("RGB")
            # Scaled to fit the cell, up or down: small training images still show.
            return ImageOps.contain(rgb, (CELL, CELL), Image.Resampling.LANCZOS)
    except Exception as exc:  # noqa: BLE001 - a picture for the card; the data was validated already
        log.warning("an image was left out of the card's preview (%s).", exc)
        return None
