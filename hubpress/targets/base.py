"""Where a publish goes: a Hub repo (`org/name`) or a local directory that holds exactly what the
repo would. Both answer the same questions (what is there now, commit these changes, verify),
so the publishing pipeline does not care which one it talks to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from hubpress.errors import ConfigError
from hubpress.storage.names import file_uri_path
from hubpress.targets.plan import PublishPlan, RemoteFile, StagedFile

RepoType = Literal["dataset", "model"]

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def is_local_target(target: str) -> bool:
    return target.startswith(("/", "./", "../", "file://", "~/")) or target in {".", ".."}


def local_path(target: str) -> Path:
    if target.startswith("file://"):
        return Path(file_uri_path(target))
    return Path(target).expanduser()


def check_repo_id(repo_id: str) -> str:
    if not _REPO_ID.match(repo_id) or ".." in repo_id or repo_id.endswith((".git", ".")):
        raise ConfigError(
            f"{repo_id!r} is neither a Hub repo id (org/name: letters, digits, '-', '_', '.') nor a local "
            "directory (a path starting with /, ./, ../ or file://)."
        )
    return repo_id


@dataclass(slots=True)
class RemoteState:
    exists: bool
    head: str | None  # commit the state was read at; None when the repo or revision does not exist yet
    files: dict[str, RemoteFile] = field(default_factory=dict)
    revision_exists: bool = True
    # Names the listing held that the name gate refused (left out of `files`), one line each.
    refused: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CommitResult:
    commit: str
    url: str
    pr_url: str | None = None
    # Files of the commit whose content the target already held (LFS objects the Hub answered as
    # present): named in the commit, not sent. uploaded_bytes leaves them out.
    already_present: tuple[str, ...] = ()
    # How the content travelled: "xet" or "lfs" to the Hub, None for a local directory. On Xet,
    # sent_bytes is what crossed the wire after deduplication (hf_xet's report, plus the files
    # carried inside the commit) and deduped_bytes the file bytes the CAS already held.
    transfer: str | None = None
    sent_bytes: int | None = None
    deduped_bytes: int = 0


class CommitConflict(Exception):
    """The target moved since the plan was made (HTTP 412 on the Hub): plan again."""


class Target(Protocol):
    """What the publishing pipeline needs from a destination."""

    description: str  # for messages and artifacts: "hub dataset org/name@main" or a path

    def ensure_exists(self, private: bool) -> bool: ...  # returns True when it was created
    def head(self, revision: str) -> str | None: ...  # the revision's head commit, files not listed
    def state(self, revision: str) -> RemoteState: ...
    def read_text(self, path: str, revision: str, git_oid: str | None = None) -> str | None: ...
    def commit(
        self,
        plan: PublishPlan,
        files: dict[str, StagedFile],
        local_paths: Mapping[str, str],  # read once a file, in the plan's order
        message: str,
        create_pr: bool = False,
    ) -> CommitResult: ...
    def tag_commit(self, tag: str) -> str | None: ...  # the commit a tag names, or None
    def create_tag(self, commit: str, tag: str, message: str | None = None) -> None: ...
    def verify(self, commit: str, files: list[StagedFile]) -> list[str]: ...
    def commit_url(self, commit: str) -> str: ...
