"""Sending a commit's LFS objects to a Hub repo before the commit names them (huggingface_hub's
documented pattern: preupload_lfs_files, then create_commit with the same operations).

LFS objects belong to the repo, not to a revision: nothing in the repo changes until a commit
names them. On the Xet path (the Hub's, hubpress.targets.hub_xet) hf_xet sends only the chunks
the CAS does not hold; on the LFS path objects the repo already holds are not sent (the LFS batch
answer has no upload action for them). Regular files travel inside the commit itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from hubpress.targets import hub_xet
from hubpress.targets.hub_xet import XetSent
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
) -> XetSent | None:
    """Send one operation's content. Through Xet (the Hub's path) it returns what hf_xet reports it
    sent; through the LFS batch API (HF_HUB_DISABLE_XET=1) None, and nothing is sent when the repo
    already holds the object."""
    if hub_xet.uses_xet():
        return call(
            f"upload {op.path_in_repo} to",
            lambda: hub_xet.preupload(api, repo_id, repo_type, [op], revision, create_pr),
        )
    call(
        f"upload {op.path_in_repo} to",
        lambda: api.preupload_lfs_files(
            repo_id, [op], repo_type=repo_type, revision=revision, create_pr=create_pr or None, num_threads=1
        ),
    )
    return None


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


def already_present(
    additions: list, token: str | None, repo_type: str, repo_id: str, revision: str, endpoint: str
) -> set[str]:
    """Paths whose LFS object the Hub already holds, from one LFS batch question (per 256 files)
    for the additions not sent yet: the answer has no upload action for them. They are committed
    but not sent, so uploaded_bytes leaves them out. Best effort: when the question fails, every
    file counts as sent."""
    from huggingface_hub.lfs import post_lfs_batch_info

    pending = [op for op in additions if not op._is_uploaded]
    if not pending:
        return set()
    by_oid = {op.upload_info.sha256.hex(): op.path_in_repo for op in pending}
    present: set[str] = set()
    try:
        for start in range(0, len(pending), 256):
            chunk = pending[start : start + 256]
            actions, _errors, _transfer = post_lfs_batch_info(
                [op.upload_info for op in chunk],
                token,
                repo_type,
                repo_id,
                revision=revision,
                endpoint=endpoint,
            )
            present |= {
                by_oid[a["oid"]] for a in actions if a.get("actions") is None and a.get("oid") in by_oid
            }
    except Exception as exc:  # noqa: BLE001 - accounting only: never fail a publish over it
        logging.getLogger("hubpress.hub").debug("could not ask which LFS objects %s holds: %s", repo_id, exc)
        return set()
    return present
