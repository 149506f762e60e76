"""Each publish as a Prefect asset materialization: the repo it wrote (`hf://datasets/org/name`,
`hf://models/org/name`, or `file:///abs/dir` for a local target) with the commit, revision and
counts as metadata, and what it was made from (the S3 prefix or local folder, the upstream Hub
datasets of a refresh) as asset dependencies.

Prefect emits `prefect.asset.materialization.succeeded` for the repo and
`prefect.asset.referenced` for each upstream when the materializing task completes; a
deployment trigger can match the first (docs/prefect.md). Only a run that moved the revision
materializes: an unchanged publish, a dry run or a pull request emits nothing, so a trigger on a
repo fires once per new commit. The task is never cached, because a cached run emits nothing."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from hubpress.targets.base import is_local_target, local_path

RepoType = Literal["dataset", "model"]

MAX_KEY = 512  # prefect.types.names.MAX_ASSET_KEY_LENGTH
# prefect.types.names.RESTRICTED_ASSET_CHARACTERS (spaces, quotes, '%', '#', '?', brackets, ...)
_RESTRICTED = frozenset("\n\r\t\0 #?&%\"'<>[]{}|\\^`")


def asset_key(uri: str) -> str:
    """A valid Prefect asset key for `uri`: restricted and control characters become '_', and a
    key longer than 512 characters keeps its start and a digest of the whole (two long paths that
    share a start stay two assets)."""
    key = "".join("_" if ch in _RESTRICTED or ord(ch) < 32 or ord(ch) == 127 else ch for ch in uri)
    if len(key) > MAX_KEY:
        digest = hashlib.sha256(uri.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        key = f"{key[: MAX_KEY - 17]}~{digest}"
    return key


def target_key(target: str, repo_type: RepoType) -> str:
    """The asset a publish to `target` materializes: its Hub repo, or its local directory."""
    if is_local_target(target):
        return _file_key(local_path(target))
    return asset_key(f"hf://{repo_type}s/{target}")


def source_key(source: str | Path) -> str:
    """The asset a publish reads: an `s3://` (or other `scheme://`) prefix as it is, a local path as
    a `file://` URI of its absolute form."""
    text = str(source)
    if "://" in text and not text.startswith("file://"):
        scheme, rest = text.split("://", 1)
        return asset_key(f"{scheme.lower()}://{rest}")
    return _file_key(local_path(text))


def _file_key(path: Path) -> str:
    """`file://` and the absolute path as the user names it: symlinks are not followed (a local
    target's directory is a link to its current version) and nothing is percent-encoded ('%' is
    not allowed in a key; a space becomes '_' like every other refused character)."""
    return asset_key("file://" + os.path.abspath(path.expanduser()))


def refresh_upstream_keys(config: Any) -> list[str]:
    """A refresh's upstreams: each Hub dataset backend as `hf://datasets/...`, each local folder
    backend as `file://...`."""
    keys = []
    for backend in config.backends:
        name = getattr(backend, "dataset_name", None)
        if name:
            keys.append(asset_key(f"hf://datasets/{name}"))
        elif getattr(backend, "instance_data_dir", None):
            keys.append(source_key(backend.instance_data_dir))
    return list(dict.fromkeys(keys))


def materialization_metadata(revision: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """The facts a materialization event carries: commit, revision, tag and the counts."""
    metadata: dict[str, Any] = {
        "commit": result.get("commit"),
        "revision": revision,
        "commit_url": result.get("commit_url"),
        "files_uploaded": len(result.get("uploaded_files") or []),
        "bytes_uploaded": int(result.get("uploaded_bytes") or 0),
        "files_deleted": len(result.get("deleted_files") or []),
    }
    if result.get("tag"):
        metadata["tag"] = result["tag"]
    samples = result.get("samples")
    if isinstance(samples, Mapping):
        metadata["samples"] = {str(k): int(v) for k, v in samples.items()}
        metadata["sample_count"] = sum(metadata["samples"].values())
    return metadata


def moved_revision(result: Mapping[str, Any]) -> bool:
    """Whether a run's result is a new commit on the revision (not a dry run, nor a pull request)."""
    return bool(result.get("commit")) and not result.get("dry_run") and not result.get("pr_url")


def record_publish(
    target: str,
    repo_type: RepoType,
    revision: str,
    result: Mapping[str, Any],
    upstream: Iterable[str] = (),
) -> bool:
    """Materialize `target` as a Prefect asset when `result` is a new commit on `revision`, with
    `upstream` (asset keys) as its dependencies. Returns whether it did; a no-op outside a flow."""
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None or not moved_revision(result):
        return False
    from prefect.assets import Asset, AssetProperties, materialize

    from hubpress.targets.retries import NO_CACHE

    key = target_key(target, repo_type)
    url = result.get("commit_url")
    asset = Asset(key=key, properties=AssetProperties(name=target, url=url if isinstance(url, str) else None))
    # The key is known only now: the materializing task is made at call time (a decorator's
    # assets are fixed when it is applied).
    record = materialize(asset, asset_deps=list(upstream), name="materialize-asset", **NO_CACHE)(
        _add_metadata
    )
    record(key, materialization_metadata(revision, result))
    return True


def _add_metadata(key: str, metadata: dict[str, Any]) -> None:
    from prefect.assets import add_asset_metadata

    add_asset_metadata(key, metadata)
