"""Prefect's temporary server (HUBPRESS_PREFECT_SERVER=temporary) that cannot open its database:
the command says why in one line, with what to do, as soon as the server gives up (not ~200 lines
of the server's traceback and then "did not start in time"), and leaves no process behind."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from hubpress.testdata.synth import write_dataset
from tests.commands.test_first_hour import survivors


def test_a_temporary_server_without_a_database_is_one_line(tmp_path):
    write_dataset(tmp_path / "src", samples=2, test_fraction=0.0, image_size=16, seed=3)
    (tmp_path / "a-file").write_text("not a directory")
    marker = uuid.uuid4().hex
    env = {
        **os.environ,
        "HUBPRESS_PREFECT_SERVER": "temporary",
        "PREFECT_HOME": str(tmp_path / "a-file" / "prefect"),  # nothing can be created there
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",  # a wait would fail the test's timeout
        "HUBPRESS_TEST_MARKER": marker,
        "TMPDIR": str(tmp_path / "tmp"),
    }
    (tmp_path / "tmp").mkdir()
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", "publish-dataset", str(tmp_path / "src"), "./out"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr[-3000:]
    (line,) = lines
    assert line.startswith("error: Prefect's temporary server could not start: ")
    assert "unable to open database file" in line and "PREFECT_HOME" in line
    assert "did not start in time" not in line and "busy" not in line
    assert not (tmp_path / "out").exists()
    # The log it names holds the server's own traceback.
    log = line.split("(log: ", 1)[1].split(")", 1)[0]
    assert log.startswith(str(tmp_path / "tmp")) and "Traceback" in Path(log).read_text()
    assert survivors(marker) == []
