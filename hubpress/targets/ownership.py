"""Which files of a target a publish may delete: only those hubpress can prove it wrote.

The repo's manifest.json lists what the last publish wrote, but anyone with write access can edit
it: a collaborator who adds `.gitattributes` or `notes/keep.md` to its `files` must not see them
deleted by the next publish. A file is deletable only when all of these hold:

- its name passes the name gate (`hubpress.storage.names.remote_path`): a `../x` or `/etc/x` in the
  manifest or in the repo's listing is refused, reported in one line, and never acted on;
- it is of hubpress's own naming, `data/<split>-<16 hex>.parquet` (or
  `data/<split>/<bucket>/<split>-<16 hex>.parquet` for a split too large for one folder): the
  shards every publish names by their key. A user's own `data/train-00000-of-00001.parquet` (the
  name `datasets` gives) or `data/mine.parquet` is never hubpress's, whatever a manifest says;
- when the manifest records the shard's key, the name is that key's (its first 16 hex digits);
- the repo holds it now with the sha256 (and, when recorded, the size) the manifest recorded for
  it (an LFS file, or a local target's file, whose content is known without downloading it).

A hostile manifest can still claim a file of exactly hubpress's naming, which only hubpress or
someone imitating it writes: the name is the proof a listing and a manifest can give without
downloading the file.

Anything else is left alone. Pure functions over the manifest's text and the target's listing.

A manifest hubpress cannot use (over the document size limit, not UTF-8, nested past the parser's
depth, JSON of another shape) proves nothing: nothing is deleted or reused on its word, one
warning line says so, and the publish goes on and writes a manifest of its own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hubpress.parsers import ParseLimitError, load_json
from hubpress.storage.names import UnsafeNameError, remote_path
from hubpress.targets.plan import RemoteFile

# Shards are the only files a publish stops writing (their names are their content): they are the
# only ones it deletes. README.md and manifest.json are rewritten, never deleted.
# A split with more shards than data/ may hold puts them in data/<split>/<bucket>/ (shards.in_folders).
OWN_NAME = re.compile(
    r"^data/(?:[A-Za-z0-9][A-Za-z0-9._-]*/[0-9a-f]{1,2}/)?[A-Za-z0-9][A-Za-z0-9._-]*-(?P<key>[0-9a-f]{16})\.parquet$"
)

log = logging.getLogger("hubpress.publish")
IGNORED = "It is ignored: nothing is deleted or reused on its word."


def usable_manifest(read: Callable[[], str | None]) -> str | None:
    """The text `read` returns of a target's manifest.json, or None when hubpress cannot read it
    back (over the size limit, not UTF-8: hubpress.targets.blob_texts), said in one warning line."""
    try:
        return read()
    except ParseLimitError as exc:
        log.warning("%s %s", exc, IGNORED)
        return None


def parse_manifest(manifest_text: str | None) -> dict | None:
    """The manifest as a JSON object within the parser limits (hubpress.parsers), or None; a
    manifest that is not one is said in one warning line."""
    if not manifest_text:
        return None
    try:
        manifest = load_json(manifest_text, "the target's manifest.json")
    except ParseLimitError as exc:
        log.warning("%s %s", exc, IGNORED)
        return None
    if not isinstance(manifest, dict):
        log.warning("the target's manifest.json is JSON but not an object. %s", IGNORED)
        return None
    return manifest


@dataclass(frozen=True, slots=True)
class Ownership:
    """What the previous publish provably wrote (path -> sha256), and one line per name refused."""

    deletable: frozenset[str]
    refused: tuple[str, ...] = ()


def names_its_key(path: str, key: str, split: str) -> bool:
    """`path` is the name hubpress gives the shard `key` of `split` (in data/ or a bucket of it),
    and passes the name gate."""
    try:
        remote_path(path, what="manifest.json file")
    except UnsafeNameError:
        return False
    own = OWN_NAME.match(path)
    return own is not None and own["key"] == key[:16] and path.endswith(f"/{split}-{key[:16]}.parquet")


def _recorded(files: object) -> dict[object, Mapping[str, object]]:
    """The manifest's `files` as name -> recorded facts (a dict of facts, or of sha256 strings)."""
    if isinstance(files, Mapping):
        return {
            name: facts if isinstance(facts, Mapping) else {"sha256": facts} for name, facts in files.items()
        }
    if isinstance(files, list):
        return {f.get("path"): f for f in files if isinstance(f, Mapping)}
    return {}


def _proven(path: str, facts: Mapping[str, object], have: RemoteFile | None) -> bool:
    """`path` is of hubpress's naming, and the listing holds it with the recorded content."""
    own = OWN_NAME.match(path)
    sha256, size, key = facts.get("sha256"), facts.get("size"), facts.get("key")
    return (
        own is not None
        and have is not None
        and isinstance(sha256, str)
        and have.sha256 is not None
        and have.sha256 == sha256
        and (size is None or size == have.size)
        and (key is None or (isinstance(key, str) and key[:16] == own["key"]))
    )


def owned_files(manifest_text: str | None, remote: Mapping[str, RemoteFile]) -> Ownership:
    """The paths of `remote` a publish may delete, proven by the manifest and the listing."""
    data = parse_manifest(manifest_text)
    recorded = _recorded(data.get("files") if data is not None else None)
    deletable: set[str] = set()
    refused: list[str] = []
    for name, facts in recorded.items():
        if not isinstance(name, str):
            continue
        try:
            path = remote_path(name, what="manifest.json file")
        except UnsafeNameError as exc:
            refused.append(f"{exc} It is ignored: hubpress deletes only files it wrote.")
            continue
        if _proven(path, facts, remote.get(path)):
            deletable.add(path)
    return Ownership(frozenset(deletable), tuple(refused))
