"""The staging policy and `hubpress staging`: stale partial stages are swept by age and size, a
stage a live run uses never is, and two publishes sharing staging at once do not corrupt each
other (hubpress.shards.runs)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hubpress.flows.params import PublishDatasetParams
from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli
from tests.shard_helpers import shard_digests

pytestmark = pytest.mark.usefixtures("prefect_harness")

DAY = 24 * 3600
LIVE_RUN = "5f0c6a1e9b2d4c7a8e3f1a2b3c4d5e6f"


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _lease(staging: Path, run: str, pid: int, keys: list[str]) -> Path:
    folder = staging / "runs" / run
    folder.mkdir(parents=True)
    lease = {"run": run, "host": socket.gethostname(), "pid": pid, "renewed": time.time() - 30 * DAY}
    (folder / "lease.json").write_text(json.dumps({**lease, "keys": keys}))
    (folder / "manifest.json").write_text("{}")
    return folder


def test_stale_partial_stages_are_swept_and_a_stage_in_use_never_is(tmp_path, monkeypatch):
    from hubpress.flows.publish_dataset import publish_dataset

    staging = tmp_path / "staging"
    monkeypatch.setenv("HUBPRESS_STAGING", str(staging))
    src = tmp_path / "src"
    write_dataset(src, samples=40, image_size=16, seed=12)
    # A dry run builds and seals every shard, then ends: its shards stay for the real publish.
    dry = publish_dataset(
        PublishDatasetParams(
            source=str(src), target=str(tmp_path / "out"), max_shard_size="10KB", dry_run=True
        )
    )
    assert dry["shards_built"] == dry["shards"] >= 4
    shards = sorted(staging.glob("shards/*/*.parquet"))
    assert len(shards) == dry["shards"] and not list((staging / "runs").iterdir())
    keys = [p.stem for p in shards]

    code, out, _ = run_cli("staging", "list", "--json")
    listing = json.loads(out)
    assert code == 0 and listing["sealed_shards"] == len(shards) and listing["runs"] == []
    assert listing["sealed_bytes"] == sum(p.stat().st_size for p in shards)

    # Everything is ten days old; a live run (this process) names the first shard, a killed one
    # the second; a shard file whose seal was never written has been there two hours.
    for path in staging.rglob("*"):
        _age(path, 10 * DAY)
    # (a run id of hubpress's form: --all takes a folder without a lease only then, below)
    live = _lease(staging, LIVE_RUN, os.getpid(), [keys[0]])
    dead = _lease(staging, "dead-run", _dead_pid(), [keys[1]])
    orphan = staging / "shards" / "ab" / ("ab" + "0" * 62 + ".parquet")
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"half a shard, never sealed")
    _age(orphan, 2 * 3600)

    code, out, err = run_cli("staging", "list")
    assert (
        code == 0
        and "2 run folder(s)" in out
        and f"run {LIVE_RUN}: in use" in out
        and "run dead-run: ended" in out
    )

    code, out, err = run_cli("staging", "clean", "--json")
    assert code == 0, err
    removed = json.loads(out)
    assert removed["removed_shards"] == len(shards) and removed["removed_runs"] == ["dead-run"]
    left = sorted(p.stem for p in staging.glob("shards/*/*.parquet"))
    assert left == [keys[0]]  # in use: kept, however old
    assert live.exists() and not dead.exists() and not orphan.exists()

    # The size limit: with room for nothing, still nothing a live run names goes.
    monkeypatch.setenv("HUBPRESS_STAGING_MAX_AGE_HOURS", "100000")
    monkeypatch.setenv("HUBPRESS_STAGING_MAX_SIZE", "1")
    code, out, _ = run_cli("staging", "clean")
    assert (
        code == 0
        and "Removed 0 shard(s)" in out
        and [p.stem for p in staging.glob("shards/*/*.parquet")] == [keys[0]]
    )
    (live / "lease.json").unlink()
    code, out, _ = run_cli("staging", "clean", "--all")
    assert code == 0 and not list(staging.glob("shards/*/*")) and not live.exists()


def test_the_size_limit_sweeps_the_oldest_unused_shards_first(tmp_path, monkeypatch):
    from hubpress.flows.publish_dataset import publish_dataset

    staging = tmp_path / "staging"
    monkeypatch.setenv("HUBPRESS_STAGING", str(staging))
    src = tmp_path / "src"
    write_dataset(src, samples=30, image_size=16, seed=13)
    publish_dataset(
        PublishDatasetParams(
            source=str(src), target=str(tmp_path / "out"), max_shard_size="10KB", dry_run=True
        )
    )
    shards = sorted(staging.glob("shards/*/*.parquet"))
    for age, path in enumerate(shards):  # the first is the newest
        _age(path, (age + 1) * 3600)
    keep = shards[: len(shards) // 2]
    limit = sum(p.stat().st_size for p in keep)  # the policy counts shard bytes
    monkeypatch.setenv("HUBPRESS_STAGING_MAX_SIZE", str(limit))
    code, out, err = run_cli("staging", "clean", "--json")
    assert code == 0, err
    assert sorted(staging.glob("shards/*/*.parquet")) == keep


def _publish_cli(src: Path, target: Path, staging: Path) -> subprocess.Popen:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "HUBPRESS_STAGING": str(staging)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hubpress.commands.cli",
            "publish-dataset",
            str(src),
            str(target),
            "--max-shard-size",
            "10KB",
            "--json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_publishes_sharing_staging_do_not_corrupt_each_other(tmp_path):
    """The same data to two targets at once: both build (or reuse) the same keys in the one
    store, and the first to finish must not remove what the other still uses."""
    staging = tmp_path / "staging"
    src = tmp_path / "src"
    write_dataset(src, samples=40, image_size=16, seed=14)
    runs = [_publish_cli(src, tmp_path / name, staging) for name in ("a", "b")]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-3000:]
        results.append(json.loads(out))
    assert all(r["commit"] for r in results)
    assert shard_digests(tmp_path / "a") == shard_digests(tmp_path / "b") and shard_digests(tmp_path / "a")
    # Reference: the same data published alone gives the same shards.
    alone = _publish_cli(src, tmp_path / "alone", tmp_path / "staging-alone")
    _, err = alone.communicate(timeout=600)
    assert alone.returncode == 0, err[-3000:]
    assert shard_digests(tmp_path / "alone") == shard_digests(tmp_path / "a")
    # Both targets hold every shard: staging keeps none, and no run folder is left.
    assert not list(staging.rglob("*.parquet")) and not list((staging / "runs").iterdir())


def test_a_run_pins_the_sealed_shards_it_reuses_so_another_clean_up_cannot_take_them(tmp_path):
    import hashlib

    from hubpress.settings import Settings
    from hubpress.shards.runs import RunStage
    from hubpress.shards.shard_store import ShardStore
    from hubpress.shards.shards import plan_shards, stage_shard
    from hubpress.shards.staging import Staging
    from hubpress.storage.hashcache import HashCache
    from tests.shard_helpers import make_sample

    staging = Staging(str(tmp_path / "staging"), Settings(), HashCache(tmp_path / "cache.sqlite"))
    plans = plan_shards("train", [make_sample(tmp_path / "src", f"s{i}") for i in range(12)], 4_000)
    assert len(plans) >= 2
    for plan in plans:
        stage_shard(staging, plan)
    store = ShardStore(staging)
    found = store.find(p.key for p in plans)
    assert set(found) == {p.key for p in plans}
    store.remove([plans[1].key])  # another run's clean-up, before this one pins
    with RunStage(staging, "reuser") as stage:
        pinned = stage.pin(found)
        assert set(pinned) == {plans[0].key} | {p.key for p in plans[2:]}
        store.remove([plans[0].key])  # and after: the pin keeps the bytes
        kept = Path(pinned[plans[0].key].source)
        assert hashlib.sha256(kept.read_bytes()).hexdigest() == found[plans[0].key].sha256
    assert not kept.exists() and not (tmp_path / "staging" / "runs" / "reuser").exists()
