"""The Reliability table: faults injected, trials, hostile inputs, and load, measured on this machine.

    .venv/bin/python -m bench.reliability                  # crash trials (20) + load
    .venv/bin/python -m bench.reliability --trials 30 --samples 20000 --loras 50
    .venv/bin/python -m bench.reliability --skip-load      # crash trials only
    .venv/bin/python -m bench.reliability --cases-only     # the hostile/failure suites and the
                                                           # "cases tried / held" figure (~10 min)
    .venv/bin/python -m bench.reliability --cases-only --suite "Parser limits"   # some suites only

Starts its own Hub-protocol server and Prefect test server, runs kill -9 crash trials
(bench/crash_trials.py), the pytest fault/hostile/secrets suites (counted, not re-implemented),
a large dataset publish in a child process (peak RSS) and LoRA releases in a row (RSS sampled),
then prints the table as Markdown.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_bench_reliability_5e3a"

_BIG_PUBLISH = """
import resource, sys, time
from hubpress.testdata.synth import write_dataset
from hubpress.api import upload_editing_dataset
src, repo, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
write_dataset(src, samples=n, image_size=16, seed=1, repeat_bytes=True)
t = time.monotonic()
r = upload_editing_dataset(src, repo)
print(time.monotonic() - t, r["samples"]["train"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _env(hub_url: str, api_url: str, work: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "HF_TOKEN": TOKEN,
        "HF_ENDPOINT": hub_url,
        "PREFECT_API_URL": api_url,
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "HUBPRESS_STAGING": str(work / "staging"),
        "HUBPRESS_CACHE_DIR": str(work / "cache"),
        "HF_HOME": str(work / "hf-home"),
        "PYTHONPATH": str(ROOT),
    }
    return env


def pytest_counts(files: list[str]) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:warnings", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    line = [x for x in out.splitlines() if " passed" in x or " failed" in x][-1:]
    text = line[0] if line else ""
    passed = int(text.split(" passed")[0].split()[-1]) if " passed" in text else 0
    failed = int(text.split(" failed")[0].split()[-1]) if " failed" in text else 0
    failed += int(text.split(" error")[0].split()[-1]) if " error" in text else 0  # setup errors broke too
    return passed, failed


def big_publish(env: dict[str, str], work: Path, samples: int) -> tuple[float, int, int]:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _BIG_PUBLISH,
            str(work / "big"),
            f"alice/big-{uuid.uuid4().hex[:6]}",
            str(samples),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[-3]), int(out[-2]), int(out[-1])


def lora_releases(hub, count: int, work: Path) -> tuple[int, list[float]]:
    """`count` releases of new weights to one repo in this process, RSS sampled after each."""
    import psutil

    from hubpress.flows.params import PublishLoraParams
    from hubpress.flows.publish_lora import publish_lora
    from hubpress.testdata.synth_lora import write_lora

    repo = f"alice/loras-{uuid.uuid4().hex[:6]}"
    rss, correct = [], 0
    proc = psutil.Process()
    for i in range(count):
        weights = write_lora(work / "loras" / f"{i}" / "pytorch_lora_weights.safetensors", seed=i)
        result = publish_lora(PublishLoraParams(src_path=str(weights), target=repo, tag=f"v{i}"))
        if (
            result["commit"]
            and hub.read_file("model", repo, "pytorch_lora_weights.safetensors") == weights.read_bytes()
        ):
            correct += 1
        rss.append(proc.memory_info().rss / 2**20)
    return correct, rss


# The suites the Reliability page counts, each a class of untrusted input or machine failure. Every
# test (each parametrized case) is one case tried; a passing one is a case held.
SUITES: tuple[tuple[str, list[str]], ...] = (
    (
        "Hub faults: 429, 5xx/resets mid-LFS, lost commit answer, 401/403, 404, stale parent, two writers",
        ["tests/targets/test_faults_hub.py"],
    ),
    (
        "S3 faults: SlowDown, 500/503, resets on reads/writes; corrupted stage",
        ["tests/storage/test_faults_s3.py"],
    ),
    (
        "Hostile input corpus (20 cases + 4 safetensors + 10,001 files)",
        ["tests/sources/test_hostile_input.py"],
    ),
    (
        "Name gate: property test (hypothesis) and hostile names, refs, cache keys, source/target overlap",
        ["tests/storage/test_names.py"],
    ),
    (
        "Hostile names through the flows and CLI: S3 keys leaving staging, --extra, backend ids, "
        "token= across threads, target in/over the source, bad --tag/--revision",
        ["tests/storage/test_hostile_names.py"],
    ),
    (
        "Cards: escaped user text, fixed-point merge, unparsable front matter",
        ["tests/shards/test_hostile_cards.py"],
    ),
    (
        "Refs and commits: tag checked before committing, a failure after the commit names it",
        ["tests/targets/test_refs_and_commits.py"],
    ),
    (
        "Machine failures: every command x closed port / read-only disk / full disk (+ crash clean-up, umask)",
        ["tests/e2e/test_failure_matrix.py"],
    ),
    (
        "Edges: symlink loops, 300 KB CSV prompt, nested header, EXIF, NFC ids, --fix-source, degenerate LoRAs",
        ["tests/e2e/test_hostile_edges.py"],
    ),
    (
        "Test Hub enforces namespaces and refusals (conformance, real client)",
        ["tests/hubserver_checks/test_hubserver_conformance.py"],
    ),
    ("Secrets: token scan of all flows, CLI, 401; private by default", ["tests/storage/test_secrets.py"]),
    (
        "Waits that end, answers that cannot be used (hostile proxy before the test Hub): slow-loris, "
        "never answered, 300 MB of JSON (declared / chunked), not JSON, {} after a cross-origin redirect, "
        "a 2-byte download, an upstream that stalls or answers HTML; release from S3 on a closed port",
        ["tests/e2e/test_hostile_network.py"],
    ),
    (
        "Only regular files: /dev/zero links, FIFOs and sockets in a source, a local target, a training output",
        ["tests/storage/test_only_regular_files.py"],
    ),
    (
        "Parser limits: refresh configs 100,000 deep, Infinity, 1e400, 1e308, Latin-1, 17 MB; "
        "billion-laughs and self-referring config.yaml; deep metrics",
        ["tests/e2e/test_parser_limits.py"],
    ),
    (
        "Confused deputy: upstream rows naming other repos, revisions or this machine's files "
        "(16 spellings, streaming and not); cards naming another repo's data files",
        ["tests/refresh/test_media_origin.py"],
    ),
    (
        "Deletions need proof: a collaborator's files in manifest.json; ../, absolute, encoded names "
        "in the manifest and the listing (10 spellings, dry and real runs)",
        ["tests/targets/test_owned_deletions.py"],
    ),
    (
        "Downloads checked: bytes other than the listed sha256, pickles as .safetensors, "
        "--filename escapes (11 spellings, local target and Hub), symlinks out of a target",
        ["tests/lora/test_download_checks.py"],
    ),
    (
        "Credentials in the endpoint URL (4 spellings, 2 settings, 4 commands); no URL userinfo in errors",
        ["tests/storage/test_endpoint_credentials.py"],
    ),
    (
        "Wrong results: same-size edit with the mtime restored (ctime); 16-bit, float, animated, "
        "multi-page images",
        ["tests/storage/test_stat_versions.py", "tests/sources/test_image_modes.py"],
    ),
    (
        "Answers the Hub may not give (hub_proxy before the test Hub): a commit or tag applied but not "
        "answered, non-JSON, missing fields, 64-hex commit ids, the old head, Retry-After -5/nan/inf/"
        "100000 and RateLimit resets, a token that may only read the target, two publishes of one new dataset",
        ["tests/e2e/test_hub_answers.py"],
    ),
    (
        "The Hub's limits: entries per folder (subfolders), files per repo, file size, the test Hub's "
        "refusals, the viewer's row groups and page index, concurrent uploads of one object",
        ["tests/targets/test_hub_limits.py", "tests/hubserver_checks/test_hubserver_races.py"],
    ),
)


def suite_rows(only: list[str] | None = None) -> list[tuple[str, str, str]]:
    """One row per suite (those whose label contains one of `only`, if given), then the total:
    cases tried / held."""
    rows, tried, held = [], 0, 0
    for label, files in SUITES:
        if only and not any(text.lower() in label.lower() for text in only):
            continue
        passed, failed = pytest_counts(files)
        tried, held = tried + passed + failed, held + passed
        rows.append((label, f"{passed + failed} cases", f"{passed} held, {failed} broke"))
    rows.append(("**All hostile-input and failure cases**", f"**{tried} tried**", f"**{held}/{tried} held**"))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--loras", type=int, default=50)
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-suites", action="store_true")
    parser.add_argument(
        "--cases-only", action="store_true", help="Only the suites: no crash trials, no load."
    )
    parser.add_argument(
        "--suite",
        action="append",
        help="With --cases-only: only suites whose label contains this (repeatable).",
    )
    args = parser.parse_args(argv)
    if args.cases_only:
        print("| what was tried | trials | result |")
        print("|---|---|---|")
        for row in suite_rows(args.suite):
            print("| " + " | ".join(row) + " |")
        return

    work = Path(tempfile.mkdtemp(prefix="hubpress-reliability-"))
    os.environ.update(
        {
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_TOKEN": TOKEN,
            "HUBPRESS_STAGING": str(work / "staging-main"),
            "HUBPRESS_CACHE_DIR": str(work / "cache-main"),
            "PREFECT_HOME": str(work / "prefect-home"),
            "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(work / "prefect-results"),
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        }
    )
    from tests.hubserver import HubServer

    hub = HubServer(work / "hub", port=0, tokens={TOKEN: ("alice", "write")}).start()
    os.environ["HF_ENDPOINT"] = hub.url
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    rows: list[tuple[str, str, str]] = []
    with prefect_test_harness(server_startup_timeout=120):
        api_url = PREFECT_API_URL.value()
        from bench.crash_trials import run_trials

        started = time.monotonic()
        bed, results = run_trials(hub, api_url, TOKEN, work / "crash", args.trials, seed=2024)
        phases = Counter(r.phase for r in results)
        held = sum(r.held for r in results)
        rows.append(
            (
                "kill -9 mid-publish, then re-run",
                f"{len(results)} trials (clean run {bed.clean_seconds:.1f} s; killed while "
                + ", ".join(f"{k}: {v}" for k, v in sorted(phases.items()))
                + ")",
                f"{held}/{len(results)} held: only complete versions ever committed; final = clean publish"
                f" ({time.monotonic() - started:.0f} s)",
            )
        )
        for r in results:
            if not r.held:
                print(f"trial {r.trial} ({r.phase}, {r.delay}s): {r.problems}", file=sys.stderr)

        if not args.skip_load:
            env = _env(hub.url, api_url, work)
            seconds, rows_published, peak_kb = big_publish(env, work, args.samples)
            rows.append(
                (
                    f"publish {args.samples:,} samples (16 px images)",
                    "1 run, child process",
                    f"{rows_published:,} rows in {seconds:.0f} s; peak RSS {peak_kb / 1024:.0f} MiB",
                )
            )
            correct, rss = lora_releases(hub, args.loras, work)
            tenth = max(1, len(rss) // 10)
            rows.append(
                (
                    f"{args.loras} LoRA releases in a row, one server",
                    f"{args.loras} releases",
                    f"{correct}/{args.loras} correct; RSS first/last: {rss[tenth - 1]:.0f}/{rss[-1]:.0f} MiB"
                    f" (samples: {', '.join(f'{x:.0f}' for x in rss[::tenth])})",
                )
            )
    hub.stop()

    if not args.skip_suites:
        rows.extend(suite_rows())

    print("| what was tried | trials | result |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
