"""Conformance of the Hub-protocol server's shaped link (--latency-ms, --mbytes-per-s).

Nothing here measures time: the link's clock and sleep are injected (a fake clock that only moves
when the link sleeps), so the tests check what the link decided, exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from tests.conftest import WRITE_TOKEN
from tests.hubserver import HubServer
from tests.hubserver.link import MB, Link, TokenBucket


class FakeClock:
    """Time that passes only when someone sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def test_token_bucket_paces_bytes_to_the_rate_after_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate=1000, burst=100, clock=clock, sleep=clock.sleep)
    assert bucket.take(50) == 0  # within the burst: no wait
    for _ in range(19):
        bucket.take(50)
    # 1,000 bytes at 1,000 B/s, the first 100 free: 0.9 s of waiting, in total.
    assert clock.now == pytest.approx(0.9)
    assert bucket.bytes == 1000 and bucket.waited == pytest.approx(0.9)


def test_token_bucket_is_one_timeline_for_every_connection():
    clock = FakeClock()
    bucket = TokenBucket(rate=1000, burst=0, clock=clock, sleep=clock.sleep)
    # Two connections book 500 bytes each at the same instant: the second waits for the first.
    first, second = bucket.reserve(500), bucket.reserve(500)
    assert (first, second) == (pytest.approx(0.5), pytest.approx(1.0))
    # An idle link does not bank credit beyond the burst.
    clock.now = 10.0
    assert bucket.reserve(1000) == pytest.approx(1.0)


def test_link_rejects_nonsense_and_does_nothing_by_default():
    with pytest.raises(ValueError):
        TokenBucket(rate=0)
    with pytest.raises(ValueError):
        Link(latency_ms=-1)
    clock = FakeClock()
    idle = Link(clock=clock, sleep=clock.sleep)
    idle.before_response()
    idle.transfer(10 * MB)
    assert not idle.shaped and clock.sleeps == []


def test_server_adds_latency_to_every_response_and_paces_every_body(tmp_path):
    clock = FakeClock()
    link = Link(latency_ms=50, mbytes_per_s=1, clock=clock, sleep=clock.sleep)
    payload = os.urandom(300_000)
    (tmp_path / "w.bin").write_bytes(payload)
    with HubServer(tmp_path / "hub", tokens={WRITE_TOKEN: ("alice", "write")}, link=link) as server:
        api = HfApi(endpoint=server.url, token=WRITE_TOKEN)
        api.create_repo("alice/shaped", repo_type="model")
        api.upload_file(path_or_fileobj=str(tmp_path / "w.bin"), path_in_repo="w.bin", repo_id="alice/shaped")
        got = api.hf_hub_download("alice/shaped", "w.bin", cache_dir=str(tmp_path / "dl"))
        assert Path(got).read_bytes() == payload
        stats = server.stats

    assert link.responses == sum(stats.requests.values())  # one latency per response
    assert clock.sleeps.count(0.05) >= link.responses
    # Every LFS byte up and down went through the bucket (plus the JSON of every other request).
    assert stats.upload_bytes >= len(payload) and stats.download_bytes >= len(payload)
    assert link.bucket.bytes >= stats.upload_bytes + stats.download_bytes
    # Time passes only by the link's sleeps: the bodies took at least bytes / rate, less the burst.
    paced = sum(s for s in clock.sleeps if s != 0.05)
    assert paced == pytest.approx(link.bucket.waited)
    assert clock.now >= link.bucket.bytes / (1 * MB) - link.bucket.burst_s


def test_command_line_takes_latency_and_rate(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.hubserver",
            "--data",
            str(tmp_path),
            "--latency-ms",
            "5",
            "--mbytes-per-s",
            "100",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY http://127.0.0.1:")
        assert HfApi(endpoint=line.split()[1], token=False).list_models(limit=1) is not None
    finally:
        proc.terminate()
        proc.wait(30)
    bad = subprocess.run(
        [sys.executable, "-m", "tests.hubserver", "--data", str(tmp_path), "--mbytes-per-s", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--mbytes-per-s" in bad.stderr
