"""Sending a commit's large files through Xet, keeping hf_xet's report of what crossed the wire.

huggingface_hub 2.x sends every LFS-mode file through Xet when hf_xet is importable (the Hub's
path; HF_HUB_DISABLE_XET=1 takes the legacy LFS batch path). hf_xet chunks each file, skips the
chunks the CAS already holds and uploads the rest compressed, so the bytes sent can be far fewer
than the file's. `preupload_lfs_files` discards hf_xet's report; this module does the same upload
(the Hub's preupload answer for the upload mode, then one hf_xet upload commit with the Hub's
token-refresh URL) and returns the report's figures as an `XetSent`.

Like `preupload_lfs_files`, it marks each operation uploaded, so `create_commit` sends it as a
pointer carrying the file's sha256 and does not upload it again.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

log = logging.getLogger("hubpress.hub")
T = TypeVar("T")


def uses_xet() -> bool:
    """True when huggingface_hub uploads through Xet (hf_xet importable, HF_HUB_DISABLE_XET unset)."""
    from huggingface_hub.utils._runtime import is_xet_available

    return is_xet_available()


class XetNotServed(Exception):
    """The Hub has no Xet write token for a repo it holds (HTTP 404): it serves the LFS path only,
    as older and self-hosted Hubs do. The upload goes through LFS instead (HubRepo)."""


# Endpoints found not to serve Xet in this process: every later upload to them takes LFS at once.
_WITHOUT_XET: set[str] = set()
_WITHOUT_XET_LOCK = threading.Lock()


def served(endpoint: str) -> bool:
    """Whether uploads to `endpoint` take Xet: the client would, and the Hub was not found without it."""
    with _WITHOUT_XET_LOCK:
        return uses_xet() and endpoint not in _WITHOUT_XET


def not_served(endpoint: str) -> bool:
    """Note that `endpoint` does not serve Xet; True the first time (the caller says so once)."""
    with _WITHOUT_XET_LOCK:
        first = endpoint not in _WITHOUT_XET
        _WITHOUT_XET.add(endpoint)
        return first


@dataclass(frozen=True, slots=True)
class XetSent:
    """One Xet upload, from hf_xet's report: `sent_bytes`, the xorb and shard bytes that crossed
    the wire (the new chunks, compressed, and the file records); `deduped`, per file sent
    ((path, sha256) -> bytes of it whose chunks the CAS already held); `held`, the files of which
    no chunk was new: the Hub held all of it (a killed run's upload, another repo's file), and
    only its file record crossed."""

    sent_bytes: int = 0
    deduped: dict[tuple[str, str], int] = field(default_factory=dict)
    held: frozenset[tuple[str, str]] = frozenset()


class XetTally:
    """What a target's Xet uploads sent (uploads run in several threads), and what its commits
    reported of it. A commit reports the bytes sent since the last one (a re-planned attempt's
    uploads and files sent ahead that turned out unchanged included: they crossed the wire) and
    the deduplicated bytes of its own files."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent = 0
        self._deduped: dict[tuple[str, str], int] = {}

    def add(self, sent: XetSent) -> None:
        with self._lock:
            self._sent += sent.sent_bytes
            self._deduped.update(sent.deduped)

    def commit_fields(self, additions: list) -> dict[str, Any]:
        """The CommitResult fields of a commit on the Xet path (`additions`: its files)."""
        with self._lock:
            sent, self._sent = self._sent, 0
            deduped = sum(
                self._deduped.pop((op.path_in_repo, op.upload_info.sha256.hex()), 0) for op in additions
            )
        inline = sum(op.upload_info.size for op in additions if op._upload_mode == "regular")
        return {"transfer": "xet", "sent_bytes": sent + inline, "deduped_bytes": deduped}


