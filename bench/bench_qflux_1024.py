"""hubpress at the sizes users publish: 1024 px images in the qflux layout, on loopback and on a
shaped link, against the reference and against the floor.

    .venv/bin/python -m bench.bench_qflux_1024                          # 100 samples, both links
    .venv/bin/python -m bench.bench_qflux_1024 --samples 4 --size 64 --lora-mb 2    # smoke test
    .venv/bin/python -m bench.bench_qflux_1024 --samples 1000 --links loopback --skip-reference \\
        --lora-mb 0 --repeat-bytes                                  # memory as the dataset grows

Each sample is a control, a second control, a mask and a target (noise PNGs, so they do not
compress away). For each link (loopback; `--latency-ms 50 --mbytes-per-s 40` on the
Hub-protocol server) it prints:
- the reference: our own reduction of what qflux's `upload_editing_dataset` does (rows of image
  paths with the editing Features, `DatasetDict.push_to_hub`), timed inside its process;
- hubpress's first publish (a fresh repo, staging and caches), timed inside its process after
  Prefect is connected, with its peak RSS;
- the floors: the read-and-sha256 time of the source, and (shaped link only) the bytes hubpress
  sent divided by the link rate plus the fixed cost of a publish on that link (a one-sample
  publish, timed in the same process), and each figure as a ratio to the reference and the floor;
- a phase breakdown of the first publish from its Prefect task runs (intake, build+hash, send,
  stage, commit, verify; a shard's sha256 is taken by its build task right after the file is
  written, so build and hash are one phase) and the overlap achieved: the summed busy time of the phases / the wall time between
  the first and the last task;
- an unchanged re-publish of the dataset and of a `--lora-mb` LoRA as whole CLI commands (process
  start to exit) against the running Prefect server, beside `python -c "import prefect"`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bench.common import REFERENCE, TIMED_PUBLISH_PRELUDE, Servers, measure, workdir

HUBPRESS = TIMED_PUBLISH_PRELUDE + textwrap.dedent(
    """
    with temporary_settings({{PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}}):
        warm_up(PublishDatasetParams(source={src!r}, target={repo!r}))
        # The fixed cost of a publish on this link: a one-sample dataset, end to end.
        start = time.perf_counter()
        publish_dataset(PublishDatasetParams(source={tiny!r}, target={repo!r} + "-tiny"))
        fixed = time.perf_counter() - start
        start = time.perf_counter()
        state = publish_dataset(PublishDatasetParams(source={src!r}, target={repo!r}), return_state=True)
        seconds = time.perf_counter() - start
        r = state.result()
    print(json.dumps({{"seconds": seconds, "fixed_seconds": fixed, "uploaded_bytes": r["uploaded_bytes"], "sent_bytes": r.get("sent_bytes", r["uploaded_bytes"]), "commit": r["commit"],
                      "flow_run_id": str(state.state_details.flow_run_id)}}))
    """
)

PHASES = {  # Prefect task name prefix -> phase
    "intake": "intake",
    "reuse-stage": "build",
    "build-": "build",  # build-<shard name>
    "seal-stage": "build",
    "preupload": "send",
    # The manifest, the card's facts and its preview, drawn after every shard is built and sent.
    "stage": "stage",
    "publish": "commit",
    "verify": "verify",
}


def generate(root: Path, samples: int, size: int, seed: int, repeat_bytes: bool = False) -> None:
    from hubpress.testdata.synth import write_dataset

    write_dataset(
        root,
        samples=samples,
        image_size=size,
        extra_controls=1,
        masks=True,
        seed=seed,
        repeat_bytes=repeat_bytes,
    )


def read_and_hash(root: Path) -> tuple[float, int]:
    """The source floor: read every byte once and sha256 it (`cat | sha256sum`)."""
    os.sync()
    start, total = time.perf_counter(), 0
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        with open(path, "rb", buffering=0) as fh:
            while chunk := fh.read(8 << 20):
                digest.update(chunk)
                total += len(chunk)
    return time.perf_counter() - start, total


def phases(prefect_url: str, flow_run_id: str) -> dict[str, float]:
    """Busy seconds per phase (union of the phase's task intervals) and the overlap achieved."""
    import httpx

    with httpx.Client(base_url=prefect_url, timeout=30) as client:
        runs = client.post(
            "/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200}
        ).json()
    intervals: dict[str, list[tuple[float, float]]] = {}
    from datetime import datetime

    for run in runs:
        if not run.get("start_time") or not run.get("end_time"):
            continue
        name = run["name"]
        phase = next((p for prefix, p in PHASES.items() if name.startswith(prefix)), None)
        if phase is None:
            continue
        start = datetime.fromisoformat(run["start_time"]).timestamp()
        end = datetime.fromisoformat(run["end_time"]).timestamp()
        intervals.setdefault(phase, []).append((start, end))
    out = {phase: _union(spans) for phase, spans in intervals.items()}
    every = [span for spans in intervals.values() for span in spans]
    if every:
        wall = max(e for _, e in every) - min(s for s, _ in every)
        out["overlap"] = sum(out.values()) / wall if wall > 0 else 1.0
    return out


def _union(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(spans):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def cli_seconds(args: list[str], env: dict[str, str], cwd: Path) -> float:
    """A whole command, process start to exit (what a scheduled run or a user pays). Run outside
    the checkout: there, `bench/...` would also name the local ./bench directory."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{args[:4]} failed: {done.stderr[-2000:]}")
    return seconds


def write_big_lora(path: Path, megabytes: int) -> None:
    """A LoRA of about `megabytes` MB: rank 64 F32 matrices over enough modules."""
    from hubpress.testdata.synth_lora import write_lora

    hidden, rank = 1024, 64
    per_module = 2 * rank * hidden * 4
    write_lora(path, rank=rank, hidden=hidden, dtype="F32", modules=max(1, megabytes * 10**6 // per_module))


def commit_read_timeout(src: Path, mbytes_per_s: float) -> int:
    """The silence hubpress must allow while the test Hub answers a commit on the shaped link.

    hf_xet writes to the test Hub's CAS, a local folder, at disk speed; the test Hub charges those
    bytes to the link when the commit naming them arrives, and answers once they have "crossed"
    it and it has rebuilt the files: a 1 GB commit is silent for 26 s at 40 MB/s, 10 GB for 260 s.
    On the Hub the bytes cross the link during the upload and a commit answers within the Hub's
    own 60 s bound, which is why HUBPRESS_READ_TIMEOUT is 60 s by default. The reference's client
    has no read timeout at all."""
    total = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    return max(60, round(60 + 2 * total / (mbytes_per_s * 1e6)))


def bench_link(args, work: Path, src: Path, label: str, hub_args: list[str], source_floor: float) -> dict:
    servers = Servers(work / label, hub_args=hub_args)
    try:
        env = servers.env()
        fresh = {
            **env,
            "HUBPRESS_STAGING": str(work / label / "staging"),
            "HUBPRESS_CACHE_DIR": str(work / label / "cache"),
        }
        if hub_args:
            fresh["HUBPRESS_READ_TIMEOUT"] = str(commit_read_timeout(src, args.mbytes_per_s))
        # The reference publishes to a server of its own (its own Xet CAS, the same link): the image
        # bytes inside its parquet would otherwise let hubpress's first upload deduplicate them.
        ref_env = {
            **env,
            "HF_DATASETS_CACHE": str(work / label / "hf-datasets"),
            "HF_ENDPOINT": servers.add_hub("reference-hub"),
        }
        tiny = work / "tiny"
        if not tiny.exists():
            generate(tiny, 1, 8, seed=2)
        if args.skip_reference:
            ref = {"seconds": float("nan"), "peak_rss_mb": 0}
        else:
            ref = measure(REFERENCE.format(src=str(src), repo="bench/reference"), ref_env)
        first = measure(HUBPRESS.format(src=str(src), tiny=str(tiny), repo="bench/hubpress"), fresh)
        split = phases(servers.prefect_url, first["flow_run_id"])
        again = cli_seconds(
            ["-m", "hubpress.commands.cli", "publish-dataset", str(src), "bench/hubpress"], fresh, work
        )

        lora_again = float("nan")
        if args.lora_mb:
            lora = work / label / "lora" / "pytorch_lora_weights.safetensors"
            write_big_lora(lora, args.lora_mb)
            cli_seconds(["-m", "hubpress.commands.cli", "publish-lora", str(lora), "bench/lora"], fresh, work)
            lora_again = cli_seconds(
                ["-m", "hubpress.commands.cli", "publish-lora", str(lora), "bench/lora"], fresh, work
            )
        prefect_import = cli_seconds(["-c", "import prefect"], env, work)
    finally:
        servers.stop()
    # The floor on a shaped link: the bytes sent at the link's rate, plus the fixed cost
    # of a publish against the running server on that link (the one-sample publish above).
    fixed = first["fixed_seconds"]
    # On Xet the bytes that crossed the link are those sent after deduplication (sent_bytes).
    link_floor = first["sent_bytes"] / (args.mbytes_per_s * 1e6) + fixed if hub_args else 0.0
    floor = max(source_floor, link_floor)
    print(
        f"\n## {label}"
        + (f" (--latency-ms {args.latency_ms} --mbytes-per-s {args.mbytes_per_s})" if hub_args else "")
    )
    print("\n| run | seconds | peak RSS MB | x reference | x floor |\n|---|---:|---:|---:|---:|")
    print(
        f"| reference (datasets push_to_hub) | {ref['seconds']:.2f} | {ref['peak_rss_mb']} | 1.00 | {ref['seconds'] / floor:.2f} |"
    )
    print(
        f"| hubpress first publish | {first['seconds']:.2f} | {first['peak_rss_mb']} | "
        f"{first['seconds'] / ref['seconds']:.2f} | {first['seconds'] / floor:.2f} |"
    )
    print(f"| floor: read + sha256 of the source | {source_floor:.2f} | | | |")
    print(f"| fixed cost: a one-sample publish on this link | {fixed:.2f} | | | |")
    if hub_args:
        print(
            f"| floor: {first['sent_bytes']:,} bytes / {args.mbytes_per_s} MB/s + fixed cost | {link_floor:.2f} | | | |"
        )
    print("\n| phase | busy seconds |\n|---|---:|")
    for phase in ("intake", "build", "send", "stage", "commit", "verify"):
        print(f"| {phase}{' (+hash)' if phase == 'build' else ''} | {split.get(phase, 0.0):.2f} |")
    print(
        f"\noverlap achieved: {split.get('overlap', 1.0):.2f} (summed phase busy time / wall time of the tasks)"
    )
    print("\n| unchanged re-publish (whole command) | seconds | x `import prefect` |\n|---|---:|---:|")
    print(f"| dataset | {again:.2f} | {again / prefect_import:.2f} |")
    print(f"| LoRA ({args.lora_mb} MB) | {lora_again:.2f} | {lora_again / prefect_import:.2f} |")
    print(f'| `python -c "import prefect"` | {prefect_import:.2f} | 1.00 |')
    return {
        "link": label,
        "reference": ref,
        "first": first,
        "phases": split,
        "source_floor_s": source_floor,
        "link_floor_s": link_floor,
        "unchanged_dataset_s": again,
        "unchanged_lora_s": lora_again,
        "import_prefect_s": prefect_import,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels")
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--mbytes-per-s", type=float, default=40)
    parser.add_argument("--lora-mb", type=int, default=300)
    parser.add_argument("--links", default="loopback,shaped")
    parser.add_argument(
        "--repeat-bytes",
        action="store_true",
        help="write one image per role and copy it to every sample (quick to generate; every file is "
        "still read, hashed and sent, but decoded once per content since #21: 4 decodes in all)",
    )
    parser.add_argument(
        "--skip-reference", action="store_true", help="hubpress only (e.g. the 1,000-sample memory check)"
    )
    args = parser.parse_args()
    work = workdir("hubpress-bench-qflux-")
    try:
        src = work / "src"
        generate(src, args.samples, args.size, seed=1, repeat_bytes=args.repeat_bytes)
        source_floor, total = read_and_hash(src)
        print(f"dataset: {args.samples} samples x 4 images at {args.size} px, {total / 1e6:.0f} MB")
        results = []
        for label in args.links.split(","):
            shaped = label == "shaped"
            hub_args = (
                ["--latency-ms", str(args.latency_ms), "--mbytes-per-s", str(args.mbytes_per_s)]
                if shaped
                else []
            )
            results.append(bench_link(args, work, src, label, hub_args, source_floor))
        print(json.dumps(results))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
