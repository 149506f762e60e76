"""The Hub's storage limits, enforced on commits as the Hub enforces them: at most 10,000 entries
(files and folders) in one folder, about 100,000 files in a repo, and a size limit per file. A
commit that would break one is refused (400) and changes nothing.

And what one commit may carry: at most 25,000 LFS files (400), and at most 1 GB of regular files,
whose content travels base64-encoded inside the NDJSON body (413 Payload Too Large). These are the
figures hubpress checks before any upload (hubpress/targets/limits.py): a test lowers both the
server's and hubpress's (HUBPRESS_HUB_LFS_FILES_PER_COMMIT, HUBPRESS_HUB_REGULAR_BYTES_PER_COMMIT)
to the same value. The answer is a JSON body `{"error": ...}` with the same text in X-Error-Message,
which huggingface_hub's hf_raise_for_status appends to its error ("Bad request for commit endpoint").

Settable on a running server so a test can reach a limit with a few files
(`server.limits.files_per_folder = 5`), or at start (`python -m tests.hubserver --lfs-files-per-commit 3`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import BadRequest, PayloadTooLarge
from .store import AddFile, AddLfsFile, CopyFile, DeleteFile, DeleteFolder, Operation


@dataclass(slots=True)
class HubLimits:
    files_per_folder: int = 10_000
    files_per_repo: int = 100_000
    file_bytes: int = 50 * 1000**3
    lfs_files_per_commit: int = 25_000
    regular_bytes_per_commit: int = 1_000_000_000


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
    """Refuse (400, 413) a commit that carries more than one commit may, or whose result would
    break one of the limits."""
    lfs = sum(isinstance(op, AddLfsFile) for op in operations)
    if lfs > limits.lfs_files_per_commit:
        raise BadRequest(
            f"Your commit adds {lfs} LFS files: at most {limits.lfs_files_per_commit} are allowed in one commit. "
            "Split it into several commits."
        )
    regular = sum(len(op.content) for op in operations if isinstance(op, AddFile))
    if regular > limits.regular_bytes_per_commit:
        raise PayloadTooLarge(
            f"Your commit carries {regular} bytes of regular files: at most {limits.regular_bytes_per_commit} "
            "are allowed in one commit. Upload large files through LFS, or split the commit."
        )
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
