"""What a person at the terminal sees: log lines above the progress bar, not through it; a Dask
run without distributed's chatter; no Prefect telemetry from any entry point."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from hubpress.orchestration import artifacts
from tests.conftest import harness_api


def test_log_lines_print_through_the_live_bar_and_the_console_comes_back():
    import prefect.main  # noqa: F401  (Prefect's logging handlers)
    from prefect.logging.handlers import PrefectConsoleHandler

    handler = PrefectConsoleHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    own = handler.console
    artifacts.show_terminal_progress(True)
    try:
        progress = artifacts.Progress(2, "Building 2 shard(s)")
        assert progress._bar is not None
        # While the bar is live, log lines go through its console, which draws them above it.
        assert handler.console is progress._bar.console
        assert progress._bar.console.stderr  # the bar never writes into stdout
        progress.advance()
        assert handler.console is progress._bar.console
        progress.advance()
        assert handler.console is own
    finally:
        artifacts.show_terminal_progress(False)
        root.removeHandler(handler)


def test_a_dask_runner_keeps_distributed_to_warnings():
    from hubpress.orchestration.runners import TaskRunnerChoice, make_task_runner

    make_task_runner(TaskRunnerChoice(kind="dask"))
    assert logging.getLogger("distributed.scheduler").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("distributed.nanny").getEffectiveLevel() >= logging.ERROR
    assert os.environ["DASK_LOGGING__DISTRIBUTED"] == "warning"  # the worker processes


def test_importing_hubpress_turns_prefect_server_telemetry_off():
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_SERVER_ANALYTICS_ENABLED"}
    code = "import os, hubpress; print(os.environ.get('PREFECT_SERVER_ANALYTICS_ENABLED'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "false"


@pytest.mark.usefixtures("prefect_harness")
def test_a_publish_with_stderr_piped_leaves_no_blank_line_there(tmp_path):
    """With stderr not a terminal (a log, a caller's pipe) the shard bar is not drawn: its stop
    left a blank line there, e.g. between `Prefect: ...` and the one `interrupted:` line.
    (On the harness's Prefect server: a temporary server of its own, 8-16 s, is not the point.)"""
    from hubpress.testdata.synth import write_dataset

    write_dataset(tmp_path / "src", samples=3, test_fraction=0.0, image_size=16, seed=7)
    env = {
        **os.environ,
        **harness_api(),
        "HUBPRESS_STAGING": str(tmp_path / "staging"),
        "HUBPRESS_CACHE_DIR": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", "publish-dataset", "src", "./out"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "" not in done.stderr.splitlines(), repr(done.stderr)
