"""Event to tagged release: how long after a trainer's `hubpress training-finished` the Hub holds
the release's tag, with `hubpress serve` handling the event.

    .venv/bin/python -m bench.bench_event_release                  # 5 releases, serve polling every 1 s
    .venv/bin/python -m bench.bench_event_release --trials 10 --poll 10   # Prefect's default poll

Starts a Hub-protocol server, a local Prefect server (`hubpress server start`, its own
HUBPRESS_PREFECT_DIR) and `hubpress serve`; then, per trial, writes a small training output (two
checkpoints of a rank-4 LoRA, a config), posts `training.job.finished` the way
`hubpress training-finished` does, and polls the Hub's refs every 50 ms until the tag appears.
Prints each trial's time and the median; the split is: event -> flow run created (the server's
trigger), created -> running (the runner's poll and process start), running -> tag (the flow).
Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_benchwrite_0000"


def _hub(work: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.hubserver", "--port", "0", "--data", str(work / "hub"),
         "--token", f"bench={TOKEN}:write"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = proc.stdout.readline()
    assert line.startswith("READY"), line
    from tests.hubserver.server import allow_local_xet_storage

    allow_local_xet_storage(work / "hub" / "xet")  # the worker and the release inherit it
    return proc, line.split()[1]


def _wait_deployment(api, name: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = api.get(f"/deployments/name/{name}")
        if response.status_code == 200:
            return response.json()
        time.sleep(0.5)
    raise SystemExit(f"{name} was not served within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument(
        "--poll", type=float, default=None, help="hubpress serve --poll (default: its own, 1 s)"
    )
    args = parser.parse_args(argv)

    import httpx

    from hubpress.commands.release import post_event, training_finished_event
    from hubpress.testdata.synth_lora import write_lora

    work = Path(tempfile.mkdtemp(prefix="hubpress-bench-event-"))
    hub, hub_url = _hub(work)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")},
        "HUBPRESS_PREFECT_DIR": str(work / "prefect-server"),
        "PREFECT_HOME": str(work / "prefect-client"),
        "HF_ENDPOINT": hub_url,
        "HF_TOKEN": TOKEN,
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HUBPRESS_STAGING": str(work / "staging"),
        "HUBPRESS_CACHE_DIR": str(work / "cache"),
    }
    cli = [sys.executable, "-m", "hubpress.commands.cli"]
    serve = None
    try:
        started = subprocess.run(
            [*cli, "server", "start", "--json"], env=env, cwd=work, capture_output=True, text=True
        )
        if started.returncode != 0:
            raise SystemExit(started.stderr)
        api_url = json.loads(started.stdout)["api_url"]
        env["PREFECT_API_URL"] = api_url
        poll = ["--poll", str(args.poll)] if args.poll else []
        with open(work / "serve.log", "wb") as log:
            serve = subprocess.Popen(
                [*cli, "serve", *poll], env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT
            )
        with httpx.Client(base_url=api_url, timeout=30) as api:
            deployment = _wait_deployment(api, "release-training-run/on-training-finished")
            time.sleep(3)  # let the runner settle into its polling loop
            from huggingface_hub import HfApi

            hf = HfApi(endpoint=hub_url, token=TOKEN)
            totals, splits = [], []
            for trial in range(args.trials):
                output = work / f"run-{trial}"
                for step in (100, 200):
                    write_lora(
                        output / f"checkpoint-{step}" / "pytorch_lora_weights.safetensors",
                        rank=4,
                        seed=trial * 1000 + step,
                    )
                (output / "config.yaml").write_text(f"learning_rate: 0.0001\nrun: {trial}\n")
                repo, tag = f"bench/event-{uuid.uuid4().hex[:8]}", f"rel-{trial}"
                event = training_finished_event(str(output), repo, tag, None, None)
                t0 = time.monotonic()
                post_event(api_url, event)
                while True:
                    try:
                        if any(t.name == tag for t in hf.list_repo_refs(repo).tags):
                            break
                    except Exception:
                        pass  # the repo does not exist yet
                    if time.monotonic() - t0 > 120:
                        raise SystemExit(f"trial {trial}: no tag after 120 s; see {work / 'serve.log'}")
                    time.sleep(0.05)
                total = time.monotonic() - t0
                totals.append(total)
                runs = api.post(
                    "/flow_runs/filter",
                    json={
                        "deployments": {"id": {"any_": [deployment["id"]]}},
                        "sort": "EXPECTED_START_TIME_DESC",
                        "limit": 1,
                    },
                ).json()
                split = ""
                if runs:
                    from datetime import datetime

                    run = runs[0]
                    created = datetime.fromisoformat(run["created"])
                    begun = datetime.fromisoformat(run["start_time"]) if run.get("start_time") else None
                    occurred = datetime.fromisoformat(event["occurred"])
                    if begun:
                        a, b = (created - occurred).total_seconds(), (begun - created).total_seconds()
                        split = f"  (event->run {a:.2f} s, run created->running {b:.2f} s, running->tag {total - a - b:.2f} s)"
                        splits.append((a, b, total - a - b))
                print(
                    f"trial {trial + 1}: tag {tag} on the Hub {total:.2f} s after the event{split}",
                    flush=True,
                )
        print(f"median {statistics.median(totals):.2f} s, max {max(totals):.2f} s over {len(totals)} releases "
              f"(serve poll: {args.poll or 'default 1'} s)")  # fmt: skip
        if splits:
            med = [statistics.median(s[i] for s in splits) for i in range(3)]
            print(
                f"median split: event->run {med[0]:.2f} s, created->running {med[1]:.2f} s, running->tag {med[2]:.2f} s"
            )
    finally:
        if serve is not None:
            serve.send_signal(signal.SIGINT)
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                serve.kill()
        subprocess.run([*cli, "server", "stop"], env=env, cwd=work, capture_output=True)
        hub.terminate()
        hub.wait(10)


if __name__ == "__main__":
    main()
