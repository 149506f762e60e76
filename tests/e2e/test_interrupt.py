"""Ctrl-C during `hubpress publish-dataset`, as a terminal sends it (SIGINT to the whole process
group), once the upload has started: the command stops, says in one line that it was interrupted
and what state the repo is in, exits 130, deletes the empty private repo it had created, and
leaves no process behind (its temporary Prefect server included)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from hubpress.testdata.synth import write_dataset
from tests.commands.test_first_hour import survivors
from tests.conftest import WRITE_TOKEN

# The request that starts a shard's upload: Xet's write token, or the LFS batch on the LFS path.
UPLOAD_STARTS = r"xet-write-token|/info/lfs/objects/batch"


def _publish_held_at_its_upload(tmp_path, hub, repo: str, seed: int, stdout) -> tuple[subprocess.Popen, str]:
    """`hubpress publish-dataset` of a small dataset to `repo`, in its own process group (as a
    terminal's foreground job), whose upload's first request the test Hub holds, so the run is
    surely uploading when Ctrl-C comes. Returns the process and the marker its children carry."""
    write_dataset(tmp_path / "src", samples=4, test_fraction=0.0, image_size=16, seed=seed)
    hub.arm_fault(UPLOAD_STARTS, "stall", stall_seconds=8)
    marker = uuid.uuid4().hex
    env = {
        **os.environ,
        "HF_TOKEN": WRITE_TOKEN,
        "HUBPRESS_TEST_MARKER": marker,
        "HUBPRESS_STAGING": str(tmp_path / "staging"),
        "HUBPRESS_CACHE_DIR": str(tmp_path / "cache"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubpress.commands.cli", "publish-dataset", str(tmp_path / "src"), repo],
        env=env,
        cwd=tmp_path,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    return proc, marker


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_during_the_upload_stops_tidily(tmp_path, hub, sig, code, word):
    """SIGTERM (`kill`, timeout(1), a supervisor stopping the job) is handled as Ctrl-C is, exit 143:
    it killed the process inside Prefect's crash handling, leaving the empty repo, Prefect's crash
    record as the only word, and the temporary Prefect server running."""
    repo = f"alice/interrupted-{uuid.uuid4().hex[:8]}"
    proc, marker = _publish_held_at_its_upload(tmp_path, hub, repo, seed=21, stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not hub.stats.faults:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.2)
        assert hub.head("dataset", repo) is not None  # created by this run, still empty
        # Ctrl-C reaches the terminal's whole process group; SIGTERM the command's process alone.
        os.killpg(proc.pid, sig) if sig == signal.SIGINT else os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == code, err
    said = [line for line in err.splitlines() if line.strip() and not line.startswith("Prefect: ")]
    assert said == [
        f"{word}: nothing was committed; the empty repo {repo} (dataset) this run had created was deleted."
    ], err
    assert out == ""
    assert hub.head("dataset", repo) is None
    assert survivors(marker) == []


@pytest.mark.usefixtures("prefect_harness")
def test_ctrl_c_during_an_api_upload_raises_keyboard_interrupt_and_tidies(tmp_path, hub, monkeypatch):
    """The same from a script: hubpress.api stops promptly, deletes the empty repo it created, says
    so on stderr, and lets KeyboardInterrupt go on, as any Python call does on Ctrl-C.

    stderr is a StringIO that outlives the test, not capfd's: when this is the process's first flow
    run, Prefect's console handler keeps the stream it found, and a later test's flow would write
    to a closed capfd file ("--- Logging error ---" in that test's stderr)."""
    import contextlib
    import io
    import threading

    from hubpress import api

    write_dataset(tmp_path / "src", samples=4, test_fraction=0.0, image_size=16, seed=22)
    repo = f"alice/interrupted-api-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    hub.arm_fault(UPLOAD_STARTS, "stall", stall_seconds=8)

    def press_ctrl_c_once_uploading() -> None:
        deadline = time.monotonic() + 300
        while not hub.stats.faults and time.monotonic() < deadline:
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)  # to the main thread, where the API call runs

    presser = threading.Thread(target=press_ctrl_c_once_uploading, daemon=True)
    presser.start()
    stderr = io.StringIO()
    with pytest.raises(KeyboardInterrupt), contextlib.redirect_stderr(stderr):
        api.upload_editing_dataset(str(tmp_path / "src"), repo, token=WRITE_TOKEN)
    presser.join(timeout=5)
    assert hub.stats.faults, "the upload never started"
    err = stderr.getvalue()
    assert (
        f"hubpress: interrupted: nothing was committed; the empty repo {repo} (dataset) this run had created was deleted."
        in err.splitlines()
    ), err
    assert hub.head("dataset", repo) is None


def test_a_second_ctrl_c_after_the_interrupted_line_prints_no_traceback(tmp_path, hub):
    """An impatient user presses Ctrl-C again and again once the `interrupted:` line is shown, while the
    process is still exiting (stopping its temporary Prefect server in an atexit hook): that second
    Ctrl-C must not add a traceback under the one line, nor leave the server running."""
    import threading

    repo = f"alice/interrupted-twice-{uuid.uuid4().hex[:8]}"
    proc, marker = _publish_held_at_its_upload(tmp_path, hub, repo, seed=23, stdout=subprocess.DEVNULL)
    lines: list[str] = []
    said = threading.Event()

    def read_stderr() -> None:
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("interrupted:"):
                said.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while not hub.stats.faults:
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        assert said.wait(timeout=300), "".join(lines)
        while proc.poll() is None:  # Ctrl-C again and again, as an impatient user does, while it exits
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.1)
            assert time.monotonic() < deadline + 300, "".join(lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert [line for line in err.splitlines() if line.startswith("interrupted:")] == [
        f"interrupted: nothing was committed; the empty repo {repo} (dataset) this run had created was deleted."
    ], err
    assert survivors(marker) == []
