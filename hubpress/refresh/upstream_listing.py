"""Every file of an upstream dataset held to the size its listing gives, whoever downloads it.

hubpress downloads an upstream's parquet files itself, each held to its listed size and sha256
(hubpress.refresh.parquet_stream.download_files). The other files a refresh reads are downloaded by
`datasets` itself (the dataset card, the data files of an upstream that is not parquet, on threads
of its own) or opened through HfFileSystem (media a row names): those were bounded only by their
deadline, so an upstream (or a proxy in its place) answering a few-KB JSON-lines file with bytes
without end filled the cache until the deadline. The upstream is listed once at its pinned commit,
and hubpress's transport holds each of those downloads to its listed size
(hubpress.targets.listed_sizes.remember_listing): one line, not retried.
"""

from __future__ import annotations


def hold_to_listing(dataset_name: str, revision_sha: str, token: str | bool | None, endpoint: str) -> None:
    """List `dataset_name` at `revision_sha` (one tree listing) and remember its files' sizes."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    from hubpress.targets.listed_sizes import remember_listing

    api = HfApi(endpoint=endpoint, token=token)
    tree = api.list_repo_tree(dataset_name, revision=revision_sha, repo_type="dataset", recursive=True)
    sizes = {entry.path: entry.size for entry in tree if isinstance(entry, RepoFile)}
    remember_listing("dataset", dataset_name, revision_sha, sizes, endpoint=endpoint)
