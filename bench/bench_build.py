"""Build time and peak memory of the dataset build, for several dataset sizes.

    .venv/bin/python bench/bench_build.py                       # 200, 1000, 3000 samples
    .venv/bin/python bench/bench_build.py --sizes 6500 --keep   # ~5 GB of shards

Each sample has two 256x256 noise PNG controls, a mask and a target (~0.8 MB). Sources are a
pool of distinct files that samples point into (so writing the source tree stays quick); every
row still carries its own copy of the bytes, so shards are full size. Each size is built in a
fresh process, so its peak RSS is its own: the figure that must stay flat as the dataset grows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POOL = 64  # distinct source files per role


def make_pool(src: Path, size: int) -> dict[str, list[tuple[str, int, str]]]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    pool: dict[str, list[tuple[str, int, str]]] = {}
    for role in ("control_0", "control_1", "mask", "target"):
        files = []
        for i in range(POOL):
            path = src / f"{role}_{i}.png"
            channels = 1 if role == "mask" else 3
            pixels = rng.integers(0, 256, (size, size, channels), dtype=np.uint8).squeeze()
            Image.fromarray(pixels).save(path, format="PNG", compress_level=1)
            data = path.read_bytes()
            files.append((str(path), len(data), hashlib.sha256(data).hexdigest()))
        pool[role] = files
    return pool


def child(args: argparse.Namespace) -> None:
    """Build one dataset size and print a JSON line of figures."""
    sys.path.insert(0, str(ROOT))
    from hubpress.shards.shards import plan_shards, write_shard
    from hubpress.sources.models import FileRef, Sample

    pool = json.loads(Path(args.pool).read_text())

    def ref(role: str, i: int) -> FileRef:
        uri, size, sha = pool[role][i % POOL]
        return FileRef(uri=uri, relpath=Path(uri).name, size=size, format="png", sha256=sha)

    samples = [
        Sample(
            id=f"sample{i:07d}",
            split="train",
            prompt=f"edit number {i}",
            controls=[ref("control_0", i), ref("control_1", i * 7)],
            mask=ref("mask", i * 3),
            target=ref("target", i * 5),
        )
        for i in range(args.samples)
    ]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    plans = plan_shards("train", samples, args.max_shard_size)
    out = Path(args.out)
    total = 0
    for plan in plans:
        built = write_shard(plan, out)
        total += built.size
    elapsed = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "samples": args.samples,
                "shards": len(plans),
                "bytes": total,
                "seconds": round(elapsed, 2),
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "rss_before_build_mb": round(rss_before / 1024, 1),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="200,1000,3000", help="comma-separated sample counts")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--max-shard-size", default="500MB")
    parser.add_argument("--workdir", default=None, help="where sources and shards go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the shards of the last size")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pool", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    work = Path(args.workdir or tempfile.mkdtemp(prefix="hubpress-bench-build-"))
    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    pool = make_pool(src, args.image_size)
    (work / "pool.json").write_text(json.dumps(pool))
    per_sample = sum(sum(f[1] for f in files) / len(files) for files in pool.values())
    print(f"# {args.image_size}x{args.image_size} noise PNG, 4 images a sample (~{per_sample / 1e6:.2f} MB)")
    print(
        f"{'samples':>8} {'data':>9} {'shards':>6} {'seconds':>8} {'MB/s':>7} {'peak RSS':>9} {'RSS at start':>13}"
    )
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        out = work / f"out-{n}"
        result = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--samples",
                str(n),
                "--pool",
                str(work / "pool.json"),
                "--out",
                str(out),
                "--max-shard-size",
                str(args.max_shard_size),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(result.stdout.strip().splitlines()[-1])
        rate = r["bytes"] / 1e6 / r["seconds"] if r["seconds"] else 0.0
        print(
            f"{r['samples']:>8} {r['bytes'] / 1e9:>7.2f}GB {r['shards']:>6} {r['seconds']:>8.1f} {rate:>7.0f} "
            f"{r['peak_rss_mb']:>7.0f}MB {r['rss_before_build_mb']:>11.0f}MB"
        )
        if not (args.keep and n == sizes[-1]):
            shutil.rmtree(out, ignore_errors=True)
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
