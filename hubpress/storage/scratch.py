"""hubpress's temporary folders, and the sweep of those a killed run left.

A run copies files through the temporary folder (`TMPDIR`): shards from S3 staging on their way
to the Hub, a shard built for S3 staging, a checkpoint's files on their way into a release's stage.
Python's TemporaryDirectory removes them when the run ends, but not when it is killed (SIGKILL,
the OOM killer, a lost machine), and a checkpoint is gigabytes. So each folder's name says which
process made it (`hubpress-<kind>-<host>.<pid>.<start>-...`: this host's name and PID namespace
hashed, the process id, and its start in clock ticks from boot), and the first temporary folder a
process makes removes the folders of processes of this host and namespace that are gone. A folder
of a process that still runs, of another host or container sharing the folder, or of a name it
did not make is never touched."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time

from hubpress._env import process_boot_start

log = logging.getLogger("hubpress.scratch")

# A folder younger than this is left alone whatever its name says: a process that has just made
# it may not be visible yet from here (another PID namespace sharing /tmp has other ids).
MIN_AGE_SECONDS = 600.0
_NAME = re.compile(r"^hubpress-[a-z-]+-(?P<host>[0-9a-f]{8})\.(?P<pid>[0-9]+)\.(?P<start>[0-9]+)-")

_swept = False
_swept_lock = threading.Lock()


def host_tag(hostname: str, pid_namespace: str) -> str:
    """The part of a folder's name that says where its process id means something: the host and
    its PID namespace. Containers of one host (a Kubernetes pod's, or any run with the host's
    name) may share a temporary folder but not their process ids: a process id of another
    namespace names nobody here, or someone else, and its live run's folder was swept."""
    where = hostname if not pid_namespace else f"{hostname}\0{pid_namespace}"
    return hashlib.sha256(where.encode("utf-8", "replace")).hexdigest()[:8]


def _pid_namespace() -> str:
    """This process's PID namespace (`pid:[4026531836]`), or "" where /proc does not say."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _host_tag() -> str:
    return host_tag(socket.gethostname(), _pid_namespace())


def _start_ticks(pid: int) -> str | None:
    """The process's start, in clock ticks from this boot (None where /proc does not say)."""
    boot_start = process_boot_start(pid)
    return boot_start.rsplit("/", 1)[1] if boot_start else None


_OWNER: tuple[int, str] | None = None  # (pid, tag): asked of /proc once per process, not per folder


def owner_tag() -> str:
    """This process's part of a temporary folder's name: host, pid and start."""
    global _OWNER
    pid = os.getpid()
    if _OWNER is None or _OWNER[0] != pid:  # a forked child is another process
        _OWNER = (pid, f"{_host_tag()}.{pid}.{_start_ticks(pid) or 0}")
    return _OWNER[1]


def scratch_dir(kind: str) -> tempfile.TemporaryDirectory:
    """A TemporaryDirectory named for this process (`kind`: upload, shard, release, ...). The first
    one a process makes sweeps the folders dead hubpress processes of this host left."""
    sweep_once()
    return tempfile.TemporaryDirectory(prefix=f"hubpress-{kind}-{owner_tag()}-")


def is_dead_owners(name: str, host: str, now: float, mtime: float) -> bool:
    """Whether the temporary folder `name` (last changed at `mtime`) is one a hubpress process of
    `host` made and that process is gone: no process has its id, or the one that has it started
    at another tick (a reused id). Unknown starts (`0`) and young folders are kept."""
    match = _NAME.match(name)
    if match is None or match["host"] != host or match["start"] == "0" or now - mtime < MIN_AGE_SECONDS:
        return False
    return _start_ticks(int(match["pid"])) != match["start"]


def sweep_once() -> list[str]:
    """Remove, once per process, the temporary folders dead hubpress processes of this host left.
    Returns what was removed. Best effort: a folder that cannot be read or removed is left."""
    global _swept
    with _swept_lock:
        if _swept:
            return []
        _swept = True
    return sweep(tempfile.gettempdir())


def sweep(directory: str) -> list[str]:
    removed: list[str] = []
    host, now, uid = _host_tag(), time.time(), os.getuid()
    try:
        with os.scandir(directory) as entries:
            candidates = [e for e in entries if e.name.startswith("hubpress-")]
    except OSError:
        return []
    for entry in candidates:
        try:
            st = entry.stat(follow_symlinks=False)
            if not entry.is_dir(follow_symlinks=False) or st.st_uid != uid:
                continue
            if is_dead_owners(entry.name, host, now, st.st_mtime):
                shutil.rmtree(entry.path)  # does not follow links out of the folder
                removed.append(entry.path)
        except OSError:
            continue
    if removed:
        log.info("Removed %d temporary folder(s) killed hubpress runs left in %s", len(removed), directory)
    return removed
