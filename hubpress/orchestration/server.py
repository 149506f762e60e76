"""A local background Prefect server that hubpress commands reuse.

Prefect's ephemeral mode starts a temporary server in every process (8-16 s before the first
flow). `hubpress server start` runs one `prefect server start` (SQLite, its own PREFECT_HOME) in the
background and writes where it listens to a small JSON file in a user-level directory
(`server_dir()`); every later hubpress command of that user, from any directory, reads that file
at start and points PREFECT_API_URL at it, unless the user has set PREFECT_API_URL themselves. Runs then start in well under a second and appear in the server's UI.
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

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200
# `prefect server start` needs 6-12 s on a quiet machine; leave room for a busy one.
START_TIMEOUT_S = 120.0
HEALTH_TIMEOUT_S = 1.0


def server_dir() -> Path:
    """Where the local server keeps its PREFECT_HOME, database, log and state file: one place per
    user, so every hubpress command finds it whatever its working directory.

    HUBPRESS_PREFECT_DIR when set, else $XDG_STATE_HOME/hubpress/prefect (by default
    ~/.local/state/hubpress/prefect)."""
    explicit = os.environ.get("HUBPRESS_PREFECT_DIR")
    if explicit:
        return Path(explicit).expanduser().absolute()
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home).expanduser().absolute() / "hubpress" / "prefect"


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
    import httpx

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


def api_url_for_commands() -> str | None:
    """The Prefect API a command should use: PREFECT_API_URL when set, else the running local
    server's URL (exported to PREFECT_API_URL so flows and subprocesses see it), else None
    (Prefect's ephemeral mode)."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    server = running_server()
    if server is None:
        return None
    os.environ["PREFECT_API_URL"] = server.url
    return server.url


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
    with socket.socket() as sock:
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


def start_server(
    host: str = DEFAULT_HOST,
    port: int | None = None,
    base: Path | None = None,
    timeout: float = START_TIMEOUT_S,
) -> tuple[LocalServer, bool]:
    """Start the local server in the background, or return the one already running.
    Returns (server, started_now). Port None: 4200 when free, else any free port."""
    base = base or server_dir()
    existing = running_server(base)
    if existing is not None:
        return existing, False
    if port is None:
        port = DEFAULT_PORT if _port_free(host, DEFAULT_PORT) else _free_port(host)
    elif not _port_free(host, port):
        raise ConfigError(f"Port {port} on {host} is in use: pick another with --port, or omit it.")
    home = base / "home"
    home.mkdir(parents=True, exist_ok=True)
    log_path = base / "server.log"
    with open(log_path, "ab") as log:
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
    deadline = time.monotonic() + timeout
    while not is_healthy(server.url):
        if proc.poll() is not None:
            raise ConfigError(
                f"The Prefect server exited with code {proc.returncode} while starting; see {log_path}."
            )
        if time.monotonic() > deadline:
            _kill_group(proc.pid)
            raise ConfigError(f"The Prefect server did not answer within {timeout:.0f} s; see {log_path}.")
        time.sleep(0.25)
    state_file(base).write_text(json.dumps(asdict(server), indent=2))
    return server, True


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
