"""A local background Prefect server that hubpress commands reuse.

Prefect's ephemeral mode starts a temporary server in every process (8-16 s before the first
flow, and on a busy machine often not within its time limit). The first hubpress command that runs
a flow (or `hubpress server start`) starts one `prefect server start` (SQLite, its own PREFECT_HOME)
in the background and writes where it listens to a small JSON file in a user-level directory
(`server_dir()`); every later hubpress command of that user, from any directory, reads that file
at start and points PREFECT_API_URL at it, unless Prefect already has an API URL (PREFECT_API_URL,
a Prefect profile). Runs then start in well under a second and appear in the server's UI.
HUBPRESS_PREFECT_SERVER=temporary keeps Prefect's own per-process server instead (CI, tests).

The port is remembered in the same directory, so the address stays the same across restarts and
`hubpress server env` can print one export line for `prefect`, workers and trainers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from hubpress._env import pid_alive as _pid_alive
from hubpress.errors import ConfigError
from hubpress.settings import hubpress_home

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200
# HUBPRESS_PREFECT_SERVER: "auto" (default) starts the local server on first use; "temporary"
# leaves commands on Prefect's per-process temporary server.
SERVER_MODE_VAR = "HUBPRESS_PREFECT_SERVER"
# `prefect server start` needs 6-12 s on a quiet machine; leave room for a busy one.
START_TIMEOUT_S = 120.0
HEALTH_TIMEOUT_S = 1.0


def server_dir() -> Path:
    """Where the local server keeps its PREFECT_HOME, database, log and state file: one place per
    user, so every hubpress command finds it whatever its working directory.

    HUBPRESS_PREFECT_DIR when set, else HUBPRESS_HOME/prefect (by default
    ~/.local/state/hubpress/prefect)."""
    explicit = os.environ.get("HUBPRESS_PREFECT_DIR")
    if explicit:
        return Path(explicit).expanduser().absolute()
    return hubpress_home() / "prefect"


@dataclass(frozen=True)
class LocalServer:
    """A running local Prefect server, as recorded in its state file."""

    url: str  # the API URL, ending in /api
    pid: int
    home: str
    log: str

    @property
    def ui_url(self) -> str:
        return self.url.removesuffix("/api")

    @property
    def port(self) -> int:
        from urllib.parse import urlparse

        return urlparse(self.url).port or 80


def state_file(base: Path | None = None) -> Path:
    return (base or server_dir()) / "server.json"


def read_state(base: Path | None = None) -> LocalServer | None:
    path = state_file(base)
    try:
        return LocalServer(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def is_healthy(api_url: str, timeout: float = HEALTH_TIMEOUT_S) -> bool:
    import httpx2 as httpx  # huggingface_hub's client, loaded already on the no-op path

    try:
        return httpx.get(f"{api_url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def running_server(base: Path | None = None, check_health: bool = True) -> LocalServer | None:
    """The recorded server if its process is alive (and answers, when check_health)."""
    server = read_state(base)
    if server is None or not _pid_alive(server.pid):
        return None
    if check_health and not is_healthy(server.url):
        return None
    return server


def configured_api_url() -> str | None:
    """The Prefect API the user chose: PREFECT_API_URL, else (once Prefect is loaded) the value of
    Prefect's own setting, which also comes from a Prefect profile or a test harness."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if "prefect" in sys.modules:
        from prefect.settings import PREFECT_API_URL

        return PREFECT_API_URL.value() or None
    return None


def autostart_enabled() -> bool:
    mode = os.environ.get(SERVER_MODE_VAR, "auto").strip().lower() or "auto"
    if mode not in ("auto", "temporary"):
        raise ConfigError(f"{SERVER_MODE_VAR}={mode!r}: expected 'auto' (the default) or 'temporary'.")
    return mode == "auto"


