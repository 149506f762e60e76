"""A publish costs what changed (issue 21): the nightly runs, timed against a running Prefect server
and the Hub-protocol test server.

    .venv/bin/python -m bench.bench_incremental                      # 2,000 x 256 px, 20 MB shards
    .venv/bin/python -m bench.bench_incremental --samples 60 --size 32 --max-shard-size 60KB \\
        --skip-reference                                              # a smoke run

One dataset (a control and a target per sample, noise PNGs), one repo, one staging area and one
cache, publish after publish:
- the first publish;
- an unchanged re-publish (its time is the floor every later run is measured from);
- +1% new samples, half with ids sorting before every existing one and half after;
- one changed image (a target image in the middle of the id range, new pixels);
- with --kill-at (default 0.6), a first publish of a second dataset of the same size into a fresh
  repo, staging and cache, killed with SIGKILL at that fraction of the first publish's time (after
  the child's start-up, as measured around the first publish), then run again.

For each run it prints the time, the "work" (time beyond the unchanged re-publish), the work as a
fraction of the first publish's time, and the bytes sent (and their fraction of the first
publish's), beside the issue's targets: +1% and one changed image at most 10%, the re-run after a
kill at most 60%. With the reference (default on), it also prints the reference's first publish of
the same data (`DatasetDict.push_to_hub`, bench.common.REFERENCE) and the ratio. Each run is a fresh
child process timed inside, after Prefect's start-up (bench.common.measure).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bench.common import REFERENCE, ROOT, TIMED_PUBLISH_PRELUDE, Servers, measure, workdir
from tests.hubserver.xet import XetCas

PUBLISH = TIMED_PUBLISH_PRELUDE + textwrap.dedent(
    """
    with temporary_settings({{PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}}):
        params = PublishDatasetParams(source={src!r}, target={repo!r}, max_shard_size={shard!r})
        warm_up(params)
        start = time.perf_counter()
        r = publish_dataset(params)
    print(json.dumps({{"seconds": time.perf_counter() - start, "uploaded_bytes": r["uploaded_bytes"],
                      "uploaded_files": len(r["uploaded_files"]), "commit": r["commit"],
                      "sent_bytes": r["sent_bytes"], "already_present_bytes": r["already_present_bytes"]}}))
    """
)

TARGETS = {"+1% samples": 0.10, "one changed image": 0.10, "re-run after a kill": 0.60}


def generate(root: Path, samples: int, size: int, seed: int) -> None:
    from hubpress.testdata.synth import write_dataset

    write_dataset(root, samples=samples, image_size=size, seed=seed)


def add_at_both_ends(src: Path, work: Path, count: int, size: int) -> None:
    """`count` new samples: the first half named to sort before every existing id ("a_..."), the
    rest after ("zz_...")."""
    extra = work / "extra"
    generate(extra, count, size, seed=99)
    ids = sorted(p.stem for p in (extra / "train" / "training_images").glob("*.txt"))
    prefix = {sample: "a_" if n < count // 2 else "zz_" for n, sample in enumerate(ids)}
    for sub in ("control_images", "training_images"):
        for f in (extra / "train" / sub).iterdir():
            sample = next(s for s in ids if f.name.startswith(s))
            shutil.copy(f, src / "train" / sub / f"{prefix[sample]}{f.name}")
    shutil.rmtree(extra)


def change_one_image(src: Path, size: int) -> str:
    import numpy as np
    from PIL import Image

    images = sorted((src / "train" / "training_images").glob("*.png"))
    victim = images[len(images) // 2]
    pixels = np.random.default_rng(12345).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(victim, format="PNG")
    return victim.name


def killed_then_rerun(code: str, env: dict[str, str], after: float, cas: XetCas | None = None) -> dict:
    """Start a publish, SIGKILL it `after` seconds into its timed part, then run it again (timed).
    With the test Hub's Xet store (`cas`), what it held after the kill and what the re-run wrote
    there: its growth, and the xorbs the killed run had stored that the re-run wrote again (the
    local store rewrites a xorb sent again, so its file changes)."""
    os.sync()
    stored_before = cas.stored_bytes() if cas is not None else 0
    xorbs_before = set(cas.xorb_files()) if cas is not None else set()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    # The child's timer starts after its imports, Prefect's start-up and a warm-up run: the kill
    # waits for those too (STARTUP_ALLOWANCE, as measured around the first publish).
    time.sleep(after + STARTUP_ALLOWANCE)
    finished = proc.poll() is not None
    if not finished:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    # The killed run's xorbs: the store is shared with the bench's earlier runs.
    held = {h: stamp for h, stamp in cas.xorb_files().items() if h not in xorbs_before} if cas else {}
    stored = cas.stored_bytes() if cas is not None else 0
    result = measure(code, env)
    result["killed"] = not finished
    if cas is not None:
        after_rerun = cas.xorb_files()
        result["cas_bytes_at_kill"] = stored
        result["killed_run_stored"] = stored - stored_before
        result["cas_grown_by_rerun"] = cas.stored_bytes() - stored
        resent = [name for name, stamp in held.items() if after_rerun.get(name) != stamp]
        result["xorbs_held_at_kill"] = len(held)
        result["xorb_bytes_held_at_kill"] = sum(size for _, _, size in held.values())
        result["xorbs_resent"] = len(resent)
        result["xorb_bytes_resent"] = sum(held[name][2] for name in resent)
    return result


STARTUP_ALLOWANCE = 0.0  # set from the measured start-up in main()


def wait_for_prefect(servers: Servers, seconds: float = 600) -> None:
    """Servers waits about a minute for the Prefect server; a loaded machine can need more."""
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"{servers.prefect_url}/health", timeout=5)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server at {servers.prefect_url} did not start") from None
            time.sleep(1)


def main() -> None:
    global STARTUP_ALLOWANCE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--max-shard-size", default="20MB")
    parser.add_argument("--kill-at", type=float, default=0.6, help="0 skips the kill trial")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = workdir("hubpress-bench-incremental-")
    servers = Servers(work)
    try:
        wait_for_prefect(servers)
        env = servers.env()
        src = work / "src"
        generate(src, args.samples, args.size, seed=1)
        mb = sum(p.stat().st_size for p in src.rglob("*") if p.is_file()) / 1e6
        print(
            f"dataset: {args.samples:,} samples of {args.size} px, {mb:,.0f} MB, shards of {args.max_shard_size}"
        )

        def run(repo: str, run_env: dict[str, str] = env) -> dict:
            r = measure(PUBLISH.format(src=str(src), repo=repo, shard=args.max_shard_size), run_env)
            # A full-size run takes a while: say each run as it ends (the table comes at the end).
            print(f"  ({r['seconds']:.2f} s, {r['uploaded_bytes']:,} bytes sent)", flush=True)
            return r

        rows: list[tuple[str, dict]] = []
        started = time.perf_counter()
        first = run("bench/incremental")
        STARTUP_ALLOWANCE = max(0.0, time.perf_counter() - started - first["seconds"])
        rows.append(("first publish", first))
        ref = None
        if not args.skip_reference:
            ref_env = {**env, "HF_DATASETS_CACHE": str(work / "hf-datasets-ref")}
            ref = measure(REFERENCE.format(src=str(src), repo="bench/reference"), ref_env)
        again = run("bench/incremental")
        rows.append(("unchanged re-publish", again))
        add_at_both_ends(src, work, max(2, args.samples // 100), args.size)
        rows.append(("+1% samples", run("bench/incremental")))
        changed = change_one_image(src, args.size)
        rows.append(("one changed image", run("bench/incremental")))
        if args.kill_at > 0:
            # Its own data (another seed), repo, staging and cache: nothing of it is on the Hub yet,
            # which stores each object once for all repos.
            kill_src = work / "src-kill"
            generate(kill_src, args.samples, args.size, seed=2)
            fresh = {
                **env,
                "HUBPRESS_STAGING": str(work / "staging-kill"),
                "HUBPRESS_CACHE_DIR": str(work / "cache-kill"),
            }
            code = PUBLISH.format(src=str(kill_src), repo="bench/incremental-kill", shard=args.max_shard_size)
            cas = XetCas(work / "hub" / "xet") if not servers.lfs else None
            killed = killed_then_rerun(code, fresh, args.kill_at * first["seconds"], cas)
            rows.append(("re-run after a kill", killed))

        floor = again["seconds"]
        print(
            f"changed image: {changed}; work = a run's time beyond the unchanged re-publish ({floor:.2f} s)\n"
        )
        print("| run | seconds | work s | work / first | target | bytes sent | of first's | peak RSS MB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        figures = {}
        for name, r in rows:
            work_s = r["seconds"] - floor if name != "first publish" else r["seconds"]
            share = work_s / first["seconds"]
            target = TARGETS.get(name)
            sent = r["uploaded_bytes"] / max(first["uploaded_bytes"], 1)
            note = " (not killed: it finished first)" if r.get("killed") is False else ""
            print(
                f"| {name}{note} | {r['seconds']:.2f} | {work_s:.2f} | {share:.0%} | "
                f"{f'<= {target:.0%}' if target is not None else ''} | {r['uploaded_bytes']:,} | {sent:.1%} | "
                f"{r['peak_rss_mb']} |"
            )
            figures[name] = {**r, "work_seconds": round(work_s, 3), "work_share": round(share, 4)}
        if ref is not None:
            print(
                f"\nreference first publish (push_to_hub) of the same data: {ref['seconds']:.2f} s, "
                f"{ref['peak_rss_mb']} MB; hubpress's first publish ran at "
                f"{ref['seconds'] / first['seconds']:.2f}x the reference's speed (on {args.samples:,} samples)"
            )
            figures["reference"] = ref
        if args.kill_at > 0 and "cas_bytes_at_kill" in killed:
            print(
                f"\nkilled at {args.kill_at:.0%}: the killed run had stored {killed['killed_run_stored']:,} bytes in "
                f"the Xet store ({killed['xorbs_held_at_kill']} xorbs, {killed['xorb_bytes_held_at_kill']:,} bytes); the re-run "
                f"sent {killed['sent_bytes']:,} bytes (hf_xet's report), grew the store by "
                f"{killed['cas_grown_by_rerun']:,} and wrote {killed['xorbs_resent']} of the held xorbs again "
                f"({killed['xorb_bytes_resent']:,} bytes); it reported {killed['already_present_bytes']:,} bytes "
                "of its files as already held"
            )
        print(json.dumps(figures))
    finally:
        servers.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
