"""The local Prefect server as a new user meets it: the first command starts it and says so in one
line, later commands reuse it, its address survives a restart, `server env` prints the export line,
`server status` fails without it, and a server that cannot start says why in one line.

Every test has its own HUBPRESS_HOME and writes the remembered port there first, so nothing here
touches the real user's server or port 4200.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import _free_port

HUBPRESS = str(Path(sys.executable).parent / "hubpress")


@pytest.fixture
def user(tmp_path):
    """A user's environment: no Prefect API configured, the default (auto) server mode, and a
    HUBPRESS_HOME whose remembered port is a free one."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_API_", "PREFECT_LOGGING_", "HUBPRESS_"))
    }
    home = tmp_path / "hubpress-home"
    (home / "prefect").mkdir(parents=True)
    port = _free_port()
    (home / "prefect" / "port").write_text(f"{port}\n")
    env.update({"HUBPRESS_HOME": str(home), "PREFECT_HOME": str(tmp_path / "prefect-client")})
    yield env, port, tmp_path
    subprocess.run([HUBPRESS, "server", "stop"], env=env, cwd=tmp_path, capture_output=True, timeout=120)


def _hubpress(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([HUBPRESS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_first_command_starts_the_server_and_later_ones_reuse_it(user):
    env, port, work = user
    write_dataset(work / "face_seg", samples=3, test_fraction=0.0, image_size=16, seed=5)
    address = f"http://127.0.0.1:{port}"

    first = _hubpress("publish-dataset", "face_seg", "./out/a", env=env, cwd=work)
    assert first.returncode == 0, first.stderr[-3000:]
    started = [line for line in first.stderr.splitlines() if "local Prefect server" in line]
    assert started == [
        f"Started the local Prefect server at {address} (later commands reuse it; "
        "`hubpress server stop` stops it)."
    ]
    assert "temporary server" not in first.stderr.lower()
    # State lives in HUBPRESS_HOME, not in the working directory.
    assert not (work / ".hubpress").exists()
    assert (Path(env["HUBPRESS_HOME"]) / "staging").is_dir()

    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    second = _hubpress("publish-dataset", "../face_seg", "../out/b", env=env, cwd=elsewhere)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Started the local Prefect server" not in second.stderr
    assert f"Prefect: runs are recorded at {address}" in second.stderr

    shown = _hubpress("server", "env", env=env, cwd=elsewhere)
    assert (shown.returncode, shown.stdout) == (0, f"export PREFECT_API_URL={address}/api\n")
    assert _hubpress("server", "status", env=env, cwd=work).returncode == 0

    assert _hubpress("server", "stop", env=env, cwd=work).returncode == 0
    stopped = _hubpress("server", "status", env=env, cwd=work)
    assert stopped.returncode == 1 and "No local Prefect server is running" in stopped.stdout
    # The address is remembered: `server env` still names it (exit 1: nothing listens now), and the
    # next start uses it again.
    shown = _hubpress("server", "env", env=env, cwd=work)
    assert (shown.returncode, shown.stdout) == (1, f"export PREFECT_API_URL={address}/api\n")
    again = _hubpress("server", "start", env=env, cwd=work)
    assert again.returncode == 0, again.stderr
    assert f"UI {address} " in again.stdout


def test_temporary_mode_starts_no_lasting_server(user):
    env, port, work = user
    write_dataset(work / "face_seg", samples=3, test_fraction=0.0, image_size=16, seed=5)
    # The session's Prefect home, as a user's ~/.prefect outlives their runs: its database was made
    # by an earlier temporary server of this run (a fresh one costs every migration, 4-9 s).
    env = {**env, "HUBPRESS_PREFECT_SERVER": "temporary", "PREFECT_HOME": os.environ["PREFECT_HOME"]}
    done = _hubpress("publish-dataset", "face_seg", "./out/a", env=env, cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Prefect: using a temporary server (HUBPRESS_PREFECT_SERVER=temporary)" in done.stderr
    assert _hubpress("server", "status", env=env, cwd=work).returncode == 1


def test_a_server_that_cannot_open_its_database_says_so_in_one_line(user):
    env, port, work = user
    # The database path is a directory: SQLite cannot open it, and the server exits while starting.
    (Path(env["HUBPRESS_HOME"]) / "prefect" / "home" / "prefect.db").mkdir(parents=True)
    write_dataset(work / "face_seg", samples=3, test_fraction=0.0, image_size=16, seed=5)
    done = _hubpress("publish-dataset", "face_seg", "./out/a", env=env, cwd=work)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, done.stderr[-3000:]
    assert errors[0].startswith("error: The local Prefect server exited with code")
    assert "unable to open database file" in errors[0]
    assert "busy" not in errors[0] and "Traceback" not in done.stderr


def _server_process(marker: str) -> bool:
    import psutil

    for found in psutil.process_iter(["cmdline"]):
        try:
            cmdline = found.info["cmdline"] or []
            if found.environ().get("HUBPRESS_TEST_MARKER") == marker and {"prefect", "server"} <= set(
                cmdline
            ):
                return True
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return False


def test_ctrl_c_while_the_server_starts_leaves_no_server_running(user):
    """Ctrl-C during `hubpress server start`, before the server answers: the server (started in its
    own session, so the terminal's SIGINT misses it) must not be left running unrecorded, where
    `hubpress server status` cannot see it and `hubpress server stop` cannot stop it."""
    import signal
    import uuid

    from tests.commands.test_first_hour import survivors

    env, _port, work = user
    marker = uuid.uuid4().hex
    proc = subprocess.Popen(
        [HUBPRESS, "server", "start"],
        env={**env, "HUBPRESS_TEST_MARKER": marker},
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job has
    )
    try:
        first = proc.stderr.readline()
        assert first.startswith("Starting a local Prefect server"), first
        deadline = time.monotonic() + 120
        while not _server_process(marker):  # Ctrl-C once the server process runs, before it answers
            assert proc.poll() is None and time.monotonic() < deadline, "the server never started"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        rest = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, rest
    assert [line for line in rest.splitlines() if line.strip()] == [
        "interrupted: hubpress server stopped before it finished; "
        "run `hubpress server status` to see whether the server is up."
    ], rest
    assert survivors(marker) == []
    # ...and it says no server is up: none may be.
    status = _hubpress("server", "status", env=env, cwd=work)
    assert status.returncode == 1, status.stdout


def test_a_ctrl_c_while_the_server_process_is_made_is_raised_once_its_pid_is_known():
    """The fork-and-exec window of `server start` (see _ctrl_c_held): a Ctrl-C in it is handed to
    the handler that was there only when the block has ended, where the new pid is known. The
    trial above sends its Ctrl-C at a random point and met that window once on a busy machine."""
    import signal

    from hubpress.orchestration.server import _ctrl_c_held

    # The handler the block hands to is Python's own (a KeyboardInterrupt), whatever an earlier
    # test in this process left behind (an ignored Ctrl-C raises nothing).
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        reached = []
        with pytest.raises(KeyboardInterrupt), _ctrl_c_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # a Python handler runs between bytecodes: it has had its chance
            reached.append("the block ended")
        assert reached == ["the block ended"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)
