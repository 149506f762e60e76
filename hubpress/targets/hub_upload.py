"""Sending a commit's LFS objects to a Hub repo before the commit names them (huggingface_hub's
documented pattern: preupload_lfs_files, then create_commit with the same operations).

LFS objects belong to the repo, not to a revision: nothing in the repo changes until a commit
names them. On the Xet path (the Hub's, hubpress.targets.hub_xet) hf_xet sends only the chunks
the CAS does not hold; on the LFS path objects the repo already holds are not sent (the LFS batch
answer has no upload action for them). Either way each send says whether the Hub held the whole
file (`Sent.held`), so a re-run after a kill reports the killed run's uploads as already held.
Regular files travel inside the commit itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

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


@dataclass(frozen=True, slots=True)
class Sent:
    """What sending one operation did: `held`, the Hub already held all of its content, so none
    of it crossed (the LFS batch answer had no upload action for it, or hf_xet found every chunk
    stored); `xet`, hf_xet's report on the Xet path."""

    held: bool = False
    xet: XetSent | None = None


def preupload(
    api: Any, call: Call, repo_id: str, repo_type: str, op: Any, revision: str | None, create_pr: bool
) -> Sent:
    """Send one operation's content: through Xet (the Hub's path) with what hf_xet reports it sent;
    through the LFS batch API (HF_HUB_DISABLE_XET=1, or a Hub without Xet) nothing is sent when the
    repo already holds the object. A Hub found without Xet storage (no Xet write token, HTTP 404:
    older and self-hosted Hubs) is said once and then taken through LFS."""
    action = f"upload {op.path_in_repo} to"
    # An attempt that failed may have sent the file before it failed (the Hub then holds it when
    # the retry asks): "held" is said only of a file no attempt of this run sent any of.
    started: list[str] = []
    if hub_xet.served(api.endpoint):

        def through_xet() -> XetSent:
            started.append("xet")
            return hub_xet.preupload(api, repo_id, repo_type, [op], revision, create_pr)

        try:
            sent = call(action, through_xet)
            return Sent(held=bool(sent.held) and len(started) == 1, xet=sent)
        except hub_xet.XetNotServed as exc:
            if hub_xet.not_served(api.endpoint):
                logging.getLogger("hubpress.hub").warning("%s: uploading through LFS instead.", exc)
    started.clear()  # a Hub without Xet storage was sent nothing through it
    # The LFS batch API, asked here rather than by preupload_lfs_files: huggingface_hub would take
    # Xet when hf_xet is importable, and its answer's links are checked before the upload uses them.
    held = call(
        action,
        lambda: lfs_preupload(
            api, repo_id, repo_type, op, revision, create_pr, lambda: started.append("lfs")
        ),
    )
    return Sent(held=held and not started)


def lfs_preupload(
    api: Any,
    repo_id: str,
    repo_type: str,
    op: Any,
    revision: str | None,
    create_pr: bool,
    on_send: Callable[[], None] = lambda: None,
) -> bool:
    """What `preupload_lfs_files` does on the LFS path (for a Hub without Xet while hf_xet is
    importable huggingface_hub would take Xet, process-wide): the upload mode from the preupload
    answer, the LFS batch question, and the upload it answers with (none for an object the repo
    holds), its verify link checked first (check_verify_link), `on_send` called as it starts.
    True when the repo held the object already (an earlier run's upload, committed or not):
    nothing was sent."""
    from huggingface_hub._commit_api import _fetch_upload_modes
    from huggingface_hub.lfs import lfs_upload, post_lfs_batch_info
    from huggingface_hub.utils import build_hf_headers

    if op._is_uploaded:
        return False
    headers = build_hf_headers(token=api.token, library_name="hubpress")
    if op._upload_mode is None:
        _fetch_upload_modes(
            additions=[op],
            repo_type=repo_type,
            repo_id=repo_id,
            headers=headers,
            revision=quote(revision, safe="") if revision is not None else "main",
            endpoint=api.endpoint,
            create_pr=create_pr,
        )
    if op._upload_mode != "lfs" or op._should_ignore:
        return False  # a regular file travels inside the commit
    actions, errors, _transfer = post_lfs_batch_info(
        upload_infos=[op.upload_info],
        token=None,
        repo_type=repo_type,
        repo_id=repo_id,
        revision=None if create_pr else revision,
        endpoint=api.endpoint,
        headers=headers,
        transfers=["basic", "multipart"],
    )
    if errors:
        raise ValueError(f"the LFS batch answer refused {op.path_in_repo}: {errors[0].get('error')}")
    oid = op.upload_info.sha256.hex()
    answers = [action for action in actions if action.get("oid") == oid]
    for action in answers:
        if action.get("actions"):
            check_verify_link(action, api.endpoint, op.path_in_repo)
            on_send()
            lfs_upload(operation=op, lfs_batch_action=action, headers=headers, endpoint=api.endpoint)
    op._is_uploaded = True
    return bool(answers) and not any(action.get("actions") for action in answers)


