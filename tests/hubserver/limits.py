"""The Hub's storage limits, enforced on commits as the Hub enforces them: at most 10,000 entries
(files and folders) in one folder, about 100,000 files in a repo, and a size limit per file. A
commit that would break one is refused (400) and changes nothing. Settable on a running server so
a test can reach a limit with a few files: `server.limits.files_per_folder = 5`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import BadRequest
from .store import AddFile, AddLfsFile, CopyFile, DeleteFile, DeleteFolder, Operation


@dataclass(slots=True)
class HubLimits:
    files_per_folder: int = 10_000
    files_per_repo: int = 100_000
    file_bytes: int = 50 * 1000**3


def files_after(before: Iterable[str], operations: list[Operation]) -> set[str]:
    files = set(before)
    for op in operations:
        if isinstance(op, AddFile | AddLfsFile | CopyFile):
            files.add(op.path)
        elif isinstance(op, DeleteFile):
            files.discard(op.path)
        elif isinstance(op, DeleteFolder):
            prefix = op.path.strip("/") + "/"
            files = {f for f in files if not f.startswith(prefix)}
    return files


def check_commit(limits: HubLimits, before: Iterable[str], operations: list[Operation]) -> None:
    """Refuse (400) a commit whose result would break one of the limits."""
    for op in operations:
        size = len(op.content) if isinstance(op, AddFile) else op.size if isinstance(op, AddLfsFile) else None
        if size is not None and size > limits.file_bytes:
            raise BadRequest(
                f"{op.path} is {size} bytes: files over {limits.file_bytes} bytes are not accepted"
            )
    files = files_after(before, operations)
    if len(files) > limits.files_per_repo:
        raise BadRequest(
            f"The repository would hold {len(files)} files; at most {limits.files_per_repo} are allowed"
        )
    entries: dict[str, set[str]] = {}
    for path in files:
        parts = path.split("/")
        for depth in range(len(parts)):
            entries.setdefault("/".join(parts[:depth]), set()).add(parts[depth])
    for folder, names in entries.items():
        if len(names) > limits.files_per_folder:
            raise BadRequest(
                f"Folder {folder or '/'} would hold {len(names)} entries; "
                f"at most {limits.files_per_folder} per folder are allowed"
            )
