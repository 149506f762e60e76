"""Intake figures: discovery time and peak memory, validation throughput, discovery on S3.

    .venv/bin/python bench/bench_intake.py                  # everything (writes ~1 GB of tiny files)
    .venv/bin/python bench/bench_intake.py --sizes 10000 --skip-s3

Discovery = one listing of the source + pure matching (hubpress.sources.intake.discover_source), each
case measured in a fresh subprocess so its peak RSS (ru_maxrss) is its own. Trees are generated
with hubpress.testdata.synth (8x8 images, repeated bytes) under --workdir and kept for later runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _tree(workdir: Path, layout: str, samples: int) -> Path:
    from hubpress.testdata.synth import write_dataset

    root = workdir / f"{layout}-{samples}"
    marker = root / ".complete"
    if not marker.exists():
        t = time.perf_counter()
        write_dataset(root, layout=layout, samples=samples, image_size=8, repeat_bytes=True, seed=1)
        marker.write_text("ok")
        print(
            f"  (wrote {layout} tree of {samples:,} samples in {time.perf_counter() - t:.1f} s)", flush=True
        )
    return root


def _case_discover(source: str) -> dict:
    from hubpress.sources.intake import IntakeOptions, discover_source
    from hubpress.storage.files import open_storage

    storage = open_storage(source)
    t = time.perf_counter()
    found = discover_source(storage, IntakeOptions())
    seconds = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "samples": found.sample_count(), "max_rss_mb": rss_mb}


def _discover_in_subprocess(source: str, env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--case-discover", source],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_discovery(workdir: Path, sizes: list[int]) -> None:
    print("discovery, local (one listing + matching; fresh process per case)")
    for layout in ("folder", "csv"):
        for n in sizes:
            root = _tree(workdir, layout, n)
            r = _discover_in_subprocess(str(root))
            assert r["samples"] == n, r
            print(
                f"  {layout:6} {n:>7,} samples: {r['seconds']:6.2f} s, peak RSS {r['max_rss_mb']:6.0f} MB",
                flush=True,
            )


def bench_validation(workdir: Path, samples: int, size: int, workers: int) -> None:
    from hubpress.sources.intake import run_intake
    from hubpress.storage.hashcache import HashCache
    from hubpress.testdata.synth import write_dataset

    root = workdir / f"validate-{samples}-{size}"
    if not (root / ".complete").exists():
        write_dataset(root, samples=samples, image_size=size, masks=True, seed=2)
        (root / ".complete").write_text("ok")
    with tempfile.TemporaryDirectory() as tmp:
        cache = HashCache(Path(tmp) / "cache.sqlite")
        t = time.perf_counter()
        report = run_intake(str(root), workers=workers, cache=cache)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        again = run_intake(str(root), workers=workers, cache=cache)
        warm = time.perf_counter() - t
    images = report.stats["images_decoded"]
    mb = report.stats["bytes_read"] / 1e6
    print(
        f"validation, {samples:,} samples of {size}x{size} noise PNG (control, mask, target), {workers} processes"
    )
    print(
        f"  cold: {images:,} images decoded + hashed in {cold:.2f} s = {images / cold:,.0f} images/s ({mb / cold:.0f} MB/s)"
    )
    print(f"  warm (unchanged tree, cache): {warm:.2f} s, {again.stats['files_read']} files read")


def bench_s3(workdir: Path, samples: int) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    from hubpress.testdata.synth import write_dataset

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {
            "HUBPRESS_S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        os.environ.update(env)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        source = "s3://bench/ds"
        t = time.perf_counter()
        # test split only: prompt + control per sample (discovery cost is per listed object)
        write_dataset(source, samples=samples, test_fraction=1.0, image_size=8, repeat_bytes=True)
        print(f"discovery on S3 (moto server), {samples:,} samples = {2 * samples:,} objects")
        print(f"  (uploaded in {time.perf_counter() - t:.1f} s)")
        r = _discover_in_subprocess(source, env)
        assert r["samples"] == samples, r
        print(
            f"  {r['seconds']:.2f} s ({2 * samples / r['seconds']:,.0f} objects/s listed), peak RSS {r['max_rss_mb']:.0f} MB"
        )
    finally:
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "hubpress-bench-intake"))
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--validate-samples", type=int, default=1000)
    p.add_argument("--validate-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--s3-samples", type=int, default=10000)
    p.add_argument("--skip-s3", action="store_true")
    p.add_argument("--case-discover", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case_discover:
        print(json.dumps(_case_discover(args.case_discover)))
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    bench_discovery(workdir, [int(x) for x in args.sizes.split(",") if x])
    bench_validation(workdir, args.validate_samples, args.validate_size, args.workers)
    if not args.skip_s3:
        bench_s3(workdir, args.s3_samples)


if __name__ == "__main__":
    main()
