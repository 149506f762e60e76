"""Refresh end to end without Prefect: what a scheduled run costs when upstream changed, and when not.

Starts the project's Hub-protocol server, pushes an upstream dataset (a caption column and a
quality dict), then times with the plain functions the flow wraps:
  first refresh    resolve sha -> read rows -> write shards -> stage -> publish to a local dir
  unchanged check  resolve sha + read the target's manifest.json (what a no-op night costs)
  rebuild          same upstream, another seed: the metadata cache is reused
  changed rows     upstream pushed again with --changed rows edited (image and caption): only the
                   rewritten upstream files are read, and only the shards holding the edited rows
                   are built, read again and sent (hubpress.refresh.shards, row_facts)
Prints a table, then the changed-rows refresh's work as a fraction of the first refresh's (time
and bytes written to the target), with what a refresh that rebuilt every shard would send.
At --rows 2000 --size 256 (16 KB JPEGs) the default 2MB shards give about 30 shards.
Usage: .venv/bin/python bench/bench_refresh_publish.py [--rows 5000] [--size 64] [--changed 20]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "hf_benchwrite_0123456789"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--changed", type=int, default=3, help="upstream rows edited for the last run")
    parser.add_argument("--max-shard-size", default="2MB")
    parser.add_argument(
        "--upstream-files",
        type=int,
        default=8,
        help="parquet files the upstream is pushed as (a large dataset is many)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-refresh-publish-"))
    port = _port()
    os.environ.update(
        {
            "HF_ENDPOINT": f"http://127.0.0.1:{port}",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HOME": str(tmp / "hf-home"),
            "HF_DATASETS_CACHE": str(tmp / "hf-datasets"),
            "HUBPRESS_CACHE_DIR": str(tmp / "cache"),
            "HUBPRESS_STAGING": str(tmp / "staging"),
            "HF_TOKEN": TOKEN,
        }
    )
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from datasets import Dataset, Features, Image, Value
    from PIL import Image as PILImage

    from hubpress.flows.params import RefreshParams
    from hubpress.flows.refresh_dataset import refresh_options
    from hubpress.refresh.card import render_refresh_card
    from hubpress.refresh.config import parse_refresh_config
    from hubpress.refresh.lineage import (
        config_fingerprint,
        stage_fingerprint,
        unchanged_manifest,
        upstream_revisions,
    )
    from hubpress.refresh.publish import build_refresh
    from hubpress.settings import get_settings
    from hubpress.shards.runs import RunStage, release_published
    from hubpress.shards.staging import Staging
    from hubpress.targets.publish import MANIFEST, open_target, publish_files
    from tests.hubserver import HubServer

    server = HubServer(data_dir=tmp / "hub", port=port, tokens={TOKEN: ("bench", "write")})
    server.start()
    try:
        rng = random.Random(0)
        jpegs = []
        for k in range(32):
            buf = io.BytesIO()
            PILImage.effect_noise((args.size, args.size), 40 + k).convert("RGB").save(buf, format="JPEG")
            jpegs.append(buf.getvalue())
        features = Features(
            {
                "image": Image(),
                "caption": Value("string"),
                "quality_assessment": {"aesthetic": Value("float64")},
            }
        )
        rows = {
            "image": [{"bytes": jpegs[i % 32], "path": None} for i in range(args.rows)],
            "caption": [f"row {i}" if i % 50 else None for i in range(args.rows)],
            "quality_assessment": [{"aesthetic": rng.uniform(0, 10)} for _ in range(args.rows)],
        }
        Dataset.from_dict(rows, features=features).push_to_hub(
            "bench/upstream", token=TOKEN, num_shards=args.upstream_files
        )
        # The rows a night edits, spread over the dataset; each gets another image and caption.
        edited = sorted(random.Random(1).sample(range(args.rows), min(args.changed, args.rows)))
        config = {
            "id": "up",
            "type": "huggingface",
            "dataset_name": "bench/upstream",
            "caption_column": "caption",
            "filter_func": {"quality_thresholds": {"aesthetic": 5.0}},
            "cache_dir": str(tmp / "meta"),
        }
        settings = get_settings()
        staging = Staging(settings.staging, settings)

        def refresh(seed: int, out: str = "out") -> tuple[float, dict, dict]:
            # CPU seconds of this process (the test Hub serves from a thread of it) beside the wall
            # clock: on a loaded machine the wall clock says more about the neighbours.
            cpu = time.process_time()
            params = RefreshParams(
                config=config, target=str(tmp / out), seed=seed, max_shard_size=args.max_shard_size
            )
            start = time.perf_counter()
            cfg = parse_refresh_config(params.config)
            target = open_target(params.target, "dataset", settings)
            revisions = upstream_revisions(cfg, TOKEN)
            fp = config_fingerprint(cfg, refresh_options(params))
            stage = stage_fingerprint(revisions, fp, seed)
            with RunStage(staging) as run:
                staged = build_refresh(
                    cfg,
                    refresh_options(params),
                    revisions,
                    fp,
                    stage,
                    staging,
                    TOKEN,
                    stage=run,
                    target=target,
                )
                outcome = publish_files(
                    target,
                    staged.files,
                    target_name=params.target,
                    message="bench",
                    card=lambda existing: render_refresh_card(existing, staged.card),
                )
                release_published(staging, run, [c.plan.key for c in staged.build_plan.choices])
            counts = staged.shard_counts(outcome.uploaded_files) | {"sent": outcome.uploaded_bytes}
            counts["cpu"] = time.process_time() - cpu
            return time.perf_counter() - start, staged.cache_reused, counts

        first, cache1, counts1 = refresh(0)
        params = RefreshParams(
            config=config, target=str(tmp / "out"), seed=0, max_shard_size=args.max_shard_size
        )
        start = time.perf_counter()
        cfg = parse_refresh_config(params.config)
        target = open_target(params.target, "dataset", settings)
        unchanged = unchanged_manifest(
            target.read_text(MANIFEST, "main"),
            upstream_revisions(cfg, TOKEN),
            config_fingerprint(cfg, refresh_options(params)),
        )
        check = time.perf_counter() - start
        rebuild, cache2, _ = refresh(1)
        refresh(0)  # back to seed 0: the target holds the first refresh's shards again
        for i in edited:
            rows["image"][i] = {"bytes": jpegs[(i + 7) % 32][:-2] + bytes([i % 251, 0xD9]), "path": None}
            rows["caption"][i] = f"row {i}, edited"
        Dataset.from_dict(rows, features=features).push_to_hub(
            "bench/upstream", token=TOKEN, num_shards=args.upstream_files
        )
        changed, _, counts = refresh(0)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"rows={args.rows} image={args.size}px (JPEG)  peak RSS {rss:.0f} MB")
        print(f"{'step':<34}{'seconds':>10}")
        print(f"{'first refresh (cache ' + ('reused' if cache1['up'] else 'built') + ')':<34}{first:>10.2f}")
        print(f"{'unchanged check (no-op night)':<34}{check:>10.3f}   unchanged={unchanged is not None}")
        print(
            f"{'rebuild, seed 1 (cache ' + ('reused' if cache2['up'] else 'built') + ')':<34}{rebuild:>10.2f}"
        )
        print(f"{f'{len(edited)} rows changed upstream':<34}{changed:>10.2f}")
        print()
        print(
            f"changed rows: {counts['shards_built']} of {counts['shards']} shards rebuilt "
            f"({counts['shards_reused']} reused), {counts['shards_sent']} sent"
        )
        print(f"  time  {changed / first:.2f} of the first refresh ({changed:.2f} s / {first:.2f} s)")
        print(
            f"  CPU   {counts['cpu'] / counts1['cpu']:.2f} of the first refresh's "
            f"({counts['cpu']:.2f} s / {counts1['cpu']:.2f} s)"
        )
        print(
            f"  bytes {counts['sent'] / counts1['sent']:.3f} of the first refresh's ({counts['sent']:,} / {counts1['sent']:,})"
        )
        print(
            f"  upstream media read {counts['source_bytes_read'] / counts1['source_bytes_read']:.2f} of the first's "
            "(the rows of the rewritten upstream files, then the rebuilt shards' rows again)"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
