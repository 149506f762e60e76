"""What the many-nights state machines share (tests/e2e/test_many_nights.py publishes a source night
after night, tests/e2e/test_refresh_nights.py refreshes from a changing upstream): their settings
(a few derandomized examples in CI; HUBPRESS_NIGHTS_* hunt longer), images of their own, and the
target's head read back, from the test Hub or a local directory."""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from PIL import Image

from tests.conftest import XET

EXAMPLES = int(os.environ.get("HUBPRESS_NIGHTS_EXAMPLES", "2"))
# The LFS lane runs the machines too (make test), shorter: its transfer path is what it adds.
STEPS = int(os.environ.get("HUBPRESS_NIGHTS_STEPS", "8" if XET else "3"))
RANDOM = os.environ.get("HUBPRESS_NIGHTS_RANDOM", "") not in ("", "0")
SHRINK = os.environ.get("HUBPRESS_NIGHTS_SHRINK", "1") != "0"  # a night costs a second or two

NIGHTS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
    phases=list(Phase) if SHRINK else [Phase.explicit, Phase.reuse, Phase.generate],
)


def png(seed: int, size: int = 16) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Head:
    """The target's head as read back: its commit (a local target: its version), its files' blob
    ids (a local target: their sha256), its shards' bytes, its manifest and its card."""

    commit: str
    files: dict[str, str]
    shards: dict[str, bytes]  # data/... -> the file's bytes
    manifest: dict
    card: str
    preview: bytes | None

    def shard_digests(self) -> dict[str, str]:
        return {path: sha(data) for path, data in self.shards.items()}

    def shards_of(self, split: str) -> list[str]:
        return sorted(p for p in self.shards if p.startswith(f"data/{split}-"))


class HubTarget:
    """A dataset repo on the test Hub, reached through the proxy (faults on the nights that draw them)."""

    def __init__(self, hub, proxy):
        self.hub, self.proxy = hub, proxy
        self.name = f"alice/nights-{uuid.uuid4().hex[:8]}"

    def read_head(self) -> Head | None:
        if self.hub.head("dataset", self.name) is None:
            return None
        newest = self.hub.commit_history("dataset", self.name)[0]
        if "manifest.json" not in newest["files"]:
            return None  # created, never published (a first night refused before its commit)
        read = lambda path: self.hub.read_file("dataset", self.name, path, newest["id"])  # noqa: E731
        shards = {p: read(p) for p in newest["files"] if p.startswith("data/")}
        return Head(
            newest["id"],
            newest["files"],
            shards,
            json.loads(read("manifest.json")),
            read("README.md").decode(),
            read("preview.webp") if "preview.webp" in newest["files"] else None,
        )


class LocalTarget:
    """A local directory target: the current version behind a link, the versions beside it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.name = folder

    def read_head(self) -> Head | None:
        if not self.folder.exists():
            return None
        files = {
            p.relative_to(self.folder).as_posix(): p for p in sorted(self.folder.rglob("*")) if p.is_file()
        }
        shards = {p: f.read_bytes() for p, f in files.items() if p.startswith("data/")}
        return Head(
            Path(os.path.realpath(self.folder)).name,
            {p: sha(f.read_bytes()) for p, f in files.items()},
            shards,
            json.loads(files["manifest.json"].read_text(encoding="utf-8")),
            files["README.md"].read_text(encoding="utf-8"),
            files["preview.webp"].read_bytes() if "preview.webp" in files else None,
        )

    def versions(self) -> list[str]:
        home = self.folder.parent / f".{self.folder.name}.hubpress" / "versions"
        return sorted(p.name for p in home.iterdir()) if home.exists() else []


def diff(got: dict, want: dict) -> str:
    lines = [f"missing {k}: {want[k]}" for k in sorted(set(want) - set(got))]
    lines += [f"stale {k}: {got[k]}" for k in sorted(set(got) - set(want))]
    lines += [
        f"differs {k}: {got[k]} != {want[k]}" for k in sorted(set(got) & set(want)) if got[k] != want[k]
    ]
    return "\n".join(lines[:20])


def files_received(stats) -> int:
    """The files a client sent, as the Hub's own log says: on the Xet lane the file records of the
    CAS's new shards (whole or deduplicated), on the LFS lane the LFS uploads (an object the Hub
    holds already is not asked for)."""
    return stats.xet_files if XET else stats.requests["lfs_upload"]


def no_file_content_received(stats, at_most: int) -> bool:
    """Nothing but small files' records crossed: on the Xet lane the CAS grew by under `at_most`
    bytes, on the LFS lane no LFS upload was made (small files travel inline in the commit)."""
    return stats.xet_bytes < at_most if XET else stats.requests["lfs_upload"] == 0