def api_url_for_commands(start: bool = True, announce=None, check: bool = True) -> str | None:
    """The Prefect API a command should use: the one the user configured, else the running local
    server's URL, else (with `start`, unless HUBPRESS_PREFECT_SERVER=temporary) the local server,
    started now and announced in one line through `announce`; else None (Prefect's temporary
    server, which `start` starts now in temporary mode). A local server's URL is exported to PREFECT_API_URL so flows and subprocesses see it
    (an address, not a secret)."""
    autostart_enabled()  # a value other than auto or temporary is a typo: said even when unused
    configured = configured_api_url()
    if configured:
        if start and check:  # training-finished (start=False) says a lost announcement itself
            check_configured_api()
        return configured
    server = running_server()
    if server is None:
        if start and not autostart_enabled():
            # Prefect's temporary server, started here so that a failure is one line and Ctrl-C
            # does not reach it (hubpress.orchestration.temporary_server).
            from hubpress.orchestration.temporary_server import start_temporary_server

            start_temporary_server()
        if not (start and autostart_enabled()):
            return None
        server, started = start_server()
        if started and announce is not None:
            announce(
                f"Started the local Prefect server at {server.ui_url} (later commands reuse it; "
                "`hubpress server stop` stops it)."
            )
    os.environ["PREFECT_API_URL"] = server.url
    return server.url


def check_configured_api() -> None:
    """A Prefect API the user configured answers, else one line (configured_api.check_answers).
    A publish asks api_url_for_commands(check=False) and this only before it makes a flow run:
    its unchanged path posts one event to the API, which proves as much, and the check's own
    connection and request were a twentieth of an unchanged LoRA publish (bench_overhead --noop)."""
    configured = configured_api_url()
    if configured:
        from hubpress.orchestration.configured_api import check_answers

        check_answers(configured)


@contextmanager
def prefect_api(url: str | None) -> Iterator[None]:
    """Make `url` Prefect's API for the enclosed code. Prefect reads its settings when it is first
    imported; if it already is, the setting is applied as a temporary override."""
    if url is None or "prefect" not in sys.modules:
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}):
        yield


def _port_free(host: str, port: int) -> bool:
    """Nothing listens on the port. SO_REUSEADDR, as the server itself binds: connections of a
    server just stopped (TIME_WAIT) do not make its remembered port look taken."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_env(home: Path, host: str, port: int) -> dict[str, str]:
    """The child's environment: its own PREFECT_HOME and SQLite database, no outside API URL.

    The UI learns the API's address from PREFECT_UI_API_URL, else from PREFECT_SERVER_API_HOST and
    _PORT (default 127.0.0.1:4200), not from --port: without these, a UI on another port would
    show another server's data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "PREFECT_UI_"))}
    env.update(
        {
            "PREFECT_SERVER_API_HOST": host,
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_UI_API_URL": f"http://{host}:{port}/api",
            "PREFECT_HOME": str(home),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "true",
        }
    )
    return env


def remembered_port(base: Path | None = None) -> int | None:
    """The port the local server used last (kept across stops), if any."""
    try:
        return int(((base or server_dir()) / "port").read_text().strip())
    except (OSError, ValueError):
        return None


def planned_api_url(base: Path | None = None, host: str = DEFAULT_HOST) -> str | None:
    """Where the local server listens, or will listen when started: its remembered port, else 4200.
    None when it is stopped and another process (another HUBPRESS_HOME's server) holds that port:
    the start would choose another, and that address is not this server's."""
    server = running_server(base)
    if server is not None:
        return server.url
    port = remembered_port(base) or DEFAULT_PORT
    return f"http://{host}:{port}/api" if _port_free(host, port) else None


