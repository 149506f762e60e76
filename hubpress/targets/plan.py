"""What a publish will change, decided by pure functions over typed values.

`StagedFile` is a file hubpress wants at a path in the target; `RemoteFile` is what the target
holds now; `make_plan` compares them by sha256 (LFS) or git blob id (regular files) and returns a
`PublishPlan`. Only paths that hubpress wrote before (`owned`) may be deleted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class StagedFile:
    path: str  # path in the target repo, POSIX
    sha256: str
    size: int
    source: str  # local path or s3:// URI where the bytes are staged
    git_oid: str | None = None  # git blob sha1, for small regular files whose remote oid is a blob id


@dataclass(frozen=True, slots=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None  # LFS sha256, when the file is stored in LFS (or a local target's hash)
    git_oid: str | None = None  # git blob id of the file (regular) or of its LFS pointer


ChangeKind = Literal["added", "changed", "unchanged", "deleted"]


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str
    kind: ChangeKind
    size: int  # bytes to send (added/changed), or size of the file (unchanged/deleted)


@dataclass(slots=True)
class PublishPlan:
    target: str
    revision: str
    parent_commit: str | None  # head the plan was made against; None for a new repo or local target
    changes: list[FileChange] = field(default_factory=list)

    def of(self, kind: ChangeKind) -> list[FileChange]:
        return [c for c in self.changes if c.kind == kind]

    @property
    def is_noop(self) -> bool:
        return all(c.kind == "unchanged" for c in self.changes)

    @property
    def uploads(self) -> list[FileChange]:
        """What a commit of this plan sends: added and changed files."""
        return [c for c in self.changes if c.kind in ("added", "changed")]

    @property
    def deletions(self) -> list[FileChange]:
        return self.of("deleted")

    @property
    def upload_bytes(self) -> int:
        return sum(c.size for c in self.uploads)

    def summary(self) -> dict[str, object]:
        return {
            kind: [c.path for c in self.of(kind)] for kind in ("added", "changed", "unchanged", "deleted")
        }


def git_blob_oid(data: bytes) -> str:
    """The git blob id of some bytes: what the Hub reports as `oid` for a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _same(staged: StagedFile, remote: RemoteFile) -> bool:
    if remote.sha256 is not None:
        return remote.sha256 == staged.sha256
    return staged.git_oid is not None and remote.git_oid == staged.git_oid


def commit_mismatches(commit: str, sent: list[StagedFile], committed: dict[str, RemoteFile]) -> list[str]:
    """What differs between the files a commit sent and what the target holds at that commit
    (`committed`: path -> the target's facts), one line per file; empty when all arrived intact.
    Every target verifies its commits with this one rule."""
    mismatches: list[str] = []
    for f in sent:
        have = committed.get(f.path)
        if have is None:
            mismatches.append(f"{f.path}: missing at {commit[:12]}")
        elif have.sha256 is not None and have.sha256 != f.sha256:
            mismatches.append(f"{f.path}: sha256 {have.sha256} committed, {f.sha256} staged")
        elif have.sha256 is None and f.git_oid is not None and have.git_oid != f.git_oid:
            mismatches.append(f"{f.path}: git oid {have.git_oid} committed, {f.git_oid} staged")
        elif have.size != f.size:
            mismatches.append(f"{f.path}: {have.size} bytes committed, {f.size} staged")
    return mismatches


def make_plan(
    target: str,
    revision: str,
    parent_commit: str | None,
    staged: list[StagedFile],
    remote: dict[str, RemoteFile],
    owned: set[str] | frozenset[str] = frozenset(),
) -> PublishPlan:
    """Compare staged files with the target. `owned` lists paths hubpress provably wrote before
    (hubpress.targets.ownership): those absent from `staged` are deleted; anything else is left alone."""
    changes: list[FileChange] = []
    wanted = {f.path for f in staged}
    for f in sorted(staged, key=lambda f: f.path):
        have = remote.get(f.path)
        if have is None:
            changes.append(FileChange(f.path, "added", f.size))
        elif _same(f, have):
            changes.append(FileChange(f.path, "unchanged", f.size))
        else:
            changes.append(FileChange(f.path, "changed", f.size))
    for path in sorted(owned - wanted):
        if path in remote:
            changes.append(FileChange(path, "deleted", remote[path].size))
    return PublishPlan(target=target, revision=revision, parent_commit=parent_commit, changes=changes)
