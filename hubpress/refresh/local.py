"""Read a local folder of images for a refresh (the document's mixing example)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hubpress.errors import SourceError
from hubpress.refresh.config import LocalBackend
from hubpress.refresh.rows import (
    RefreshReport,
    image_size_from_bytes,
)
from hubpress.refresh.upstream import BackendRead
from hubpress.storage.names import is_inside

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


def local_folder(cfg: LocalBackend) -> Path:
    """The folder a `local` backend names. A relative `instance_data_dir` is read from the working
    directory of the process that runs the refresh, as SimpleTuner reads it (not from the
    configuration file's folder): the shell's for `hubpress refresh`, the serve process's or the
    worker's (prefect.yaml's pull directory) for a deployment run. The same check for the CLI's
    preflight and for the flow, so both say the same line, naming the folder it looked for."""
    root = Path(cfg.instance_data_dir).expanduser()
    if root.is_dir():
        return root
    where = (
        ""
        if root.is_absolute()
        else f" (read as {root.absolute()}: a relative path is read from the working directory)"
    )
    raise SourceError(
        f"backend {cfg.id!r}: instance_data_dir {cfg.instance_data_dir!r} is not a directory{where}: fix the "
        "path in the configuration."
    )


def _leads_out(path: Path, real_root: str) -> bool:
    """A link that leads outside the backend's folder (a caption linked to a credentials file, an
    image of another folder): not read, as publish-dataset reads nothing outside its source."""
    return not is_inside(os.path.realpath(path), real_root)


def _caption_file_leads_out(image: Path, cfg: LocalBackend, real_root: str) -> bool:
    """The caption file beside `image` would be read and leads outside the folder: the sample is
    left out, not captioned from its file name instead (a silent change of its caption)."""
    if cfg.caption_source not in ("textfile_or_filename", "textfile"):
        return False
    text_file = image.with_suffix(".txt")
    return text_file.is_file() and _leads_out(text_file, real_root)


def _local_caption(image: Path, cfg: LocalBackend) -> str | None:
    if cfg.caption_source in ("textfile_or_filename", "textfile"):
        text_file = image.with_suffix(".txt")
        if text_file.is_file():
            text = text_file.read_text(encoding="utf-8", errors="replace").strip()
            if text:
                return text
        if cfg.caption_source == "textfile":
            return None
    # SimpleTuner's filename strategy: the file name without extension, underscores as spaces
    return image.stem.replace("_", " ").strip() or None


def read_local(cfg: LocalBackend) -> BackendRead:
    """A folder of images in sorted path order; source_index is the position in that order."""
    root = local_folder(cfg)
    real_root = os.path.realpath(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    report = RefreshReport(cfg.id)
    read = BackendRead(cfg, None, None, report)

    def rows(report: RefreshReport, only: set[int] | None = None) -> Iterator[dict[str, Any]]:
        minimums = cfg.size_minimums()
        for index, path in enumerate(files):
            if only is not None and index not in only:
                continue
            if _leads_out(path, real_root) or _caption_file_leads_out(path, cfg, real_root):
                report.drop(index, ["outside_source"])
                continue
            caption = _local_caption(path, cfg)
            data = path.read_bytes()
            size = image_size_from_bytes(data)
            reasons = [] if caption else ["no_caption"]
            if size is None:
                reasons.append("unreadable_image")
            else:
                width, height = size
                reasons += [m.name for m in minimums if not m.passes(width, height)]
                aspect = width / height
                if cfg.minimum_aspect_ratio and aspect < cfg.minimum_aspect_ratio:
                    reasons.append("minimum_aspect_ratio")
                if cfg.maximum_aspect_ratio and aspect > cfg.maximum_aspect_ratio:
                    reasons.append("maximum_aspect_ratio")
            if reasons:
                report.drop(index, reasons)
                continue
            report.keep()
            yield {
                "image": {"bytes": data, "path": path.relative_to(root).as_posix()},
                "captions": [caption],
                "width": size[0],
                "height": size[1],
                "source_index": index,
            }

    read._rows = rows(report)
    # Read again for a rebuild: only those files, counted in a scratch report.
    read._reread = lambda indices: rows(RefreshReport(cfg.id), set(indices))
    return read
