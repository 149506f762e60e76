"""Which planned shards must be built: the one rule, as pure functions over typed values.

Every planned shard has a key before it is built (ShardPlan.key: a sha256 of its samples' ids,
prompts and file content digests, the row-group options and the shard format), and the shard's
bytes are a function of that key. So a shard is built only when neither
- the target holds it: its manifest.json names the key for that path, and the target's tree has
  the file there with the manifest's sha256 and size (nothing to build, read or send), nor
- the staging holds it sealed (hubpress.shards.shard_store): built by an earlier run, on any
  machine that sees the same staging, that was killed, failed or was a dry run.

The decision needs only the target's manifest and tree and the staging's contents: nothing kept
on one machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from hubpress.shards.shard_store import SealedShard, is_shard_key
from hubpress.targets.ownership import names_its_key
from hubpress.targets.plan import RemoteFile

Where = Literal["target", "stage", "build"]


class Planned(Protocol):
    """What the rule needs of a planned shard, whichever build planned it (publish-dataset's
    hubpress.shards.shards.ShardPlan, a refresh's hubpress.refresh.shards.RefreshShardPlan)."""

    @property
    def key(self) -> str: ...
    @property
    def split(self) -> str: ...
    @property
    def path_in_repo(self) -> str: ...
    @property
    def source_bytes(self) -> int: ...


def target_holdings(
    manifest: Mapping[str, Any] | None, remote: Mapping[str, RemoteFile]
) -> dict[str, SealedShard]:
    """key -> the shard, for every shard the target's manifest.json names with its key whose file
    is in the target's tree with the manifest's sha256 and size. A manifest without keys (written
    before them) or a file someone replaced holds nothing: those shards are built again. Nor does a
    file whose name is not the one hubpress gives that key (a collaborator's manifest naming their
    own parquet file with a shard's key would have it published as that shard's rows)."""
    files = (manifest or {}).get("files")
    if not isinstance(files, dict):
        return {}
    held: dict[str, SealedShard] = {}
    for path, facts in files.items():
        try:
            key, sha, size = facts["key"], str(facts["sha256"]), int(facts["size"])
            shard = SealedShard(
                key,
                str(path),
                str(facts["split"]),
                sha,
                size,
                int(facts["num_rows"]),
                int(facts["num_bytes"]),
            )
        except (KeyError, TypeError, ValueError):
            continue
        there = remote.get(path)
        if (
            is_shard_key(key)
            and names_its_key(shard.path_in_repo, key, shard.split)
            and there is not None
            and there.sha256 == sha
            and there.size == size
        ):
            held[key] = shard
    return held


@dataclass(frozen=True, slots=True)
class ShardChoice:
    plan: Planned
    where: Where  # where its bytes come from: the target, a sealed shard in staging, or a build
    held: SealedShard | None = None


@dataclass(frozen=True, slots=True)
class BuildPlan:
    """Every planned shard with where it comes from, in plan order, and the target's manifest
    (so an unchanged one keeps the flow run it names: hubpress.shards.pipeline.stage_build)."""

    choices: tuple[ShardChoice, ...]
    target_manifest: dict[str, Any] | None = None

    @property
    def to_build(self) -> list[Any]:
        return [c.plan for c in self.choices if c.where == "build"]

    @property
    def reused(self) -> list[SealedShard]:
        return [c.held for c in self.choices if c.held is not None]

    def count(self, where: Where) -> int:
        return sum(1 for c in self.choices if c.where == where)

    @property
    def source_bytes(self) -> int:
        return sum(c.plan.source_bytes for c in self.choices)

    @property
    def source_bytes_to_read(self) -> int:
        return sum(plan.source_bytes for plan in self.to_build)


def choose(
    plans: Iterable[Planned],
    held_by_target: Mapping[str, SealedShard],
    sealed: Mapping[str, SealedShard],
    target_manifest: dict[str, Any] | None = None,
) -> BuildPlan:
    """The rule: the target's copy first (nothing to send), then a sealed one, else build. A held
    shard counts only under the path its plan gives (a manifest cannot rename a shard)."""
    choices = []
    for plan in plans:
        for where, found in (("target", held_by_target.get(plan.key)), ("stage", sealed.get(plan.key))):
            if found is not None and found.path_in_repo == plan.path_in_repo and found.split == plan.split:
                choices.append(ShardChoice(plan, where, found))  # type: ignore[arg-type]
                break
        else:
            choices.append(ShardChoice(plan, "build"))
    return BuildPlan(tuple(choices), target_manifest)


def kept_from_parent(build_plan: BuildPlan, unchanged_paths: Iterable[str]) -> dict[str, str]:
    """path -> sha256 of the shards the target held when the build was planned (in its manifest
    with their key, in its tree with that sha256 and size) that the commit left as they were at
    its parent (`unchanged_paths`, the publish plan's): on a night whose parent this machine
    verified, their footers were checked there (hubpress.shards.verify.verify_changed_revision)."""
    unchanged = set(unchanged_paths)
    return {
        c.plan.path_in_repo: c.held.sha256
        for c in build_plan.choices
        if c.where == "target" and c.held is not None and c.plan.path_in_repo in unchanged
    }


# --- the retake after images that do not decode ------------------------------------------------

# A pass builds every shard it must, so it finds every undecodable image and a second pass ends
# it; the third is a margin for an image that could not be recorded (the error then names it).
PASSES = 3


def retake(attempt: int, passes: int = PASSES) -> bool:
    """After a pass found undecodable images: take the intake again (True) or give up (False).
    `attempt` counts from 0. Shards sealed in the failed pass are reused by the next."""
    return attempt < passes - 1


def shard_counts(build_plan: BuildPlan, sent_paths: Iterable[str], intake_bytes_read: int) -> dict[str, Any]:
    """What a run reused, built, read and sent, for the result and the summary."""
    sent = set(sent_paths)
    return {
        "shards": len(build_plan.choices),
        "shards_built": build_plan.count("build"),
        "shards_reused": build_plan.count("target") + build_plan.count("stage"),
        "shards_reused_from_stage": build_plan.count("stage"),
        "shards_sent": sum(1 for c in build_plan.choices if c.plan.path_in_repo in sent),
        "source_bytes": build_plan.source_bytes,
        "source_bytes_read": build_plan.source_bytes_to_read + intake_bytes_read,
    }
