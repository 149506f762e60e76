"""Every file of an upstream dataset held to what its listing gives, whoever downloads it, and
every cached copy held to it before it is read.

hubpress downloads an upstream's parquet files itself, each held to its listed size and sha256
(hubpress.refresh.parquet_stream.download_files). The other files a refresh reads are downloaded by
`datasets` itself (the dataset card, the data files of an upstream that is not parquet, on threads
of its own) or opened through HfFileSystem (media a row names): those were bounded only by their
deadline, so an upstream (or a proxy in its place) answering a few-KB JSON-lines file with bytes
without end filled the cache until the deadline. The upstream is listed once at its pinned commit,
and hubpress's transport holds each of those downloads to its listed size
(hubpress.targets.listed_sizes.remember_listing): one line, not retried.

The same listing is kept (`listed_upstream`) for what is read afterwards: huggingface_hub's cache
hands over a copy already at `snapshots/<sha>/<path>` without asking anything, so a copy written
there by another tool, by a hubpress from before these checks, or damaged on disk, was read as the
upstream's file. A cached copy (a downloaded parquet file, an imagefolder's image) and media bytes
read from the upstream are held to the listed size and sha256 (or git blob id) first
(hubpress.targets.listed_bytes).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from hubpress.storage.names import shown_name


@dataclass(frozen=True, slots=True)
class ListedUpstreamFile:
    """What the upstream's listing at a commit says of one file."""

    size: int
    sha256: str | None  # a file in LFS or Xet
    git_oid: str | None  # the git blob id (what a regular file is held to)


# The last few upstreams listed, by (repo type, repo id, commit): a commit's listing never changes.
_LISTINGS: dict[tuple[str, str, str], dict[str, ListedUpstreamFile]] = {}
_LOCK = threading.Lock()
_KEPT = 4


def hold_to_listing(
    dataset_name: str,
    revision_sha: str,
    token: str | bool | None,
    endpoint: str | None,
    repo_type: str = "dataset",
) -> dict[str, ListedUpstreamFile]:
    """List `dataset_name` at `revision_sha` (one tree listing), hold every later download of its
    files to their listed sizes, and keep (and return) what the listing says of each file."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    from hubpress.targets.listed_sizes import remember_listing

    api = HfApi(endpoint=endpoint, token=token)
    tree = api.list_repo_tree(dataset_name, revision=revision_sha, repo_type=repo_type, recursive=True)
    where = f"{repo_type} {dataset_name!r} at {revision_sha[:12]}"
    files = {
        entry.path: _listed_file(entry, where, endpoint) for entry in tree if isinstance(entry, RepoFile)
    }
    remember_listing(
        repo_type, dataset_name, revision_sha, {p: f.size for p, f in files.items()}, endpoint=endpoint
    )
    with _LOCK:
        if len(_LISTINGS) >= _KEPT:
            _LISTINGS.pop(next(iter(_LISTINGS)))
        _LISTINGS[(repo_type, dataset_name, revision_sha)] = files
    return files


_HEX_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _listed_file(entry, where: str, endpoint: str | None) -> ListedUpstreamFile:
    """What the listing says of one file, or the one-line refusal of a listing whose facts are not
    facts (a size that is not a count of bytes, an id that is not hex): every file of the upstream
    is held to them."""
    from hubpress.targets.hub_failures import HubAnswerUnusable

    size, sha256 = entry.size, entry.lfs.sha256 if entry.lfs else None
    blob_id = entry.blob_id or None
    problem = None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        problem = f"with the size {str(size)[:40]!r}"
    elif sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        problem = f"with the sha256 {str(sha256)[:80]!r}"
    elif blob_id is not None and not (isinstance(blob_id, str) and _HEX_ID.fullmatch(blob_id)):
        problem = f"with the git blob id {str(blob_id)[:80]!r}"
    if problem is None:
        return ListedUpstreamFile(size, sha256, blob_id)
    raise HubAnswerUnusable(
        f"The Hub at {endpoint or 'the default endpoint'} listed {shown_name(str(entry.path)[:200])} of "
        f"{where} {problem}: that listing cannot be used, and nothing of the upstream is read. Check "
        "HF_ENDPOINT (or HUBPRESS_HUB_ENDPOINT) and any proxy in between."
    )


def listed_upstream(
    dataset_name: str,
    revision_sha: str,
    token: str | bool | None,
    endpoint: str | None,
    repo_type: str = "dataset",
) -> dict[str, ListedUpstreamFile]:
    """The listing of `dataset_name` at `revision_sha`: the one kept, else listed now."""
    with _LOCK:
        kept = _LISTINGS.get((repo_type, dataset_name, revision_sha))
    if kept is not None:
        return kept
    return hold_to_listing(dataset_name, revision_sha, token, endpoint, repo_type)
