"""Write a large synthetic LoRA file in streaming fashion, then time its inspection and hashing.

    .venv/bin/python -m bench.bench_lora_weights --size-mb 1024

Prints figures (seconds, MB/s, peak RSS growth); asserts nothing. Inspection should cost
milliseconds whatever the size (it reads the header and lets safetensors mmap the file); hashing is
the sequential read the hash cache exists to avoid repeating.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import psutil

from hubpress.lora.weights import inspect_safetensors
from hubpress.storage.hashcache import sha256_file
from hubpress.testdata.synth_lora import write_streaming


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--modules", type=int, default=480)
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary directory)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "pytorch_lora_weights.safetensors"
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        write_streaming(path, target_bytes=args.size_mb * 1_000_000, rank=args.rank, modules=args.modules)
        os.sync()
        t_write = time.perf_counter() - t0
        rss_write = _rss_mb() - rss0
        size_mb = path.stat().st_size / 1e6

        t0 = time.perf_counter()
        info = inspect_safetensors(path)
        t_inspect = time.perf_counter() - t0
        rss_inspect = _rss_mb() - rss0

        t0 = time.perf_counter()
        sha256_file(path)
        t_hash = time.perf_counter() - t0

        print(
            f"file: {size_mb:.0f} MB, {info.tensor_count} tensors, rank {info.rank}, {info.parameter_count:,} params"
        )
        print(
            f"write (streamed): {t_write:.2f} s ({size_mb / t_write:.0f} MB/s), RSS growth {rss_write:.0f} MB"
        )
        print(f"inspect (header + safe_open): {t_inspect * 1000:.1f} ms, RSS growth {rss_inspect:.0f} MB")
        print(f"sha256: {t_hash:.2f} s ({size_mb / t_hash:.0f} MB/s)")


if __name__ == "__main__":
    main()
