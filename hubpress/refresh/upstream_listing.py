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

import threading
from dataclasses import dataclass


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
    files = {
        entry.path: ListedUpstreamFile(
            int(entry.size), entry.lfs.sha256 if entry.lfs else None, entry.blob_id or None
        )
        for entry in tree
        if isinstance(entry, RepoFile)
    }
    remember_listing(
        repo_type, dataset_name, revision_sha, {p: f.size for p, f in files.items()}, endpoint=endpoint
    )
    with _LOCK:
        if len(_LISTINGS) >= _KEPT:
            _LISTINGS.pop(next(iter(_LISTINGS)))
        _LISTINGS[(repo_type, dataset_name, revision_sha)] = files
    return files


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
