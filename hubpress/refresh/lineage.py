"""What a refresh depends on, and whether anything of it changed since the last publish.

`upstream_revisions` resolves each backend's exact upstream revision (a Hub commit sha; for a
local folder, a hash of its listing) without downloading data. `config_fingerprint` hashes every
other input that shapes the published bytes, and `unchanged_manifest` compares both with what the
target's manifest.json records: when they match, nothing can differ and the run stops there.
`RefreshOptions` carries the run's parameters as plain values (the flow builds it from its
parameter model), so this layer never imports the flows layer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hubpress.parsers import load_json
from hubpress.refresh.config import HuggingfaceBackend, LocalBackend, RefreshConfig
from hubpress.refresh.local import IMAGE_SUFFIXES, local_folder
from hubpress.refresh.mix import DEFAULT_STOPPING, Stopping
from hubpress.refresh.training_keys import cache_entry, training_keys
from hubpress.refresh.upstream import resolve_revision
from hubpress.shards.run_result import NO_SHARDS
from hubpress.shards.sizes import DEFAULT_MAX_SHARD_SIZE
from hubpress.storage.hashcache import local_version
from hubpress.storage.names import split_remote_paths
from hubpress.targets.publish import CARD, MANIFEST

# Bump when the bytes a refresh writes change for the same inputs (4: no media statistics; 5: the
# SimpleTuner entry keeps the user's training keys, one entry per mixed backend, a `collection` column,
# and shard boundaries are measured from the previous candidate, hubpress.shards.boundaries; 6: shards
# are named by their key, a digest of their rows' content, as publish-dataset's are: hubpress.refresh.shards).
REFRESH_FORMAT = 6
SPLIT = "train"

Backend = HuggingfaceBackend | LocalBackend


@dataclass(frozen=True, slots=True)
class RefreshOptions:
    """The run's parameters that shape what a refresh publishes, as plain typed values."""

    target: str  # Hub repo id or local directory
    seed: int = 0
    stopping: Stopping = DEFAULT_STOPPING
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE  # bytes
    license: str = "other"
    pretty_name: str | None = None


def local_folder_revision(cfg: LocalBackend) -> str:
    """A local folder's "revision": a hash of its image and caption files' paths, sizes and
    versions, by the one version rule of every local listing and cache key
    (hubpress.storage.hashcache.local_version: mtime, ctime and inode). The mtime alone missed a
    same-size edit that put the old mtime back (`cp -p`, `rsync -t`, `touch -d`): the refresh said
    "nothing changed" over the old caption or image."""
    root = local_folder(cfg)
    digest = hashlib.sha256()
    wanted = IMAGE_SUFFIXES | {".txt"}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted):
        size, version = local_version(path)
        digest.update(f"{path.relative_to(root).as_posix()}\0{size}\0{version}\n".encode())
    return "local:" + digest.hexdigest()[:40]


def upstream_revisions(
    config: RefreshConfig, token: str | None, endpoint: str | None = None
) -> dict[str, str]:
    """Backend id -> the exact revision a refresh would read now. Errors (dataset not found,
    private without a token, bad revision) are one line each, raised before any work."""
    revisions: dict[str, str] = {}
    for backend in config.backends:
        if isinstance(backend, LocalBackend):
            revisions[backend.id] = local_folder_revision(backend)
        else:
            revisions[backend.id] = resolve_revision(backend, token, endpoint)
    return revisions


def backend_facts(backend: Backend) -> dict[str, Any]:
    # Where the cache lives and how rows are fetched do not change what is published.
    return backend.model_dump(mode="json", exclude={"cache_dir", "streaming", "num_proc"})


def config_fingerprint(config: RefreshConfig, options: RefreshOptions) -> str:
    """Everything besides upstream data that shapes the published bytes. 32 hex characters."""
    payload = {
        "format": REFRESH_FORMAT,
        "backends": [backend_facts(b) for b in config.backends],
        # the training keys the published SimpleTuner entry carries (repeats, video, crop, ...)
        "training": {b.id: training_keys(config.entries.get(b.id, {})) for b in config.backends},
        "caches": [cache_entry(raw) for raw in config.cache_entries],
        "seed": options.seed,
        "stopping": options.stopping,
        "max_shard_size": options.max_shard_size,
        "license": options.license,
        "pretty_name": options.pretty_name,
        "target": options.target,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def stage_fingerprint(revisions: Mapping[str, str], config_fp: str, seed: int) -> str:
    payload = {"refresh": REFRESH_FORMAT, "upstream": dict(revisions), "config": config_fp, "seed": seed}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def unchanged_manifest(
    manifest_text: str | None, revisions: Mapping[str, str], config_fp: str
) -> dict[str, Any] | None:
    """The target's manifest when it records exactly these upstream revisions and this config
    fingerprint (nothing to do), else None."""
    if not manifest_text:
        return None
    try:
        manifest = load_json(manifest_text, "the target's manifest.json")
    except ValueError:
        return None
    if not isinstance(manifest, dict) or manifest.get("config_fingerprint") != config_fp:
        return None
    if not _of_our_shape(manifest):  # the remote's word: JSON of another shape proves nothing
        return None
    recorded = {k: v.get("revision_sha") for k, v in manifest["upstream"].items()}
    return manifest if recorded == dict(revisions) else None


def _of_our_shape(manifest: Mapping[str, Any]) -> bool:
    """Whether the parts of a manifest a nothing-changed run repeats are as a refresh writes them:
    `upstream` maps backend ids to objects, `splits` (if any) maps split names to objects whose
    counts are integers."""
    upstream, splits = manifest.get("upstream"), manifest.get("splits", {})
    if not isinstance(upstream, dict) or not all(isinstance(v, dict) for v in upstream.values()):
        return False
    if not isinstance(splits, dict) or not all(isinstance(v, dict) for v in splits.values()):
        return False
    counts = [v.get(key, 0) for v in splits.values() for key in ("num_examples", "num_dropped")]
    return all(type(count) is int for count in counts)


def nothing_changed_result(target_name: str, manifest: Mapping[str, Any], dry_run: bool) -> dict[str, Any]:
    """The result of a run that stopped because nothing changed upstream (same fields as a publish)."""
    split = manifest.get("splits", {}).get(SPLIT, {})
    # The target's manifest is the remote's word: only names the gate accepts are echoed back.
    files = manifest.get("files")
    names = [f for f in files if isinstance(f, str)] if isinstance(files, Mapping) else []
    listed, _ = split_remote_paths(names, what="manifest.json file")
    unchanged = sorted({*listed, MANIFEST, CARD})
    return {
        "target": target_name,
        "commit": None,
        "commit_url": None,
        "pr_url": None,
        "tag": None,
        "dry_run": dry_run,
        "uploaded_files": [],
        "uploaded_bytes": 0,
        "unchanged_files": unchanged,
        "deleted_files": [],
        "plan": {"added": [], "changed": [], "unchanged": unchanged, "deleted": []},
        "attempts": 0,
        "samples": {SPLIT: split.get("num_examples", 0)},
        "skipped": {SPLIT: split.get("num_dropped", 0)},
        "nothing_changed": True,
        "message": "nothing changed upstream: same upstream revisions and the same configuration; "
        "no download, no build, no commit",
        "upstream": {k: v.get("revision_sha") for k, v in manifest.get("upstream", {}).items()},
        "metadata_cache_reused": {},
        "stage": None,
        "stage_reused": False,
        **NO_SHARDS,
    }
