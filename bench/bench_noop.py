"""An unchanged re-publish beside the reference's own no-op (part 3 of bench/bench_overhead.py).

    .venv/bin/python -m bench.bench_overhead --noop --lora-mb 300 --noop-samples 200 --repeats 3

Every figure is a whole process, start to exit (what a person or a cron job pays), against one
running Prefect server and the Hub-protocol server (bench.common.Servers):
- LoRA: `hubpress publish-lora` (CLI), `upload_lora_safetensors` (API), and the publish-lora flow
  called directly (what a served run pays: the check inside a flow run), against the reference,
  huggingface_hub's `upload_file` of the same file, which hashes it and skips the commit.
- dataset: `hubpress publish-dataset`, `upload_editing_dataset`, the publish-dataset flow, against
  the reference `DatasetDict.push_to_hub` of the same images (bench.common.REFERENCE), whose
  re-run re-reads every image, re-builds the parquet and skips the commit by its hash.
The floor is `python -c "from huggingface_hub import HfApi"`: both sides talk to the Hub with it.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bench.common import REFERENCE, Servers, workdir

LORA_API = "from hubpress.api import upload_lora_safetensors; upload_lora_safetensors({src!r}, {repo!r})"
LORA_FLOW = textwrap.dedent(
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from hubpress.flows.params import PublishLoraParams
    from hubpress.flows.publish_lora import publish_lora
    with temporary_settings({{PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}}):
        assert publish_lora(PublishLoraParams(src_path={src!r}, target={repo!r}))["unchanged"]
    """
)
LORA_REFERENCE = textwrap.dedent(
    """
    from huggingface_hub import HfApi
    api = HfApi()
    api.create_repo({repo!r}, exist_ok=True, private=True)
    api.upload_file(path_or_fileobj={src!r}, path_in_repo="pytorch_lora_weights.safetensors", repo_id={repo!r})
    """
)
DATASET_API = "from hubpress.api import upload_editing_dataset; upload_editing_dataset({src!r}, {repo!r})"
DATASET_FLOW = textwrap.dedent(
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from hubpress.flows.params import PublishDatasetParams
    from hubpress.flows.publish_dataset import publish_dataset
    with temporary_settings({{PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}}):
        assert publish_dataset(PublishDatasetParams(source={src!r}, target={repo!r}))["listing_unchanged"]
    """
)


def _seconds(args: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def _median(args: list[str], env: dict[str, str], cwd: Path, repeats: int) -> tuple[float, list[float]]:
    times = [_seconds(args, env, cwd) for _ in range(repeats)]
    return statistics.median(times), times


def compare_noops(args) -> None:
    from bench.bench_qflux_1024 import generate, write_big_lora

    work = workdir("hubpress-bench-noop-")
    servers = Servers(work)
    try:
        env = servers.env()
        cli = ["-m", "hubpress.commands.cli"]
        lora = work / "lora" / "pytorch_lora_weights.safetensors"
        lora.parent.mkdir()
        write_big_lora(lora, args.lora_mb)
        src = work / "dataset"
        generate(src, args.noop_samples, 256, seed=3)
        # The first publishes (untimed): afterwards every run below is a no-op.
        _seconds([*cli, "publish-lora", str(lora), "bench/noop-lora"], env, work)
        _seconds(["-c", LORA_REFERENCE.format(src=str(lora), repo="bench/ref-lora")], env, work)
        _seconds([*cli, "publish-dataset", str(src), "bench/noop-data"], env, work)
        _seconds(["-c", REFERENCE.format(src=str(src), repo="bench/ref-data")], env, work)

        n = args.repeats
        rows = {
            "lora": {
                "reference upload_file (hashes, skips)": _median(
                    ["-c", LORA_REFERENCE.format(src=str(lora), repo="bench/ref-lora")], env, work, n
                ),
                "hubpress publish-lora (CLI)": _median(
                    [*cli, "publish-lora", str(lora), "bench/noop-lora"], env, work, n
                ),
                "hubpress upload_lora_safetensors (API)": _median(
                    ["-c", LORA_API.format(src=str(lora), repo="bench/noop-lora")], env, work, n
                ),
                "publish-lora flow run (as a served run)": _median(
                    ["-c", LORA_FLOW.format(src=str(lora), repo="bench/noop-lora")], env, work, n
                ),
            },
            "dataset": {
                "reference push_to_hub (re-reads, skips)": _median(
                    ["-c", REFERENCE.format(src=str(src), repo="bench/ref-data")], env, work, n
                ),
                "hubpress publish-dataset (CLI)": _median(
                    [*cli, "publish-dataset", str(src), "bench/noop-data"], env, work, n
                ),
                "hubpress upload_editing_dataset (API)": _median(
                    ["-c", DATASET_API.format(src=str(src), repo="bench/noop-data")], env, work, n
                ),
                "publish-dataset flow run (as a served run)": _median(
                    ["-c", DATASET_FLOW.format(src=str(src), repo="bench/noop-data")], env, work, n
                ),
            },
        }
        floor = _median(["-c", "from huggingface_hub import HfApi"], env, work, n)[0]
        size = lora.stat().st_size
        data_mb = sum(p.stat().st_size for p in src.rglob("*") if p.is_file()) / 1e6
    finally:
        servers.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n3. Unchanged re-publish, whole process, median of {n}")
    print(f"   LoRA {size / 1e6:.0f} MB; dataset {args.noop_samples} samples x 256 px ({data_mb:.1f} MB)")
    print("\n| no-op | median s | runs | x reference | x floor |\n|---|---:|---|---:|---:|")
    for kind, table in rows.items():
        reference = next(iter(table.values()))[0]
        for label, (median, times) in table.items():
            shown = ", ".join(f"{t:.2f}" for t in times)
            print(
                f"| {kind}: {label} | {median:.2f} | {shown} | {median / reference:.2f} | {median / floor:.2f} |"
            )
    print(f'| floor: `python -c "from huggingface_hub import HfApi"` | {floor:.2f} | | | 1.00 |')
