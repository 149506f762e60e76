"""What a refresh learnt about the rows of one upstream parquet file, kept by the file's content.

A large upstream dataset is many parquet files, and a new upstream commit that edits a few rows
rewrites only the files that hold them: the others keep their bytes (`datasets`' push_to_hub
writes the same file for the same rows), and huggingface_hub's cache keeps each downloaded file
under its etag, the sha256 of its bytes. So what the first read of a file found (each surviving
row's outcome: its content digest and size, or why it was left out) holds for any later revision
that has the same file at the same place in the dataset, under the same configuration.

A refresh that can reuse shards (hubpress.refresh.shards) then plans those rows from their facts
without reading their media again: only the changed files are read. A rebuilt shard's rows are
read for real and checked against their key, so facts that were wrong could not publish wrong
bytes; they would fail that shard. The facts live beside the metadata cache
(`{cache_dir}/huggingface_metadata/{id}/`), one JSON file per upstream file, configuration and
position; without them every row is read, as before.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROW_FACTS = "__hubpress_row_facts__"  # on a row: (content digest, size) already computed
FROM_FACTS = "__hubpress_from_facts__"  # on a row planned from its facts: its media was not read
FORMAT = 1
_ETAG = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

# A survivor's outcome: [source_index, digest, size, empty_prompt] when kept,
# [source_index, None, reasons] when left out while its media was read.
Entry = list[Any]


def file_identity(path: str) -> str | None:
    """The content id of a downloaded upstream file: the name of the blob huggingface_hub's cache
    keeps it under (its etag), or None for a file that is not such a copy."""
    real = os.path.realpath(path)
    name = os.path.basename(real)
    if os.path.basename(os.path.dirname(real)) == "blobs" and _ETAG.fullmatch(name):
        return name
    return None


@dataclass(frozen=True)
class RowFacts:
    """Where the facts are kept and how a kept row's facts are taken (`of`: the row's content
    digest and size, hubpress.refresh.shards). `reuse`: plan from facts already kept (a refresh
    that may reuse shards); facts are recorded either way."""

    folder: Path
    config_fingerprint: str
    of: Callable[[dict[str, Any]], tuple[str, int]]
    reuse: bool = True

    def _path(self, identity: str, base: int) -> Path:
        return self.folder / f"rows-{identity[:40]}-{base}-{self.config_fingerprint[:16]}.json"

    def load(self, identity: str, base: int, survivors: list[int]) -> list[Entry] | None:
        """The facts of this file's survivors, or None (none kept, unreadable, or for other rows)."""
        try:
            data = json.loads(self._path(identity, base).read_text())
            entries = data["rows"]
            if data.get("format") != FORMAT or [int(e[0]) for e in entries] != survivors:
                return None
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None
        return entries

    def save(self, identity: str, base: int, entries: list[Entry]) -> None:
        path = self._path(identity, base)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "rows": entries}))
        os.replace(tmp, path)  # complete or absent


class RecordingReport:
    """A refresh report that also notes, per source row, why it was left out (for the facts)."""

    def __init__(self, report: Any):
        self.report = report
        self.backend_id = report.backend_id
        self.dropped: dict[int, list[str]] = {}

    def keep(self, empty_prompt: bool = False) -> None:
        self.report.keep(empty_prompt=empty_prompt)

    def drop(self, source_index: int, reasons: list[str]) -> None:
        self.dropped[source_index] = list(reasons)
        self.report.drop(source_index, reasons)


def replay(entries: list[Entry], report: Any) -> list[dict[str, Any]]:
    """The report's counts for a file planned from its facts, and the rows to plan: each kept row
    as its source index and facts, without its media."""
    rows = []
    for entry in entries:
        if entry[1] is None:
            report.drop(int(entry[0]), list(entry[2]))
        else:
            report.keep(empty_prompt=bool(entry[3]))
            facts = (str(entry[1]), int(entry[2]))
            rows.append({"source_index": int(entry[0]), ROW_FACTS: facts, FROM_FACTS: True})
    return rows
