"""Prefect's temporary server (HUBPRESS_PREFECT_SERVER=temporary), started by hubpress.

Prefect starts it on first use, inside whatever call first needs the API, and:
- its child inherits the terminal, so a server that cannot start (say, PREFECT_HOME or the
  database URL points somewhere unwritable) prints its whole traceback (~200 lines) there;
- it does not notice that child exit, and waits out PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS
  before saying "Timed out while attempting to connect";
- the child shares the terminal's process group, so Ctrl-C kills it too, and the run's last state
  reports then retry against a dead server for a minute and more.

So a command starts it first, as the same `SubprocessASGIServer` instance Prefect's clients look
up (they find it running and use it): the same uvicorn app as Prefect runs, in its own session,
its output in a log file. A child that exits is seen at once, and its last error line becomes the
command's one-line error (hubpress.orchestration.server.failure_cause). Prefect's exit handler
stops it, as it would have.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hubpress.errors import ConfigError

# uvicorn's exit code when it could not start: the port was taken meanwhile (then Prefect, and
# hubpress, pick another port), or the app's start-up failed.
UVICORN_STARTUP_FAILED = 3
WHAT_TO_DO = (
    "Check that PREFECT_HOME (and PREFECT_API_DATABASE_CONNECTION_URL, if set) points somewhere "
    "writable, or leave HUBPRESS_PREFECT_SERVER unset to use hubpress's local server "
    "(`hubpress server start`)."
)


def _uvicorn(port: int, log) -> subprocess.Popen:
    """Prefect's temporary server: its API app (no UI), on 127.0.0.1:port, in a new session."""
    import prefect
    from prefect.settings import get_current_settings

    env = {
        **os.environ,
        # Prefect's own switches for its temporary server (what SubprocessASGIServer sets).
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        **get_current_settings().to_environment_variables(exclude_unset=True),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(prefect.__module_path__.parent),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the terminal's Ctrl-C is for the command, which stops it
    )


def start_temporary_server() -> str | None:
    """Start Prefect's temporary server for this process (once); returns its API URL. Raises
    ConfigError with the server's own reason, in one line, when it cannot start; None when
    Prefect's temporary server is turned off (PREFECT_SERVER_EPHEMERAL_ENABLED=false)."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import (
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    )

    if not PREFECT_SERVER_EPHEMERAL_ENABLED.value():  # Prefect will ask for PREFECT_API_URL itself
        return None
    server = SubprocessASGIServer()  # the instance Prefect's clients use
    if server.running:
        return server.api_url
    log_path = _log_file()
    timeout = float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    deadline = time.monotonic() + timeout
    proc, offset = None, 0
    with open(log_path or os.devnull, "ab") as log:
        try:
            while proc is None or not _answers(server, proc, log_path, offset, timeout, deadline):
                if proc is None or _port_taken(proc, log_path, offset):
                    offset = log_path.stat().st_size if log_path else 0
                    server.port = server.find_available_port()
                    proc = _uvicorn(server.port, log)
                time.sleep(0.1)
        except BaseException:  # Ctrl-C included: the child is in its own session, stop it here
            if proc is not None:
                proc.kill()
                proc.wait()
            raise
    server.server_process, server.running = proc, True
    atexit.register(server.stop)
    if log_path is not None:
        atexit.register(log_path.unlink, missing_ok=True)
    return server.api_url


def _log_file() -> Path | None:
    """Where the server's output goes: a temporary file, removed at exit (kept and named when the
    server could not start); None when the temporary directory cannot take it (a full or read-only
    TMPDIR must not stop the command: the server then starts without a log)."""
    try:
        handle, name = tempfile.mkstemp(prefix="hubpress-prefect-temporary-", suffix=".log")
    except OSError:
        return None
    os.close(handle)
    return Path(name)


def _port_taken(proc: subprocess.Popen, log_path: Path | None, offset: int) -> bool:
    """uvicorn exits with 3 when the app fails to start too (a database it cannot open): only a
    port taken meanwhile is worth another try, on another port."""
    if proc.poll() != UVICORN_STARTUP_FAILED:
        return False
    if log_path is None:  # no way to tell: try another port (the start-up deadline bounds it)
        return True
    with open(log_path, "rb") as log:
        log.seek(offset)
        said = log.read().decode("utf-8", "replace").lower()
    return "address already in use" in said


def _answers(
    server, proc: subprocess.Popen, log_path: Path | None, offset: int, timeout: float, deadline: float
) -> bool:
    """The server answers; False while it starts; ConfigError when it exited or took too long."""
    from hubpress.orchestration.server import failure_cause, is_healthy

    if is_healthy(server.api_url):
        return True
    code = proc.poll()
    if code is not None and not _port_taken(proc, log_path, offset):
        cause = (log_path and failure_cause(log_path, offset)) or f"it exited with code {code}"
        where = f" (log: {log_path})" if log_path else ""
        raise ConfigError(f"Prefect's temporary server could not start: {cause}{where}. {WHAT_TO_DO}")
    if time.monotonic() > deadline:
        cause = log_path and failure_cause(log_path, offset)
        raise ConfigError(
            f"Prefect's temporary server did not answer within {timeout:.0f} s (the machine may be busy)"
            + (f"; its last line: {cause}" if cause else "")
            + ". Start one that every command reuses with `hubpress server start`, or raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS."
        )
    return False
