"""An upstream whose answers never end, through tests/hostileproxy.py in front of the test Hub:

- its file listing's `Link: rel="next"` names the page just read (link_loop). A refresh lists the
  upstream's data files through `datasets` and HfFileSystem, which follow a next link as named
  and read every page before they give one entry;
- the byte ranges a streaming refresh asks for (the parquet footer, each row group) are answered
  with bytes without end (endless_file). HfFileSystem reads each ranged answer whole into memory.

The refresh ends in one line, exit 1, having taken little more than it asked for
(hubpress.targets.listing_pages, hubpress.targets.listed_sizes). Each runs in a fresh process, so
that `datasets` reads HF_ENDPOINT (the proxy) when it is imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.refresh.test_lying_footer import _parquet, upstream_of_one_file

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("prefect_harness")]


def refresh(config, out, tmp_path) -> subprocess.CompletedProcess:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "HUBPRESS_HOME": str(tmp_path / "home")}
    return subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", "refresh", str(config), str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=280,
    )


def one_error(run: subprocess.CompletedProcess, out) -> str:
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr
    assert not out.exists() or not any(out.rglob("*.parquet"))
    return errors[0]


@pytest.mark.parametrize("streaming", [False, True])
def test_an_upstream_listing_whose_next_page_is_itself_ends_in_one_line(
    hub, hostile_proxy, write_token, tmp_path, streaming
):
    repo, config = upstream_of_one_file(_parquet(), tmp_path, streaming, "listing-loop")
    hostile_proxy.arm(rf"^GET /api/datasets/{repo}/tree/", "link_loop", count=200)
    out = tmp_path / "out"

    run = refresh(config, out, tmp_path)

    loops = sum(1 for kind, _ in hostile_proxy.fired if kind == "link_loop")
    assert 1 <= loops <= 2, (loops, run.stderr)  # before: all 200, then the real page
    assert "never end" in one_error(run, out)


@pytest.mark.parametrize(
    ("streaming", "said"),
    [(True, "Range"), (False, "lists")],
    ids=["byte-range-streaming", "whole-file-not-streaming"],
)
def test_an_upstream_file_answered_without_end_is_held_to_what_was_asked(
    hub, hostile_proxy, write_token, tmp_path, streaming, said
):
    """Streaming, each byte range is held to the range; without streaming, the parquet files
    downloaded whole into the upstream cache are held to the size the upstream lists."""
    repo, config = upstream_of_one_file(_parquet(), tmp_path, streaming, "file-endless")
    hostile_proxy.arm(rf"^GET /datasets/{repo}/resolve/[^/]+/data/", "endless_file", count=50)
    out = tmp_path / "out"

    run = refresh(config, out, tmp_path)

    assert hostile_proxy.fired, "the fault was never reached"
    # Kernel buffers take a few MB before the refusal closes the connection; before, all 300 MB
    # were taken (into memory for each ranged read, into the cache for a whole file).
    assert hostile_proxy.file_bytes_sent < 32 * 1024**2, hostile_proxy.file_bytes_sent
    assert said in one_error(run, out)


def test_a_file_datasets_downloads_itself_is_held_to_its_listed_size(
    hub, hostile_proxy, write_token, tmp_path
):
    """An upstream that is not parquet: `datasets` downloads its data file itself, on its own
    threads, and was bounded only by the deadline (the proxy's 300 MB went into the cache)."""
    import json

    rows = "".join(json.dumps({"caption": f"row {i}", "n": i}) + "\n" for i in range(20)).encode()
    repo, config = upstream_of_one_file(rows, tmp_path, False, "jsonl-endless", path="data/train.jsonl")
    hostile_proxy.arm(rf"^GET /datasets/{repo}/resolve/[^/]+/data/", "endless_file", count=50)
    out = tmp_path / "out"

    run = refresh(config, out, tmp_path)

    assert hostile_proxy.fired, "the fault was never reached"
    assert hostile_proxy.file_bytes_sent < 32 * 1024**2, hostile_proxy.file_bytes_sent
    assert "lists" in one_error(run, out)