def check_verify_link(action: dict, endpoint: str, path: str) -> None:
    """An LFS batch answer's `verify` link is sent the token (huggingface_hub posts to it with the
    upload's headers), unlike the storage link of the upload itself: it must be on the Hub's own
    origin, or a Hub (or anything answering for it) naming another host there would receive it."""
    from huggingface_hub.lfs import fix_hf_endpoint_in_url

    from hubpress.deadlines import url_without_secrets
    from hubpress.targets.hub_failures import HubAnswerUnusable
    from hubpress.targets.token_links import origin

    href = ((action.get("actions") or {}).get("verify") or {}).get("href")
    if isinstance(href, str) and origin(fix_hf_endpoint_in_url(href, endpoint)) != origin(endpoint):
        raise HubAnswerUnusable(
            f"The Hub at {url_without_secrets(endpoint)} answered the LFS batch question for {path} with a "
            f"verify link on another host ({url_without_secrets(href)[:200]!r}), which would be sent the "
            "token: nothing was uploaded. Check the Hub endpoint (HUBPRESS_HUB_ENDPOINT, HF_ENDPOINT) and "
            "any proxy in between."
        )


class CreateOnFirstUpload:
    """A missing repo created just before the first file is sent ahead, not before: a run that
    fails before any upload (bad data, a Hub limit, a build error) leaves no empty repo behind.
    `arm(private)` asks for it; `created` says whether this target created the repo."""

    def __init__(self, ensure_exists: Callable[[bool], bool]) -> None:
        self._ensure_exists = ensure_exists
        self._lock = threading.Lock()
        self._private: bool | None = None
        self.created = False

    def arm(self, private: bool) -> None:
        with self._lock:
            if not self.created:
                self._private = private

    def before_upload(self) -> None:
        with self._lock:  # the first of the concurrent uploads asks; the others wait for it
            if self._private is not None:
                self.created = self._ensure_exists(self._private)
                self._private = None


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

    try:
        with library_bars_off():
            each_until_failure(upload, additions, workers, on_done=progress.advance)
    finally:
        progress.close()


def each_until_failure(
    work: Callable[[Any], Any], items: list, workers: int, on_done: Callable[[Any], None] | None = None
) -> list:
    """`work(item)` for each item, `workers` at a time; the results in the items' order, each also
    given to `on_done` (on this thread) as it comes. The first failure ends it: no item is begun
    after it (a queued one would be a file copied or sent for a commit that will not be made),
    and it is raised once the items under way have ended."""
    failed = threading.Event()
    skipped = object()

    def guarded(item: Any) -> Any:
        if failed.is_set():
            return skipped
        try:
            return work(item)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(guarded, item) for item in items]
        try:
            for done in as_completed(futures):
                result = done.result()
                if on_done is not None and result is not skipped:
                    on_done(result)
        except BaseException:
            failed.set()  # also for an interrupt of this thread: the queued items are not begun
            for future in futures:
                future.cancel()
            raise
    return [future.result() for future in futures]


@contextmanager
def library_bars_off() -> Iterator[None]:
    """huggingface_hub draws a bar per preupload call, "Upload 0 LFS files: 0it" for each object
    the repo already holds; the bytes bar above says it all once. Restored afterwards."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()
