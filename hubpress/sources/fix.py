"""--fix-source: the only code that changes a source, and only when asked.

Renames files whose bytes disagree with their extension, and rewrites train.csv / test.csv
(atomically, after a backup) to name the files as they now are.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from hubpress.settings import Settings, get_settings
from hubpress.sources.csv_layout import csv_rows, is_path_column
from hubpress.sources.discovery import CSV_NAMES, normalise_csv_path
from hubpress.sources.models import IntakeReport
from hubpress.storage.files import Storage, is_s3, open_storage


@dataclass(frozen=True, slots=True)
class SourceFix:
    action: Literal["renamed", "rewrote", "backed_up", "skipped"]
    path: str
    to: str | None = None
    detail: str = ""


def fix_source(report: IntakeReport, *, settings: Settings | None = None) -> list[SourceFix]:
    """Make the source agree with the report's corrections: rename files whose bytes disagree with
    their extension, and rewrite train.csv / test.csv (atomically, after a backup) to name the
    files as they now are. Only called when the user asks (--fix-source)."""
    storage = open_storage(report.source, get_settings(settings))
    fixes: list[SourceFix] = []
    moved: dict[str, str] = {}
    for c in report.corrections:
        if c.kind != "extension_mismatch" or c.from_ in moved:
            continue
        if storage.exists(c.to):
            fixes.append(SourceFix("skipped", c.from_, c.to, f"{c.to} already exists; rename it by hand"))
            continue
        _rename(storage, c.from_, c.to)
        moved[c.from_] = c.to
        fixes.append(SourceFix("renamed", c.from_, c.to, "extension now matches the bytes"))
    if report.layout == "csv":
        repoint = {c.from_: c.to for c in report.corrections if c.kind == "file_resolved"}
        repoint = {k: moved.get(v, v) for k, v in repoint.items()} | moved
        encoding = str(report.options.get("prompt_encoding", "utf-8"))
        for name in CSV_NAMES.values():
            if repoint and storage.exists(name):
                fixes.extend(_rewrite_csv(storage, name, repoint, encoding))
    return fixes


def _rename(storage: Storage, old: str, new: str) -> None:
    if is_s3(storage.root):
        storage.write_bytes(new, storage.read_bytes(old))
        storage.delete(old)
    else:
        os.rename(storage.uri(old), storage.uri(new))


def _rewrite_csv(storage: Storage, name: str, repoint: Mapping[str, str], encoding: str) -> list[SourceFix]:
    raw = storage.read_bytes(name)
    bom = raw.startswith(codecs.BOM_UTF8)
    text = raw.decode("utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding)
    newline = "\r\n" if "\r\n" in text else "\n"
    rows = list(csv_rows(text))
    changed = 0
    # Only path columns are rewritten: a prompt or id that happens to equal a renamed path stays.
    paths = {i for i, name in enumerate(rows[0] if rows else []) if is_path_column(name)}
    for row in rows[1:]:
        for i, cell in enumerate(row):
            if i not in paths:
                continue
            rel, _ = normalise_csv_path(cell) if cell.strip() else (None, None)
            if rel is not None and rel in repoint:
                row[i] = repoint[rel]
                changed += 1
    if not changed:
        return []
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows(rows)
    backup = f"{name}.{time.strftime('%Y%m%d-%H%M%S')}.bak"
    storage.write_bytes(backup, raw)
    data = out.getvalue().encode(encoding)
    storage.write_bytes(name, (codecs.BOM_UTF8 if bom else b"") + data)  # atomic: temp file + rename
    return [
        SourceFix("backed_up", name, backup, "the original, byte for byte"),
        SourceFix("rewrote", name, None, f"{changed} path(s) now name the files as they are"),
    ]
