"""The pure decisions of the publish pipeline, without Prefect: which shards to build
(hubpress.shards.reuse), the retake, what the staging sweep removes (hubpress.shards.runs) and
what the run summary says (hubpress.shards.run_result)."""

from __future__ import annotations

import json

from hubpress.shards.reuse import PASSES, choose, retake, shard_counts, target_holdings
from hubpress.shards.run_result import reuse_line, summary_head
from hubpress.shards.runs import Lease, StagingPolicy, plan_sweep
from hubpress.shards.shard_store import SealedShard, StoredShard
from hubpress.shards.shards import plan_shards
from hubpress.targets.plan import RemoteFile
from tests.shard_helpers import make_sample


def _plans(tmp_path, count=30):
    samples = [make_sample(tmp_path, f"s{i:03d}") for i in range(count)]
    return plan_shards("train", samples, 6_000)


def _manifest(plans, **override):
    files = {
        p.path_in_repo: {
            "sha256": f"{i:064x}",
            "size": 100 + i,
            "split": "train",
            "num_rows": p.num_rows,
            "num_bytes": 1000,
            "key": p.key,
            **override,
        }
        for i, p in enumerate(plans)
    }
    return {"files": files}


def _remote(manifest):
    return {
        path: RemoteFile(path, facts["size"], facts["sha256"]) for path, facts in manifest["files"].items()
    }


def test_the_target_holds_a_shard_only_when_its_manifest_and_its_tree_agree(tmp_path):
    plans = _plans(tmp_path)
    assert len(plans) >= 3
    manifest = _manifest(plans)
    remote = _remote(manifest)
    assert set(target_holdings(manifest, remote)) == {p.key for p in plans}

    # Someone replaced a file (another sha256 in the tree): that shard is not held.
    first = plans[0].path_in_repo
    remote[first] = RemoteFile(first, remote[first].size, "e" * 64)
    assert plans[0].key not in target_holdings(manifest, remote)
    # A manifest written before keys, or naming something that is not a key, holds nothing.
    assert target_holdings(_manifest(plans, key=None), _remote(manifest)) == {}
    assert target_holdings(_manifest(plans, key="../../etc/passwd"), _remote(manifest)) == {}
    assert target_holdings(None, remote) == {} and target_holdings({"files": []}, remote) == {}


def test_the_target_comes_first_then_the_stage_else_a_build(tmp_path):
    plans = _plans(tmp_path)
    held = target_holdings(_manifest(plans[:1]), _remote(_manifest(plans[:1])))
    sealed = {
        p.key: SealedShard(p.key, p.path_in_repo, "train", "a" * 64, 10, p.num_rows, 10, "/s/x")
        for p in plans[:2]
    }
    chosen = choose(plans, held, sealed)
    assert [c.where for c in chosen.choices] == ["target", "stage"] + ["build"] * (len(plans) - 2)
    assert chosen.to_build == plans[2:]
    # A held shard counts only under the path its plan gives: a manifest cannot rename a shard.
    renamed = {k: SealedShard(k, "data/other.parquet", "train", "a" * 64, 1, 1, 1) for k in held}
    assert choose(plans[:1], renamed, {}).to_build == plans[:1]

    counts = shard_counts(chosen, [plans[2].path_in_repo, "manifest.json"], intake_bytes_read=5)
    assert counts["shards"] == len(plans) and counts["shards_built"] == len(plans) - 2
    assert counts["shards_reused"] == 2 and counts["shards_reused_from_stage"] == 1
    assert counts["shards_sent"] == 1
    image_bytes = [sum(r.size for s in p.samples for r in s.images()) for p in plans]
    assert counts["source_bytes"] == sum(image_bytes)
    assert counts["source_bytes_read"] == sum(image_bytes[2:]) + 5


def test_a_retake_is_taken_until_the_last_pass():
    assert [retake(attempt) for attempt in range(PASSES)] == [True] * (PASSES - 1) + [False]


def _shard(key_char: str, size: int, sealed: bool, age: float | None, now: float) -> StoredShard:
    return StoredShard(key_char * 64, size, sealed, None if age is None else now - age)


def test_the_sweep_policy(tmp_path):
    now = 1_000_000.0
    hour = 3600.0
    policy = StagingPolicy(max_age_seconds=24 * hour, max_size=1_000, unsealed_after_seconds=hour)
    shards = [
        _shard("a", 100, True, 48 * hour, now),  # old and sealed: swept
        _shard("b", 100, True, 48 * hour, now),  # old, but a live run uses it: kept
        _shard("c", 100, False, 2 * hour, now),  # unsealed for two hours: a dead run's, swept
        _shard("d", 100, False, 60.0, now),  # unsealed for a minute: maybe being sealed, kept
        _shard("e", 100, True, hour, now),  # recent and sealed: kept
    ]
    live = Lease("live", "elsewhere", 1, now - 60, ("b" * 64,))
    dead = Lease("dead", "elsewhere", 2, now - 7 * 24 * hour, ("e" * 64,))
    half = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # a run id (uuid4().hex) whose lease is not written yet
    plan = plan_sweep(shards, [("live", live), ("dead", dead), (half, None)], policy, now, host="here")
    assert sorted(s.key[0] for s in plan.shards) == ["a", "c"]
    assert plan.runs == ["dead"]  # a live run's folder never goes; one without a lease only with --all

    # Over the size limit: the oldest unused shards go first, never one in use.
    small = StagingPolicy(max_age_seconds=1e9, max_size=250, unsealed_after_seconds=1e9)
    aged = [_shard(c, 100, True, age * hour, now) for c, age in (("p", 5), ("q", 9), ("r", 1), ("s", 7))]
    using_q = Lease("live", "elsewhere", 1, now, ("q" * 64,))
    plan = plan_sweep(aged, [("live", using_q)], small, now, host="here")
    assert [s.key[0] for s in plan.shards] == ["s", "p"]

    everything = plan_sweep(
        shards, [("live", live), (half, None), ("42", None)], policy, now, everything=True, host="here"
    )
    assert "b" * 64 not in {s.key for s in everything.shards} and len(everything.shards) == 4
    assert everything.runs == [half]  # not "42": no lease, and not a name hubpress gives a run


def test_a_lease_on_this_host_lives_as_long_as_its_process(tmp_path):
    import os
    import socket

    mine = Lease("r", socket.gethostname(), os.getpid(), 0.0)
    assert mine.is_live(now=1e12)  # renewed long ago, but its process runs
    gone = Lease("r", socket.gethostname(), 2**22 + 12345, 1e12)
    assert not gone.is_live(now=1e12)


def test_the_summary_says_what_was_reused():
    result = {
        "dry_run": False,
        "commit": "c" * 40,
        "changes": {"added": 4, "changed": 1, "removed": 0},
        "uploaded_bytes": 96_000_000,
        "shards": 412,
        "shards_built": 3,
        "shards_reused": 409,
        "shards_sent": 3,
        "source_bytes": 480_000_000_000,
        "source_bytes_read": 1_200_000_000,
    }
    assert summary_head(result) == "4 samples added, 1 changed, 0 removed: 96,000,000 bytes sent"
    assert reuse_line(result) == (
        "3 of 412 shards rebuilt (409 reused); 1.2 GB read of 480.0 GB; 3 shard(s), 96.0 MB sent"
    )
    json.dumps(result)  # plain values, for --json