def preupload(
    api: Any, repo_id: str, repo_type: str, ops: list, revision: str | None, create_pr: bool
) -> XetSent:
    """Send the LFS-mode files among `ops` through Xet (regular files are left to the commit)."""
    import hf_xet
    from huggingface_hub._commit_api import _fetch_upload_modes
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import build_hf_headers
    from huggingface_hub.utils._xet import (
        XetTokenType,
        _fetch_xet_connection_info_with_url,
        abort_xet_session,
        get_xet_session,
        xet_connection_info_refresh_url,
        xet_headers_without_auth,
    )

    revision = quote(revision, safe="") if revision is not None else "main"
    headers = build_hf_headers(token=api.token, library_name="hubpress")
    pending = [op for op in ops if not op._is_uploaded]
    unknown = [op for op in pending if op._upload_mode is None]
    asked = {id(op) for op in unknown}  # their _remote_oid is the file's oid at `revision`
    if unknown:
        _fetch_upload_modes(
            additions=unknown,
            repo_type=repo_type,
            repo_id=repo_id,
            headers=headers,
            revision=revision,
            endpoint=api.endpoint,
            create_pr=create_pr,
        )
    # The preupload answer names the file's oid at `revision`: a file it already holds there is
    # left out (create_commit drops it as unchanged), rather than chunked and hashed again.
    todo = [
        op
        for op in pending
        if op._upload_mode == "lfs"
        and not op._should_ignore
        and not (id(op) in asked and op.upload_info.is_hashed and op._remote_oid == op._local_oid)
    ]
    if not todo:
        return XetSent()
    refresh_url = xet_connection_info_refresh_url(
        token_type=XetTokenType.WRITE,
        repo_id=repo_id,
        repo_type=repo_type,
        revision=revision,
        endpoint=api.endpoint,
    )
    if create_pr:
        refresh_url += "?create_pr=1"
    # The first token is asked for here, through huggingface_hub's client, so the storage the Hub
    # names is checked (hub_http) before hf_xet sees it; hf_xet is then held to that storage and
    # only refreshes the token. Left to hf_xet, the ask would name any storage, `local://` included.
    try:
        storage = _fetch_xet_connection_info_with_url(refresh_url, headers)
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        raise token_refusal(exc, repo_type, repo_id, api.endpoint, status) or exc from None
    try:
        commit = wait_while_store_busy(
            lambda: get_xet_session().new_upload_commit(
                endpoint=storage.endpoint,
                token=storage.access_token,
                token_expiry_unix_secs=storage.expiration_unix_epoch,
                token_refresh_url=refresh_url,
                token_refresh_headers=headers,
                custom_headers=xet_headers_without_auth(headers),
            )
        )
    except ConnectionError as exc:
        raise token_refusal(exc, repo_type, repo_id, api.endpoint) or exc from None
    handles = []
    try:
        for op in todo:
            sha256 = op.upload_info.sha256.hex() if op.upload_info.is_hashed else hf_xet.COMPUTE_SHA256
            handles.append((op, commit.start_upload_file(str(op.path_or_fileobj), sha256=sha256)))
        report = commit.wait_to_finish()
    except KeyboardInterrupt:
        abort_xet_session()
        raise
    except BaseException:
        commit.abort()
        raise
    deduped = {}
    held = set()
    for op, handle in handles:
        result = handle.result()
        if not op.upload_info.is_hashed:  # hf_xet hashed it while chunking: the commit names it
            op.upload_info.sha256 = bytes.fromhex(result.xet_info.sha256)
        op._is_uploaded = True
        key = (op.path_in_repo, op.upload_info.sha256.hex())
        deduped[key] = result.dedup_metrics.deduped_bytes
        if whole_file_held(op.upload_info.size, result.dedup_metrics.new_bytes):
            held.add(key)
    return XetSent(report.dedup_metrics.total_bytes_uploaded, deduped, frozenset(held))


def whole_file_held(size: int, new_bytes: int) -> bool:
    """Whether hf_xet found every chunk of a file of `size` bytes held by the Hub (`new_bytes`,
    its report of the bytes no dedupe found): the chunks of a file an earlier (killed) run sent,
    known from its shards in hf_xet's cache or from the Hub's dedupe answer."""
    return size > 0 and new_bytes == 0


# A CAS on a local path (`local://DIR`: test Hubs, and one machine's own store) keeps its dedup
# index in a database one process at a time may open; another upload on this machine then holds
# it until it ends. hf_xet says so as a RuntimeError. Waiting is right: the store is not broken.
_STORE_BUSY = "Cannot acquire lock"
STORE_BUSY_MAX_SECONDS = 300.0


def wait_while_store_busy(open_commit: Callable[[], T], max_seconds: float = STORE_BUSY_MAX_SECONDS) -> T:
    """open_commit(), again every second or so while hf_xet's local store is held by another
    process, for at most max_seconds; then one error that says what held it."""
    from hubpress.errors import PublishError

    started = time.monotonic()
    told = False
    while True:
        try:
            return open_commit()
        except RuntimeError as exc:
            if _STORE_BUSY not in str(exc):
                raise
            if time.monotonic() - started > max_seconds:
                raise PublishError(
                    f"hf_xet's local store stayed held by another upload on this machine for {max_seconds:.0f} s "
                    f"({exc}). Run again when the other upload has ended."
                ) from None
            if not told:
                log.warning(
                    "Another upload on this machine holds hf_xet's local store; waiting for it to end."
                )
                told = True
            time.sleep(random.uniform(0.5, 1.5))


def token_refusal(
    exc: BaseException, repo_type: str, repo_id: str, endpoint: str, status: int | None = None
) -> Exception | None:
    """A hubpress error for a Hub that refused the Xet write token (`status`, or, from hf_xet, a
    ConnectionError naming the HTTP status): XetNotServed for a 404, HubAccessError for 401/403;
    None for a failure worth retrying."""
    from hubpress.errors import HubAccessError

    if status is None:
        found = re.search(r"\((\d{3})[^)]*\)", str(exc))
        status = int(found.group(1)) if found else None
    where = f"{repo_type} repo {repo_id}"
    if status == 404:
        return XetNotServed(
            f"The Hub at {endpoint} does not serve Xet storage (no Xet write token for {where}, HTTP 404)"
        )
    if status in (401, 403):
        return HubAccessError(
            f"The Hub refused a Xet write token for {where} (HTTP {status}): the token cannot write there. "
            "Use a token with write access to that namespace."
        )
    return None
