"""An upstream whose file listing never ends: its `Link: rel="next"` names the page just read
(tests/hostileproxy.py's link_loop in front of the test Hub). A refresh lists the upstream's data
files through `datasets` and HfFileSystem, which follow a next link as named and read every page
before they give one entry: the refresh ends in one line, the looping page asked for once more at
most (hubpress.targets.listing_pages), never read forever. Run in a fresh process, so that
`datasets` reads HF_ENDPOINT (the proxy) when it is imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.refresh.test_lying_footer import _parquet, upstream_of_one_file

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("prefect_harness")]


@pytest.mark.parametrize("streaming", [False, True])
def test_an_upstream_listing_whose_next_page_is_itself_ends_in_one_line(
    hub, hostile_proxy, write_token, tmp_path, streaming
):
    from prefect.settings import PREFECT_API_URL

    repo, config = upstream_of_one_file(_parquet(), tmp_path, streaming, "listing-loop")
    hostile_proxy.arm(rf"^GET /api/datasets/{repo}/tree/", "link_loop", count=200)
    out = tmp_path / "out"

    run = subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", "refresh", str(config), str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **os.environ,
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            "HUBPRESS_HOME": str(tmp_path / "home"),
        },
        timeout=280,
    )

    loops = sum(1 for kind, _ in hostile_proxy.fired if kind == "link_loop")
    assert 1 <= loops <= 2, (loops, run.stderr)  # before: all 200, then the real page
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "never end" in errors[0], run.stderr
    assert not out.exists() or not any(out.rglob("*.parquet"))
