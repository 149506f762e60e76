"""A lease on this host is live while its process runs, and a process id is reused: in a container
whose hubpress command is always pid 1 (or any stable hostname with a restarted process of the same
pid), a killed run's lease named a process that was running, so its folder and the shards it named
stayed in staging forever. The lease now records when its process started, and a process of that
id that started at another time is not the run's."""

from __future__ import annotations

import json
import os
import socket
import time

from hubpress.settings import Settings
from hubpress.shards.runs import Lease, RunStage, read_leases
from hubpress.shards.staging import Staging
from hubpress.storage.hashcache import HashCache
from tests.conftest import run_cli


def test_a_lease_whose_pid_now_names_another_process_is_not_live(tmp_path, monkeypatch):
    staging_dir = tmp_path / "staging"
    staging = Staging(str(staging_dir), Settings(), HashCache(tmp_path / "cache.sqlite"))
    with RunStage(staging, "a" * 32) as stage:
        [(run, lease)] = read_leases(staging)
        assert run == stage.run and lease is not None and lease.is_live(time.time())

        # A killed run's lease from before: same host, this very pid (reused), another start.
        dead = staging_dir / "runs" / ("b" * 32) / "lease.json"
        dead.parent.mkdir(parents=True)
        record = {"run": "b" * 32, "host": socket.gethostname(), "pid": os.getpid(), "renewed": 0.0}
        dead.write_text(json.dumps(record | {"started": 1000.0, "keys": ["c" * 64]}))
        monkeypatch.setenv("HUBPRESS_STAGING", str(staging_dir))
        code, out, err = run_cli("staging", "clean", "--json")
        assert code == 0, err
        assert json.loads(out)["removed_runs"] == ["b" * 32]
        assert (staging_dir / "runs" / stage.run / "lease.json").exists()  # this run's: live

    # A lease written before leases recorded the start is judged by its pid alone, as before.
    assert Lease("r", socket.gethostname(), os.getpid(), 0.0).is_live(time.time())


def test_a_live_runs_lease_stays_live_when_the_clock_is_set(tmp_path):
    """The start a lease records is the wall clock's (psutil: boot time + ticks since boot), and
    the boot time moves with the clock: set by 5 s (an NTP step, a VM resumed) between the lease's
    writing and a sweep's reading, a live run's lease read as another process's, and a sweep took
    its folder and the shards it named while it ran. The time from boot to the start, in the same
    boot, is what names the process; the lease records it too."""
    staging_dir = tmp_path / "staging"
    staging = Staging(str(staging_dir), Settings(), HashCache(tmp_path / "cache.sqlite"))
    with RunStage(staging, "a" * 32) as stage:
        written = staging_dir / "runs" / stage.run / "lease.json"
        record = json.loads(written.read_text())
        written.write_text(json.dumps(record | {"started": record["started"] + 5.0}))  # the clock, set
        [(_, lease)] = read_leases(staging)
        assert lease is not None and lease.is_live(time.time())
    # This pid, started at another tick (or in another boot): another process, whatever the clock.
    other = Lease("r", socket.gethostname(), os.getpid(), 0.0, started=record["started"], boot_start="x/1")
    assert not other.is_live(time.time())
