"""The stages post-training releases keep in staging: `<staging>/release-<fingerprint>/`, the chosen
checkpoint's files sealed with `_complete.json` (hubpress.lora.publish.prepare_release).

A release removes its own stage once its target holds the files (hubpress.shards.runs.
release_stage_done); a stage a failed or killed release kept is there for the next run of the same
release, which reuses it instead of copying the checkpoint again. The staging policy sweeps those
as it sweeps sealed shards (hubpress.shards.runs.plan_sweep): each stage is one entry, named by
its folder, whose age is its seal's (or, unsealed, its newest file's) and whose size is its files'.
"""

from __future__ import annotations

from hubpress.shards.shard_store import StoredShard
from hubpress.shards.staging import COMPLETE_RECORD, Staging, is_release_stage

__all__ = ["is_release_stage", "release_stages"]


def release_stages(staging: Staging) -> list[StoredShard]:
    """Every release stage in a staging location, sealed or not, with its size and age."""
    storage = staging.storage
    stages = []
    for name in storage.folders():
        if not is_release_stage(name):
            continue
        files = list(storage.list(name))
        sealed = any(f.relpath == f"{name}/{COMPLETE_RECORD}" for f in files)
        if sealed:
            modified = storage.modified(f"{name}/{COMPLETE_RECORD}")
        else:  # being written, or its release died while staging: its newest file says when
            times = [t for f in files if (t := storage.modified(f.relpath)) is not None]
            modified = max(times, default=storage.modified(name))
        stages.append(StoredShard(name, sum(max(f.size, 0) for f in files), sealed, modified))
    return stages
