"""Temporary folders a killed run left (hubpress.storage.scratch): the next hubpress process of
the host removes those of processes that are gone, and nothing else in the temporary folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hubpress.storage import scratch

MAKE_AND_WAIT = (
    "import sys, time\n"
    "from hubpress.storage.scratch import scratch_dir\n"
    "d = scratch_dir('upload')\n"
    "open(d.name + '/shard.parquet', 'wb').write(b'x' * 1000)\n"
    "print(d.name, flush=True)\n"
    "time.sleep(600)\n"
)


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp)}


def _made_by_a_process(tmp: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", MAKE_AND_WAIT], env=_env(tmp), stdout=subprocess.PIPE, text=True
    )
    return proc, Path(proc.stdout.readline().strip())


def _age(path: Path, seconds: float = 3600) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def _other_namespace() -> str:
    """The host tag a process of this host in another PID namespace gives its folders."""
    import socket

    ours = os.readlink("/proc/self/ns/pid")
    return scratch.host_tag(socket.gethostname(), ours.replace("[", "[1"))


def _start_of(folder: Path) -> str:
    return folder.name.split("-")[2].split(".")[2]


def test_a_killed_runs_folder_goes_and_a_live_runs_stays(tmp_path):
    killed, killed_dir = _made_by_a_process(tmp_path)
    live, live_dir = _made_by_a_process(tmp_path)
    try:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        for d in (killed_dir, live_dir):
            assert (
                d.parent == tmp_path
                and d.name.startswith("hubpress-upload-")
                and (d / "shard.parquet").exists()
            )
            _age(d)
        # Not hubpress's, or not provably a dead process's: kept.
        others = [
            tmp_path / "hubpress-upload-abc123",  # an older hubpress's name: no owner in it
            tmp_path / f"hubpress-upload-00000000.{killed.pid}.1-x",  # another host's
            tmp_path / f"hubpress-upload-{scratch._host_tag()}.{killed.pid}.0-x",  # start unknown
            tmp_path / f"someone-else-{scratch._host_tag()}.{killed.pid}.1-x",
            # A container of this host with its own PID namespace, sharing the folder: its process
            # ids name nobody here (its live run's folder was swept).
            tmp_path / f"hubpress-upload-{_other_namespace()}.{killed.pid}.{_start_of(killed_dir)}-x",
        ]
        for d in others:
            d.mkdir()
            _age(d)
        young = tmp_path / f"hubpress-shard-{scratch._host_tag()}.{killed.pid}.1-y"
        young.mkdir()  # a dead owner's, but made a moment ago
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "keep").write_text("x")
        link = tmp_path / f"hubpress-upload-{scratch._host_tag()}.{killed.pid}.1-link"
        link.symlink_to(outside, target_is_directory=True)

        removed = scratch.sweep(str(tmp_path))

        assert removed == [str(killed_dir)] and not killed_dir.exists()
        assert (live_dir / "shard.parquet").exists()
        assert all(d.is_dir() for d in [*others, young]) and (outside / "keep").exists() and link.is_symlink()
    finally:
        live.kill()
        live.wait()
        killed.stdout.close()
        live.stdout.close()


def test_the_next_process_to_make_a_temporary_folder_sweeps(tmp_path):
    killed, killed_dir = _made_by_a_process(tmp_path)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    killed.stdout.close()
    _age(killed_dir)
    code = "from hubpress.storage.scratch import scratch_dir\nwith scratch_dir('shard') as d: pass\n"
    subprocess.run([sys.executable, "-c", code], env=_env(tmp_path), check=True, timeout=60)
    assert not killed_dir.exists() and not list(tmp_path.iterdir())
