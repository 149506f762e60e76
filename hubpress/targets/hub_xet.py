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

import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote


def uses_xet() -> bool:
    """True when huggingface_hub uploads through Xet (hf_xet importable, HF_HUB_DISABLE_XET unset)."""
    from huggingface_hub.utils._runtime import is_xet_available

    return is_xet_available()


@dataclass(frozen=True, slots=True)
class XetSent:
    """One Xet upload's figures, from hf_xet's commit report (DeduplicationMetrics).

    file_bytes: bytes of the files hf_xet processed; deduped_bytes: of those, bytes whose chunks the
    CAS already held (not sent); sent_bytes: xorb and shard bytes that crossed the wire (the new
    chunks, compressed, and the file records)."""

    file_bytes: int = 0
    deduped_bytes: int = 0
    sent_bytes: int = 0

    def __add__(self, other: XetSent) -> XetSent:
        return XetSent(
            self.file_bytes + other.file_bytes,
            self.deduped_bytes + other.deduped_bytes,
            self.sent_bytes + other.sent_bytes,
        )

    def __sub__(self, other: XetSent) -> XetSent:
        return XetSent(
            self.file_bytes - other.file_bytes,
            self.deduped_bytes - other.deduped_bytes,
            self.sent_bytes - other.sent_bytes,
        )


class XetTally:
    """What a target's Xet uploads sent (uploads run in several threads), and what its commits
    reported of it: a commit reports what was sent since the last one, a re-planned attempt's
    uploads included."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = XetSent()
        self._reported = XetSent()

    def add(self, sent: XetSent) -> None:
        with self._lock:
            self.total = self.total + sent

    def commit_fields(self, additions: list) -> dict[str, Any]:
        """The CommitResult fields of a commit on the Xet path: the bytes sent since the last
        commit, and the regular files that travelled inside this one."""
        with self._lock:
            since, self._reported = self.total - self._reported, self.total
        inline = sum(op.upload_info.size for op in additions if op._upload_mode == "regular")
        return {
            "transfer": "xet",
            "sent_bytes": since.sent_bytes + inline,
            "deduped_bytes": since.deduped_bytes,
        }


def preupload(
    api: Any, repo_id: str, repo_type: str, ops: list, revision: str | None, create_pr: bool
) -> XetSent:
    """Send the LFS-mode files among `ops` through Xet (regular files are left to the commit)."""
    import hf_xet
    from huggingface_hub._commit_api import _fetch_upload_modes
    from huggingface_hub.utils import build_hf_headers
    from huggingface_hub.utils._xet import (
        XetTokenType,
        abort_xet_session,
        get_xet_session,
        xet_connection_info_refresh_url,
        xet_headers_without_auth,
    )

    revision = quote(revision, safe="") if revision is not None else "main"
    headers = build_hf_headers(token=api.token, library_name="hubpress")
    pending = [op for op in ops if not op._is_uploaded]
    unknown = [op for op in pending if op._upload_mode is None]
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
    todo = [op for op in pending if op._upload_mode == "lfs" and not op._should_ignore]
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
    try:
        commit = get_xet_session().new_upload_commit(
            token_refresh_url=refresh_url,
            token_refresh_headers=headers,
            custom_headers=xet_headers_without_auth(headers),
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
    for op, handle in handles:
        if not op.upload_info.is_hashed:  # hf_xet hashed it while chunking: the commit names it
            op.upload_info.sha256 = bytes.fromhex(handle.result().xet_info.sha256)
        op._is_uploaded = True
    metrics = report.dedup_metrics
    return XetSent(metrics.total_bytes, metrics.deduped_bytes, metrics.total_bytes_uploaded)


def token_refusal(exc: BaseException, repo_type: str, repo_id: str, endpoint: str) -> Exception | None:
    """A hubpress error for a Hub that refused the Xet write token (hf_xet reports it as a
    ConnectionError naming the HTTP status), or None for a failure worth retrying."""
    from hubpress.errors import HubAccessError, PublishError

    found = re.search(r"\((\d{3})[^)]*\)", str(exc))
    status = int(found.group(1)) if found else None
    where = f"{repo_type} repo {repo_id}"
    if status == 404:
        return PublishError(
            f"The Hub at {endpoint} does not serve Xet storage (no Xet write token for {where}, HTTP 404). "
            "Set HF_HUB_DISABLE_XET=1 to upload through LFS, as older and self-hosted Hubs need."
        )
    if status in (401, 403):
        return HubAccessError(
            f"The Hub refused a Xet write token for {where} (HTTP {status}): the token cannot write there. "
            "Use a token with write access to that namespace."
        )
    return None
