"""Refresh throughput and memory: 20,000 upstream rows, a caption column and a quality filter.

Compares, in one run and on the same parquet data:
  hubpress            two phases over the parquet file: metadata columns for every row, then image
                      bytes only from the row groups that hold survivors
  hubpress-streaming  rows as they arrive, one row group at a time, bounded memory
  simpletuner-style   what SimpleTuner's backend does: Dataset.filter over full rows (every image
                      decoded by the Image feature), then dataset[idx] per row to extract captions

Each mode runs in its own process so that its peak RSS is its own. Prints a table, then the
streaming mode's peak RSS for several dataset sizes (it should stay flat).
Usage: .venv/bin/python -m bench.bench_refresh [--rows 20000] [--size 192] [--stream-sizes 5000,20000,40000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = {
    "id": "bench",
    "type": "huggingface",
    "dataset_name": "bench/parquet",
    "caption_column": "caption",
    "huggingface": {
        "filter_func": {
            "quality_thresholds": {"aesthetic_score": 5.0},
            "quality_column": "quality_assessment",
        }
    },
}


def make_parquet(path: Path, rows: int, size: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features, Image, Value
    from PIL import Image as PILImage

    rng = random.Random(0)
    # 64 distinct JPEGs reused across rows: realistic decode cost without minutes of encoding.
    jpegs = []
    for k in range(64):
        img = PILImage.effect_noise((size, size), 40 + k).convert("RGB")
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        jpegs.append(buf.getvalue())
    features = Features(
        {
            "image": Image(),
            "caption": Value("string"),
            "quality_assessment": {"aesthetic_score": Value("float64"), "clip_score": Value("float64")},
        }
    )
    schema = features.arrow_schema
    writer = pq.ParquetWriter(path, schema)
    batch = 2000
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        table = pa.table(
            {
                "image": [{"bytes": jpegs[(start + i) % 64], "path": None} for i in range(n)],
                "caption": [f"caption of row {start + i}" if (start + i) % 50 else None for i in range(n)],
                "quality_assessment": [
                    {"aesthetic_score": rng.uniform(0, 10), "clip_score": rng.random()} for _ in range(n)
                ],
            },
            schema=schema,
        )
        writer.write_table(table)
    writer.close()


def run_mode(mode: str, parquet: str) -> dict:
    from datasets import load_dataset

    from hubpress.refresh.config import parse_refresh_config
    from hubpress.refresh.upstream import read_dataset

    start = time.perf_counter()
    if mode == "hub-streaming":  # a full streaming read from the Hub-protocol server, as a refresh does
        from hubpress.refresh.upstream import read_huggingface

        cfg = parse_refresh_config({**CONFIG, "streaming": True, "dataset_name": parquet}).backends[0]
        read = read_huggingface(cfg, token=os.environ["HF_TOKEN"], use_cache=False)
        kept = sum(1 for _ in read.rows())
        result = {"kept": kept, "seen": read.report.seen}
    elif mode in ("hubpress", "hubpress-streaming"):
        cfg = parse_refresh_config({**CONFIG, "streaming": mode == "hubpress-streaming"}).backends[0]
        # What load_upstream reads a Hub parquet dataset with (here a local file, as it is once
        # downloaded): streamed a row group at a time, or scanned in two phases.
        from hubpress.refresh.parquet_stream import ParquetStream

        ds = ParquetStream.open([parquet])
        read = read_dataset(ds, cfg, "bench", use_cache=False)
        kept = sum(1 for _ in read.rows())
        report = read.report
        result = {"kept": kept, "seen": report.seen}
    else:
        ds = load_dataset("parquet", data_files=parquet, split="train")
        thresholds = CONFIG["huggingface"]["filter_func"]["quality_thresholds"]

        def filter_func(item):  # SimpleTuner's builder filter, over the full (decoded) item
            quality = item.get("quality_assessment", {})
            if not quality:
                return False
            return all(quality.get(m, 0) >= t for m, t in thresholds.items())

        filtered = ds.filter(filter_func, num_proc=None)
        kept = 0
        for idx in range(len(filtered)):  # _extract_captions_to_dict: dataset[idx] per row
            item = filtered[idx]
            item["image"].size  # noqa: B018 - the decoded PIL image is what SimpleTuner gets
            if item.get("caption"):
                kept += 1
        result = {"kept": kept, "seen": len(ds)}
    result["seconds"] = round(time.perf_counter() - start, 2)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument(
        "--stream-sizes", default="5000,20000,40000", help="row counts for the streaming memory table"
    )
    parser.add_argument("--mode")
    parser.add_argument("--parquet")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.parquet)))
        return
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    with tempfile.TemporaryDirectory(prefix="bench-refresh-") as tmp:
        parquet = Path(tmp) / "train.parquet"
        t0 = time.perf_counter()
        make_parquet(parquet, args.rows, args.size)
        print(
            f"dataset: {args.rows} rows, {args.size}px JPEGs, "
            f"{parquet.stat().st_size / 1e6:.1f} MB parquet (built in {time.perf_counter() - t0:.1f}s)"
        )
        print(f"{'mode':<20} {'seconds':>8} {'peak RSS MB':>12} {'kept':>7}")
        for mode in ("hubpress", "hubpress-streaming", "simpletuner-style"):
            env_cache = {"HF_DATASETS_CACHE": str(Path(tmp) / f"cache-{mode}")}
            proc = subprocess.run(
                [sys.executable, __file__, "--mode", mode, "--parquet", str(parquet)],
                capture_output=True,
                text=True,
                env={**os.environ, **env_cache},
            )
            if proc.returncode:
                print(f"{mode:<20} failed: {proc.stderr.strip().splitlines()[-1]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{mode:<20} {r['seconds']:>8} {r['peak_rss_mb']:>12} {r['kept']:>7}")

        # Streaming peak memory against dataset size: it should stay flat. Read from a local file,
        # and from the project's Hub-protocol server (HfFileSystem range requests), as a refresh does.
        from huggingface_hub import HfApi

        from tests.hubserver import HubServer

        token = "hf_benchwrite_0123456789"
        server = HubServer(data_dir=Path(tmp) / "hub", tokens={token: ("bench", "write")})
        server.start()
        hub_env = {
            **os.environ,
            "HF_ENDPOINT": server.url,
            "HF_TOKEN": token,
            "HF_HOME": str(Path(tmp) / "hf-home"),
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }
        try:
            print(
                f"\n{'rows':>7} {'parquet MB':>11} {'local s':>8} {'local RSS MB':>13} {'Hub s':>6} {'Hub RSS MB':>11}"
            )
            for rows in [int(x) for x in args.stream_sizes.split(",") if x]:
                path = Path(tmp) / f"size-{rows}.parquet"
                make_parquet(path, rows, args.size)
                name = f"bench/stream-{rows}"
                api = HfApi(endpoint=server.url, token=token)
                api.create_repo(name, repo_type="dataset")
                api.upload_file(
                    path_or_fileobj=str(path),
                    path_in_repo="data/train-00000-of-00001.parquet",
                    repo_id=name,
                    repo_type="dataset",
                )
                figures = []
                for mode, where, env in (
                    ("hubpress-streaming", str(path), None),
                    ("hub-streaming", name, hub_env),
                ):
                    proc = subprocess.run(
                        [sys.executable, __file__, "--mode", mode, "--parquet", where],
                        capture_output=True,
                        text=True,
                        env=env,
                        cwd=Path(__file__).resolve().parents[1],
                    )
                    if proc.returncode:
                        raise SystemExit(f"{mode} failed: {proc.stderr.strip().splitlines()[-1]}")
                    figures.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                local, hub = figures
                print(
                    f"{rows:>7} {path.stat().st_size / 1e6:>11.0f} {local['seconds']:>8} "
                    f"{local['peak_rss_mb']:>13} {hub['seconds']:>6} {hub['peak_rss_mb']:>11}"
                )
                path.unlink()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
