"""Throughput of the Hub-protocol test server with the real huggingface_hub client.

    .venv/bin/python -m bench.hubserver_throughput [--mb 64]

Prints MB/s for a basic LFS upload, a multipart LFS upload, a download, and the time of a no-op
re-upload (preupload only). Figures, not assertions: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=64, help="size of the test file in MiB")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hubserver-bench-"))
    port = _free_port()
    os.environ.update(
        HF_ENDPOINT=f"http://127.0.0.1:{port}",
        HF_HUB_DISABLE_XET="1",  # this bench measures the server's LFS endpoints
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HOME=str(work / "hf-home"),
    )
    from huggingface_hub import HfApi, hf_hub_download

    from tests.hubserver import HubServer

    token = "hf_bench_write"
    server = HubServer(work / "data", port=port, tokens={token: ("bench", "write")}, xet=False).start()
    try:
        api = HfApi(token=token)
        api.create_repo("bench/throughput")
        local, other = work / "payload.bin", work / "other.bin"  # distinct content: LFS dedups by sha256
        for path in (local, other):
            with open(path, "wb") as handle:
                for _ in range(args.mb):
                    handle.write(os.urandom(1024 * 1024))
        size_mb = local.stat().st_size / 1e6

        def timed(label: str, fn) -> float:
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            print(f"{label:<34} {elapsed:6.2f} s  {size_mb / elapsed:8.1f} MB/s")
            return elapsed

        server.multipart_threshold = 10**12
        timed("upload, basic LFS PUT", lambda: api.upload_file(
            path_or_fileobj=str(local), path_in_repo="basic.bin", repo_id="bench/throughput"))  # fmt: skip
        server.multipart_threshold, server.multipart_chunk_size = 1, 8 * 1024 * 1024
        timed("upload, multipart LFS (8 MiB parts)", lambda: api.upload_file(
            path_or_fileobj=str(other), path_in_repo="multi.bin", repo_id="bench/throughput"))  # fmt: skip
        timed("download, hf_hub_download", lambda: hf_hub_download(
            "bench/throughput", "basic.bin", cache_dir=work / "cache"))  # fmt: skip
        server.reset_stats()
        start = time.perf_counter()
        api.upload_file(path_or_fileobj=str(local), path_in_repo="basic.bin", repo_id="bench/throughput")
        stats = server.stats
        print(
            f"{'no-op re-upload':<34} {time.perf_counter() - start:6.2f} s  "
            f"(commits={stats.commits}, upload_bytes={stats.upload_bytes})"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