@contextmanager
def _start_lock(base: Path) -> Iterator[None]:
    """One start at a time per state directory: two first commands at once start one server."""
    import fcntl

    with open(base / "start.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _choose_port(host: str, port: int | None, base: Path) -> int:
    """--port when given (it must be free), else the remembered port, else 4200; another free port
    only when that one is taken (and it is remembered from then on)."""
    if port is not None:
        if not _port_free(host, port):
            raise ConfigError(f"Port {port} on {host} is in use: pick another with --port, or omit it.")
        return port
    wanted = remembered_port(base) or DEFAULT_PORT
    return wanted if _port_free(host, wanted) else _free_port(host)


def start_server(
    host: str = DEFAULT_HOST,
    port: int | None = None,
    base: Path | None = None,
    timeout: float = START_TIMEOUT_S,
) -> tuple[LocalServer, bool]:
    """Start the local server in the background, or return the one already running.
    Returns (server, started_now). Port None: the remembered port, else 4200, when free."""
    base = base or server_dir()
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"The local Prefect server's directory {base} cannot be created: {exc.strerror}.")
    with _start_lock(base):
        existing = running_server(base)
        if existing is not None:
            return existing, False
        return _start_new(host, _choose_port(host, port, base), base, timeout), True


def failure_cause(log_path: Path, offset: int = 0) -> str | None:
    """The line of a server log that says why it stopped: the last `SomeError: message` line after
    `offset` (where this start's output begins), else its last line."""
    import re

    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            lines = [line.strip() for line in log.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return None
    lines = [line for line in lines if line]
    errors = [line for line in lines if re.match(r"^[\w.]*(Error|Exception|Exit)\b[^:]*: \S", line)]
    return (errors or lines or [None])[-1]


def _start_new(host: str, port: int, base: Path, timeout: float) -> LocalServer:
    home = base / "home"
    home.mkdir(parents=True, exist_ok=True)
    log_path = base / "server.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    proc = None
    try:
        # A Ctrl-C while the server is being started waits until its pid is known here.
        with _ctrl_c_held(), open(log_path, "ab") as log:
            # A new session: the server outlives this command and ignores its Ctrl-C.
            proc = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
                env=server_env(home, host, port),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        server = LocalServer(url=f"http://{host}:{port}/api", pid=proc.pid, home=str(home), log=str(log_path))
        _wait_until_healthy(server, proc, log_path, offset, timeout)
    except KeyboardInterrupt:
        # Ctrl-C before it answered: its own session misses the terminal's SIGINT, and no state
        # file names it yet, so `hubpress server stop` could never find it. Stop it here.
        if proc is not None:
            _kill_group(proc.pid)
        raise
    state_file(base).write_text(json.dumps(asdict(server), indent=2))
    (base / "port").write_text(f"{port}\n")
    return server


@contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives in the block, then hand it to the handler that was there.

    Starting the server is a fork and an exec: a Ctrl-C landing after the exec but before Popen
    returned (a busy machine leaves that window open for milliseconds) left a server running that
    no state file names and nothing would stop. Held here, it is raised where the pid is known.
    Only the main thread may set handlers; elsewhere there is no Ctrl-C to hold."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            signal.raise_signal(signal.SIGINT)


def _wait_until_healthy(server: LocalServer, proc, log_path: Path, offset: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not is_healthy(server.url):
        if proc.poll() is not None:
            cause = failure_cause(log_path, offset)
            raise ConfigError(
                f"The local Prefect server exited with code {proc.returncode} while starting"
                + (f": {cause}" if cause else "")
                + f" (log: {log_path})."
            )
        if time.monotonic() > deadline:
            _kill_group(proc.pid)
            cause = failure_cause(log_path, offset)
            raise ConfigError(
                f"The local Prefect server did not answer within {timeout:.0f} s"
                + (f"; its last line: {cause}" if cause else "")
                + f" (log: {log_path})."
            )
        time.sleep(0.25)


def _kill_group(pid: int, grace: float = 15.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: poll instead
            done = 0 if _pid_alive(pid) else pid
        if done:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_server(base: Path | None = None) -> LocalServer | None:
    """Stop the recorded server (its whole process group). Returns it, or None if none ran."""
    base = base or server_dir()
    server = read_state(base)
    if server is None:
        return None
    if _pid_alive(server.pid):
        _kill_group(server.pid)
    state_file(base).unlink(missing_ok=True)
    return server
