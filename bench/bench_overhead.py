"""Prefect's fixed cost per command, and publish wall time on the thread pool vs a Dask cluster.

    .venv/bin/python bench/bench_overhead.py
    .venv/bin/python bench/bench_overhead.py --samples 600 --image-size 96 --repeats 3

1. `hubpress publish-dataset` of a tiny dataset to a local target, as a fresh process (what a user
   feels), with Prefect's ephemeral mode (no server configured) and against a running
   `hubpress server`. `hubpress --help` is the floor: interpreter start and imports only.
2. The same generated dataset published (fresh staging each time, so shards are really built)
   with the bounded thread pool and with a 2-worker Dask LocalCluster (prefect-dask), in one
   process against the running server.
3. `--noop` (only this part): an unchanged re-publish, as whole processes against a running
   Prefect server and the Hub-protocol server, beside the reference's own no-op: a `--lora-mb`
   LoRA (hubpress CLI, Python API and the flow as a served run takes it, against huggingface_hub's
   `upload_file` of the same file, which hashes it and skips) and a `--noop-samples` dataset (CLI,
   API and flow, against `DatasetDict.push_to_hub` of the same images, bench.common.REFERENCE).

    .venv/bin/python -m bench.bench_overhead --noop --lora-mb 300 --noop-samples 200 --repeats 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A fresh process running one flow that does nothing: import, connect, create/finish the run, exit.
EMPTY_FLOW = "from prefect import flow\n@flow(name='empty')\ndef empty():\n    return 1\nempty()\n"


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def _row(label: str, times: list[float]) -> None:
    shown = ", ".join(f"{t:.2f}" for t in times)
    print(f"  {label:<46} median {statistics.median(times):6.2f} s   ({shown})", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--samples", type=int, default=400, help="samples in the Dask vs threads dataset")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--max-shard-size", default="1MB")
    parser.add_argument("--noop", action="store_true", help="only part 3: unchanged re-publishes")
    parser.add_argument("--lora-mb", type=int, default=300, help="part 3: the LoRA's size")
    parser.add_argument("--noop-samples", type=int, default=200, help="part 3: the dataset's samples")
    args = parser.parse_args(argv)
    if args.noop:
        from bench.bench_noop import compare_noops

        compare_noops(args)
        return

    from hubpress.testdata.synth import write_dataset

    work = Path(tempfile.mkdtemp(prefix="hubpress-bench-overhead-"))
    hubpress = [sys.executable, "-m", "hubpress.commands.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
    env.update(
        {
            "HUBPRESS_HOME": str(work / "home"),
            "HUBPRESS_PREFECT_DIR": str(work / "server"),
            # The ephemeral rows first; the local server is started by a command further down.
            "HUBPRESS_PREFECT_SERVER": "temporary",
            "PREFECT_HOME": str(work / "client-home"),
            "HUBPRESS_STAGING": str(work / "staging"),
            "HUBPRESS_CACHE_DIR": str(work / "cache"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # The ephemeral rows on a loaded machine: Prefect's 20 s start-up limit is often missed.
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        }
    )
    # A free port for the local server, remembered as if it had run before: not 4200, which other
    # servers on a shared machine may hold.
    (work / "server").mkdir()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        (work / "server" / "port").write_text(f"{sock.getsockname()[1]}\n")
    tiny = work / "tiny"
    write_dataset(tiny, samples=4, test_fraction=0.0, image_size=16, seed=1)
    print(f"Work directory: {work}  (cores: {os.cpu_count()})")

    print("\n1. Fixed overhead of one command (fresh process each time)")
    _row(
        "hubpress --help (imports only)",
        [_timed([*hubpress, "--help"], env, work) for _ in range(args.repeats)],
    )

    def publish_tiny(tag: str, i: int) -> float:
        return _timed([*hubpress, "publish-dataset", str(tiny), f"./out-{tag}-{i}", "--json"], env, work)

    empty_flow = [sys.executable, "-c", EMPTY_FLOW]
    _row(
        "empty flow run (Prefect only), ephemeral",
        [_timed(empty_flow, env, work) for _ in range(args.repeats)],
    )
    _row("publish-dataset tiny, ephemeral Prefect", [publish_tiny("eph", i) for i in range(args.repeats)])
    # What a new user's first and second commands cost: the first starts the local server.
    auto_env = {**env, "HUBPRESS_PREFECT_SERVER": "auto"}
    server_start = _timed([*hubpress, "publish-dataset", str(tiny), "./out-first", "--json"], auto_env, work)
    status = subprocess.run(
        [*hubpress, "server", "status", "--json"], env=env, cwd=work, capture_output=True, text=True
    )
    if status.returncode != 0:
        raise SystemExit(f"the first command did not start the local server:\n{status.stdout}")
    api_url = json.loads(status.stdout)["api_url"]
    try:
        print(f"  {'first publish-dataset (starts the local server)':<46} {server_start:13.2f} s")
        _row(
            "second publish-dataset tiny (reuses it)",
            [
                _timed([*hubpress, "publish-dataset", str(tiny), f"./out-2nd-{i}", "--json"], auto_env, work)
                for i in range(args.repeats)
            ],
        )
        served_env = {**env, "PREFECT_API_URL": api_url}
        _row(
            "empty flow run (Prefect only), against server",
            [_timed(empty_flow, served_env, work) for _ in range(args.repeats)],
        )
        _row(
            "publish-dataset tiny, against hubpress server",
            [publish_tiny("srv", i) for i in range(args.repeats)],
        )
        _row(
            "training-finished (event to the server)",
            [
                _timed([*hubpress, "training-finished", "/tmp/none", "--repo", "alice/x"], env, work)
                for _ in range(args.repeats)
            ],
        )
        _compare_runners(work, api_url, args)
    finally:
        subprocess.run([*hubpress, "server", "stop"], env=env, cwd=work, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _compare_runners(work: Path, api_url: str, args) -> None:
    os.environ["PREFECT_API_URL"] = api_url  # before Prefect is imported in this process
    os.environ["PREFECT_HOME"] = str(work / "client-home")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from hubpress.flows.params import PublishDatasetParams
    from hubpress.flows.publish_dataset import publish_dataset
    from hubpress.orchestration.runners import TaskRunnerChoice, default_thread_count, with_task_runner
    from hubpress.testdata.synth import write_dataset

    src = work / "dataset"
    write_dataset(src, samples=args.samples, test_fraction=0.1, image_size=args.image_size, seed=2)
    size = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    print(
        f"\n2. Publish {args.samples} samples ({size / 1e6:.1f} MB of images, shards <= {args.max_shard_size}) "
        "to a local target, fresh staging each run"
    )
    digests: dict[str, dict[str, str]] = {}
    choices = {
        f"thread pool ({default_thread_count()} threads)": TaskRunnerChoice(kind="threads"),
        "Dask LocalCluster, 2 worker processes": TaskRunnerChoice(kind="dask", dask_workers=2),
    }
    for label, choice in choices.items():
        times = []
        for i in range(args.repeats):
            name = f"{choice.kind}-{i}"
            params = PublishDatasetParams(
                source=str(src),
                target=str(work / f"target-{name}"),
                staging=str(work / f"stage-{name}"),
                max_shard_size=args.max_shard_size,
            )
            start = time.perf_counter()
            result = with_task_runner(publish_dataset, choice)(params)
            times.append(time.perf_counter() - start)
            digests[name] = {
                p: hashlib.sha256((work / f"target-{name}" / p).read_bytes()).hexdigest()
                for p in result["uploaded_files"]
                if p.endswith(".parquet")
            }
        _row(f"{label} [{len(digests[name])} shards]", times)
    same = len({json.dumps(d, sort_keys=True) for d in digests.values()}) == 1
    print(f"  identical shards (names and sha256) across all runs: {same}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
