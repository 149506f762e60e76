"""Which files of a target a publish may delete: only those hubpress can prove it wrote.

The repo's manifest.json lists what the last publish wrote, but anyone with write access can edit
it: a collaborator who adds `.gitattributes` or `notes/keep.md` to its `files` must not see them
deleted by the next publish. A file is deletable only when all of these hold:

- its name passes the name gate (`hubpress.storage.names.remote_path`): a `../x` or `/etc/x` in the
  manifest or in the repo's listing is refused, reported in one line, and never acted on;
- it is of hubpress's own naming (`data/<name>.parquet`, the shards every publish names);
- the repo holds it now with the sha256 the manifest recorded for it (an LFS file, or a local
  target's file, whose content is known without downloading it).

Anything else is left alone. Pure functions over the manifest's text and the target's listing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from hubpress.storage.names import UnsafeNameError, remote_path
from hubpress.targets.plan import RemoteFile

# Shards are the only files a publish stops writing (their names are their content): they are the
# only ones it deletes. README.md and manifest.json are rewritten, never deleted.
OWN_NAME = re.compile(r"^data/[A-Za-z0-9][A-Za-z0-9._-]*\.parquet$")


@dataclass(frozen=True, slots=True)
class Ownership:
    """What the previous publish provably wrote (path -> sha256), and one line per name refused."""

    deletable: frozenset[str]
    refused: tuple[str, ...] = ()


def _recorded(files: object) -> dict[object, object]:
    """The manifest's `files` as name -> recorded sha256 (a dict of facts, or of sha256 strings)."""
    if isinstance(files, Mapping):
        return {
            name: facts.get("sha256") if isinstance(facts, Mapping) else facts
            for name, facts in files.items()
        }
    if isinstance(files, list):
        return {f.get("path"): f.get("sha256") for f in files if isinstance(f, Mapping)}
    return {}


def owned_files(manifest_text: str | None, remote: Mapping[str, RemoteFile]) -> Ownership:
    """The paths of `remote` a publish may delete, proven by the manifest and the listing."""
    if not manifest_text:
        return Ownership(frozenset())
    try:
        data = json.loads(manifest_text)
    except ValueError:
        return Ownership(frozenset())
    recorded = _recorded(data.get("files") if isinstance(data, Mapping) else None)
    deletable: set[str] = set()
    refused: list[str] = []
    for name, sha256 in recorded.items():
        if not isinstance(name, str):
            continue
        try:
            path = remote_path(name, what="manifest.json file")
        except UnsafeNameError as exc:
            refused.append(f"{exc} It is ignored: hubpress deletes only files it wrote.")
            continue
        have = remote.get(path)
        if (
            OWN_NAME.match(path)
            and have is not None
            and isinstance(sha256, str)
            and have.sha256 is not None
            and have.sha256 == sha256
        ):
            deletable.add(path)
    return Ownership(frozenset(deletable), tuple(refused))
