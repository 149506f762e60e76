"""Sending a commit's LFS objects to a Hub repo before the commit names them (huggingface_hub's
documented pattern: preupload_lfs_files, then create_commit with the same operations).

LFS objects belong to the repo, not to a revision: nothing in the repo changes until a commit
names them, and objects the repo already holds are not sent (the LFS batch answer has no upload
action for them). Regular files travel inside the commit itself.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from hubpress.targets.plan import StagedFile

# (action, call) -> result: the repo's retrying, error-translating call (HubRepo._retry).
Call = Callable[[str, Callable[[], Any]], Any]


def addition(file: StagedFile, local_path: str) -> Any:
    """The commit operation that adds `file`, carrying the sha256 staging computed."""
    from huggingface_hub import CommitOperationAdd

    op = CommitOperationAdd(path_in_repo=file.path, path_or_fileobj=local_path)
    # huggingface_hub hashes lazily; we hashed while staging, so it need not read every shard
    # again. The Hub checks it on upload and `verify` compares it after the commit.
    op.upload_info.sha256 = bytes.fromhex(file.sha256)
    return op


def preupload(
    api: Any, call: Call, repo_id: str, repo_type: str, op: Any, revision: str | None, create_pr: bool
) -> None:
    """Send one operation's LFS object (nothing when the repo already holds it)."""
    call(
        f"upload {op.path_in_repo} to",
        lambda: api.preupload_lfs_files(
            repo_id, [op], repo_type=repo_type, revision=revision, create_pr=create_pr or None, num_threads=1
        ),
    )


def upload_all(send: Callable[[Any], None], additions: list, workers: int) -> None:
    """Send the LFS objects of a commit not sent yet, `workers` at a time, advancing a bytes
    progress artifact (and, from the command line, a terminal bar) as each file lands."""
    from hubpress.orchestration.artifacts import Progress

    additions = [op for op in additions if not op._is_uploaded]  # sent ahead already
    if not additions:
        return
    total = sum(op.upload_info.size for op in additions)
    progress = Progress(total, f"Uploading {len(additions)} file(s)", unit="bytes")

    def upload(op: Any) -> int:
        send(op)
        return op.upload_info.size

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done in as_completed([pool.submit(upload, op) for op in additions]):
            progress.advance(done.result())
