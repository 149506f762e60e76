"""A publish's own corner of staging, its lease, and the staging policy that sweeps what runs leave.

Each publish-dataset run works in `<staging>/runs/<run id>/`: its lease (`lease.json`: host,
process, when it was last renewed, and the keys of the shards it plans to use), the generated
files it publishes (manifest.json, the card's facts) and, with `fan_out: splits`, the split plans
its subflows read. Built shards go to the shared store (hubpress.shards.shard_store), not here.

A lease is live while its process runs: on the same host, while that process id exists; from
another host, while it was renewed within `LEASE_TIMEOUT` (a run renews it at every step and as
shards are sealed). Nothing a live lease names is ever removed.

The policy (`sweep`), applied when a publish starts and by `hubpress staging clean`:
- a run's own folder is removed when the run ends, whatever the outcome; folders of runs whose
  lease is no longer live (killed) are removed by the sweep;
- a sealed shard stays for resume until the target holds it: a successful publish removes the
  shards its commit now holds, unless a live lease names them;
- a sealed shard no run uses goes when it is older than `HUBPRESS_STAGING_MAX_AGE_HOURS`
  (default 168, a week), and the oldest go first while the store holds more than
  `HUBPRESS_STAGING_MAX_SIZE` (default 100GB);
- a shard file without its seal (the run died between writing and sealing it) goes after an hour.
A release's stage (`release-<fingerprint>/`, hubpress.shards.release_stages) is one more entry of
the same rules; its run's lease names it while the release uses it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubpress._env import pid_alive, process_boot_start, process_started
from hubpress.errors import disk_errors
from hubpress.shards.release_stages import is_release_stage, release_stages
from hubpress.shards.shard_store import SealedShard, ShardStore, StoredShard
from hubpress.shards.sizes import parse_size
from hubpress.shards.staging import STALE_AFTER_SECONDS, Staging

log = logging.getLogger("hubpress.staging")

RUNS = "runs"
LEASE = "lease.json"
LEASE_TIMEOUT = 6 * 3600  # a lease from another host not renewed for this long is a dead run's


@dataclass(frozen=True, slots=True)
class Lease:
    run: str
    host: str
    pid: int
    renewed: float
    keys: tuple[str, ...] = ()
    started: float | None = None  # when its process started (None in leases written before)
    # Its process's boot id and ticks from boot to its start (hubpress._env.process_boot_start):
    # what names the process when the clock was set since `started` was read. None where unknown.
    boot_start: str | None = None

    def is_live(self, now: float, host: str | None = None) -> bool:
        """True while its run may still be working (see the module's docstring). On this host,
        while its process runs: the same id and, when the lease says, the same start (a container
        whose command is always pid 1 reuses the id of every killed run)."""
        if self.host == (host or socket.gethostname()):
            if not pid_alive(self.pid):
                return False
            if self.boot_start is not None and (now_boot := process_boot_start(self.pid)) is not None:
                return now_boot == self.boot_start
            if self.started is None:
                return True
            started = process_started(self.pid)
            return started is None or abs(started - self.started) < 1.0
        return now - self.renewed < LEASE_TIMEOUT


class RunStage:
    """One run's folder in staging and its lease. Use as a context manager: leaving it removes
    the folder (the sealed shards stay in the store)."""

    def __init__(self, staging: Staging, run_id: str | None = None):
        self.staging = staging
        self.run = run_id or uuid.uuid4().hex
        self.relpath = f"{RUNS}/{self.run}"
        self.keys: tuple[str, ...] = ()
        self._started: tuple[int, float | None, str | None] | None = None

    def __enter__(self) -> RunStage:
        self.renew()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def uri(self, path: str = "") -> str:
        return self.staging.stage_uri(self.relpath, path)

    def renew(self, keys: Iterable[str] | None = None) -> None:
        """Write the lease; `keys` are the shards this run will use (named before it looks them
        up, so a sweep or another run's clean-up that starts later leaves them alone)."""
        if keys is not None:
            self.keys = tuple(sorted(set(keys)))
        with disk_errors(self.staging.storage.root):
            self._write_lease()

    def _write_lease(self) -> None:
        pid = os.getpid()
        if self._started is None or self._started[0] != pid:  # asked once per process
            self._started = (pid, process_started(pid), process_boot_start(pid))
        _, started, boot_start = self._started
        lease = Lease(self.run, socket.gethostname(), pid, time.time(), self.keys, started, boot_start)
        data = {"run": lease.run, "host": lease.host, "pid": lease.pid, "renewed": lease.renewed}
        if lease.started is not None:
            data["started"] = lease.started
        if lease.boot_start is not None:
            data["boot_start"] = lease.boot_start
        self.staging.storage.write_bytes(
            f"{self.relpath}/{LEASE}", json.dumps({**data, "keys": list(self.keys)}).encode()
        )

    def pin(self, sealed: dict[str, SealedShard]) -> dict[str, SealedShard]:
        """Local staging: hard-link each sealed shard this run will use into its folder, so that
        another run's clean-up between now and the commit cannot take its bytes away (the link
        keeps them). A shard that vanished before it was pinned is left out: it is built. On S3
        the lease alone protects them."""
        if not self.staging.is_local:
            return sealed
        folder = Path(self.uri("pins"))
        folder.mkdir(parents=True, exist_ok=True)
        pinned = {}
        for key, shard in sealed.items():
            link = folder / f"{key}.parquet"
            try:
                os.link(shard.source, link)
            except FileExistsError:
                pass
            except FileNotFoundError:
                continue
            except OSError:  # a file system without hard links: the lease alone protects it
                pinned[key] = shard
                continue
            pinned[key] = dataclasses.replace(shard, source=str(link))
        return pinned

    def close(self) -> None:
        self.staging.discard(self.relpath)


def is_run_id(name: str) -> bool:
    """The name of a run folder hubpress makes: a Prefect flow run id (a UUID) or uuid4().hex."""
    try:
        parsed = uuid.UUID(name)
    except ValueError:
        return False
    return name in (str(parsed), parsed.hex)


def read_leases(staging: Staging) -> list[tuple[str, Lease | None]]:
    """(run folder, its lease or None when unreadable) for every run folder in staging."""
    runs: dict[str, Lease | None] = {}
    for listed in staging.storage.list(RUNS):
        parts = listed.relpath.split("/")
        if len(parts) < 2:
            continue
        run = parts[1]
        runs.setdefault(run, None)
        if parts[2:] == [LEASE]:
            runs[run] = _lease(staging, listed.relpath)
    return sorted(runs.items())


def _lease(staging: Staging, relpath: str) -> Lease | None:
    try:
        data = json.loads(staging.storage.read_bytes(relpath))
        return Lease(
            str(data["run"]),
            str(data["host"]),
            int(data["pid"]),
            float(data["renewed"]),
            tuple(data.get("keys") or ()),
            None if data.get("started") is None else float(data["started"]),
            None if data.get("boot_start") is None else str(data["boot_start"]),
        )
    except Exception:  # noqa: BLE001 - half-written or gone: treated as no lease
        return None


def keys_in_use(staging: Staging, now: float | None = None, except_run: str | None = None) -> set[str]:
    """The shard keys named by live leases (other than `except_run`'s)."""
    now = time.time() if now is None else now
    return {
        key
        for run, lease in read_leases(staging)
        if lease is not None and run != except_run and lease.is_live(now)
        for key in lease.keys
    }


# --- the policy ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StagingPolicy:
    max_age_seconds: float = 168 * 3600
    max_size: int = parse_size("100GB")
    unsealed_after_seconds: float = STALE_AFTER_SECONDS

    @classmethod
    def from_settings(cls, settings: Any) -> StagingPolicy:
        return cls(float(settings.staging_max_age_hours) * 3600, parse_size(settings.staging_max_size))


@dataclass(slots=True)
class SweepPlan:
    shards: list[StoredShard] = field(default_factory=list)  # to remove
    runs: list[str] = field(default_factory=list)  # run folders to remove

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self.shards)


def plan_sweep(
    shards: Iterable[StoredShard],
    leases: Iterable[tuple[str, Lease | None]],
    policy: StagingPolicy,
    now: float,
    everything: bool = False,
    host: str | None = None,
) -> SweepPlan:
    """What the policy removes (pure). Never a shard a live lease names, nor a live run's folder.
    `everything`: every shard and run folder not in use (`hubpress staging clean --all`)."""
    shards, leases = list(shards), list(leases)
    live = {run for run, lease in leases if lease is not None and lease.is_live(now, host)}
    in_use = {key for run, lease in leases if run in live and lease is not None for key in lease.keys}
    # A folder without a readable lease may be a run writing its first lease: only --all takes it,
    # and only when its name is a run id hubpress makes (not a user's `runs/42/` beside staging).
    plan = SweepPlan(
        runs=[
            run
            for run, lease in leases
            if run not in live and (lease is not None or everything and is_run_id(run))
        ]
    )
    free = [s for s in shards if s.key not in in_use]

    def age(s: StoredShard) -> float:
        return now - s.modified if s.modified is not None else 0.0

    keep: list[StoredShard] = []
    for s in free:
        if (
            everything
            or not s.sealed
            and s.modified is not None
            and age(s) > policy.unsealed_after_seconds
            or s.sealed
            and age(s) > policy.max_age_seconds
        ):
            plan.shards.append(s)
        else:
            keep.append(s)
    total = sum(s.size for s in shards if s not in plan.shards)
    for s in sorted(keep, key=lambda s: -age(s)):  # oldest first
        if total <= policy.max_size:
            break
        plan.shards.append(s)
        total -= s.size
    return plan


def sweep(staging: Staging, policy: StagingPolicy, everything: bool = False) -> SweepPlan:
    """Apply the policy to a staging location (its sealed shards and the stages releases kept);
    returns what was removed."""
    store = ShardStore(staging)
    entries = [*store.entries(), *release_stages(staging)]
    plan = plan_sweep(entries, read_leases(staging), policy, time.time(), everything)
    store.remove(s.key for s in plan.shards if not is_release_stage(s.key))
    for s in plan.shards:
        if is_release_stage(s.key):
            staging.discard(s.key)
    for run in plan.runs:
        staging.discard(f"{RUNS}/{run}")
    if plan.shards or plan.runs:
        log.info(
            "Staging %s: removed %d shard(s) or release stage(s) (%d bytes) and %d finished run folder(s) "
            "by the staging policy.",
            staging.storage.root,
            len(plan.shards),
            plan.bytes,
            len(plan.runs),
        )
    return plan


_swept: set[str] = set()
_swept_lock = threading.Lock()


def sweep_once(staging: Staging, policy: StagingPolicy) -> SweepPlan | None:
    """The sweep a publish applies when it starts, once per process and staging location."""
    with _swept_lock:
        if staging.storage.root in _swept:
            return None
        _swept.add(staging.storage.root)
    try:
        return sweep(staging, policy)
    except Exception as exc:  # noqa: BLE001 - a sweep that fails costs space, never the publish
        log.warning(
            "Could not sweep staging %s (%s); `hubpress staging clean` can.", staging.storage.root, exc
        )
        return None


def release_published(staging: Staging, stage: RunStage, keys: Iterable[str]) -> int:
    """After a successful commit the target holds these shards: remove them from the store,
    except those another live run's lease names. Returns the bytes freed.

    This run's lease stops naming them first: two runs of the same data that end at once then
    cannot each see the other still naming the shards and both keep them (the one that looks
    last sees the other's lease emptied, and removes them)."""
    stage.renew(keys=())
    in_use = keys_in_use(staging, except_run=stage.run)
    return ShardStore(staging).remove(k for k in set(keys) if k not in in_use)


def release_stage_done(staging: Staging, stage: RunStage, fingerprint: str) -> None:
    """After a release's publish the target holds its files: remove its stage from staging, unless
    another live run (the same release started twice) names it. Its own lease lets go first, as in
    release_published."""
    stage.renew(keys=())
    if fingerprint not in keys_in_use(staging, except_run=stage.run):
        staging.discard(fingerprint)
