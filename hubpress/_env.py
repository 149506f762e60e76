"""Environment switches that must be settled before huggingface_hub is imported."""

from __future__ import annotations

import functools
import logging
import os

log = logging.getLogger("hubpress")

_TRUE = {"1", "true", "yes", "on"}
_applied = False


def apply_transfer_compat(environ: dict[str, str] | None = None) -> bool:
    """Turn the qflux guide's HF_HUB_ENABLE_HF_TRANSFER=1 into HF_XET_HIGH_PERFORMANCE=1.

    huggingface_hub removed hf_transfer in 1.0 and only warns about the variable now; the
    acceleration it gave lives in hf_xet. Returns True when the switch was translated.
    Logs once per process, in one line.
    """
    global _applied
    env = os.environ if environ is None else environ
    if env.get("HF_HUB_ENABLE_HF_TRANSFER", "").strip().lower() not in _TRUE:
        return False
    if env.get("HF_XET_HIGH_PERFORMANCE", "").strip() == "":
        env["HF_XET_HIGH_PERFORMANCE"] = "1"
    if environ is None and not _applied:
        _applied = True
        log.warning(
            "HF_HUB_ENABLE_HF_TRANSFER=1 is ignored by huggingface_hub>=1.0 (hf_transfer was removed); "
            "hubpress set HF_XET_HIGH_PERFORMANCE=%s instead, which gives the same acceleration through hf_xet.",
            env["HF_XET_HIGH_PERFORMANCE"],
        )
    return True


def quiet_prefect_telemetry(environ: dict[str, str] | None = None) -> None:
    """Turn off the Prefect server's analytics heartbeat (unless the user set it).

    In a temporary (ephemeral) server it races SQLite at start-up and logs a telemetry ERROR with
    a traceback ("database is locked") into the user's output, from the CLI and from the Python
    API alike; hubpress never needs it, and nothing here may reach the network anyway."""
    env = os.environ if environ is None else environ
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@functools.cache
def _glibc():
    """The C library when it is glibc, looked up once: find_library runs ldconfig each time."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (like MALLOC_ARENA_MAX, but settable after start-up).

    Shard builds run on whichever of the task runner's threads is free, and glibc gives each
    thread its own arena that keeps freed image buffers for reuse: peak RSS then grows with the
    number of threads that ever built a shard, i.e. with the dataset's size. A couple of shared
    arenas keep it flat. No-op where glibc is not the allocator."""
    libc = _glibc()
    m_arena_max = -8  # from malloc.h
    return bool(libc is not None and libc.mallopt(m_arena_max, arenas))


def release_free_memory() -> None:
    """Hand memory freed by a finished shard build back to the OS (glibc's malloc_trim), so the
    next build starts from the same footprint. No-op where glibc is not the allocator."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def process_started(pid: int) -> float | None:
    """When the process with this id started (seconds since the epoch), or None when there is none
    or it cannot be asked: with the id, it names one process, as an id that is reused does not."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def process_boot_start(pid: int) -> str | None:
    """`<boot id>/<clock ticks from boot to its start>` of the process with this id (Linux), or
    None. Unlike `process_started`, whose boot time moves when the clock is set (an NTP step, a VM
    resumed), this never changes while the process runs, and a process of another boot, or started
    at another tick, is another process."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip()
        with open(f"/proc/{int(pid)}/stat", "rb") as fh:
            stat = fh.read()
        ticks = int(stat[stat.rindex(b")") + 2 :].split()[19])  # field 22, starttime
    except (OSError, ValueError, IndexError):
        return None
    return f"{boot}/{ticks}" if boot else None


def pid_alive(pid: int) -> bool:
    """True while a process with this id exists on this host (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
