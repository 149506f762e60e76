"""The card preview of the last few publishes, kept by what it is made of.

The preview is a function of its samples' image bytes (named by their sha256) and of how it is
drawn (hubpress.shards.preview's cell size, colours, WebP settings and Pillow's version). A
night whose first samples did not change (one changed image in the middle of a dataset) made
the same bytes again by reading eight source files, decoding them and encoding a WebP: about
0.1 s of a night's work. It is kept here under a key of those inputs, in Settings.cache_dir,
and a preview whose samples lack a content digest is always drawn.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from hubpress.shards import preview
from hubpress.sources.models import Sample
from hubpress.storage.files import LocalStorage

log = logging.getLogger("hubpress.preview")

KEEP = 16  # previews kept: one per dataset published from this machine, a few datasets at once


def preview_key(samples: list[Sample]) -> str | None:
    """The key of the preview of `samples` (its first control and target of each), or None when
    an image lacks its sha256 (the bytes then cannot be named)."""
    from PIL import __version__ as pillow

    images = []
    for sample in samples:
        pair = [sample.controls[0] if sample.controls else None, sample.target]
        if any(ref is not None and not ref.sha256 for ref in pair):
            return None
        images.append([ref.sha256 if ref is not None else None for ref in pair])
    drawn = [preview.CELL, preview.GAP, preview.BACKGROUND, preview.EMPTY, preview.WEBP, pillow]
    text = json.dumps({"images": images, "drawn": drawn}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def cached_preview(
    samples: list[Sample], draw: Callable[[], bytes | None], cache_dir: str | Path
) -> bytes | None:
    """The preview of `samples`: kept bytes when this machine drew the same one, else `draw()`
    (kept for the next night)."""
    key = preview_key(samples) if samples else None
    if key is None:
        return draw()
    folder = Path(cache_dir) / "previews"
    path = folder / f"{key}.webp"
    try:
        data = path.read_bytes()
        os.utime(path)  # in use: the last to be dropped
        return data
    except OSError:
        pass
    data = draw()
    if data is not None:
        try:
            _keep(folder, path, data)
        except OSError as exc:  # a cache: the publish goes on without it
            log.debug("could not keep the preview in %s: %s", folder, exc)
    return data


def _keep(folder: Path, path: Path, data: bytes) -> None:
    """Written aside, fsync'd and renamed (a reader sees a whole preview or none: a preview is
    published as it is read), then all but the KEEP newest dropped."""
    LocalStorage(folder).write_bytes(path.name, data)
    kept = sorted(folder.glob("*.webp"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in kept[KEEP:]:
        old.unlink(missing_ok=True)
