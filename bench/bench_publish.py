"""publish-dataset against the qflux guide's way, to the same local Hub-protocol server.

    .venv/bin/python -m bench.bench_publish [--samples 2000] [--sizes 1000,3000,6000] [--repeat 3]

Prints, for one generated dataset (256x256 noise PNGs, a control and a target per sample):
- hubpress first publish vs the reference (`Dataset.from_list` of paths with the guide's Features,
  then `DatasetDict.push_to_hub`): wall time and peak RSS of the job's own process;
- an unchanged re-publish: time and bytes sent;
- bytes sent after adding 1% of samples;
- peak RSS of a first publish at several dataset sizes (memory should stay flat).
Prefect's start-up is outside the timings: the children use one Prefect server started here.
The first three figures are medians of --repeat runs, each first publish into a fresh repo with its
own staging area and caches; dirty pages are flushed before every run (bench.common.measure).
"""

from __future__ import annotations

import argparse
import json
import shutil
import textwrap
from pathlib import Path

from bench.common import REFERENCE, TIMED_PUBLISH_PRELUDE, Servers, measure, workdir

# Prefect's own start-up is kept out of the timing: a flow run with a parameter first (client and
# API connection set up, and the FastAPI encoder Prefect imports on the first run that has
# parameters to serialise: about 0.25 s), and no end-of-run heartbeat wait. The reference's timer
# likewise starts after its imports.
HUBPRESS = TIMED_PUBLISH_PRELUDE + textwrap.dedent(
    """
    with temporary_settings({{PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}}):
        warm_up(PublishDatasetParams(source={src!r}, target={repo!r}))
        start = time.perf_counter()
        r = publish_dataset(PublishDatasetParams(source={src!r}, target={repo!r}))
    print(json.dumps({{"seconds": time.perf_counter() - start, "uploaded_bytes": r["uploaded_bytes"],
                      "sent_bytes": r.get("sent_bytes", r["uploaded_bytes"]),
                      "uploaded_files": len(r["uploaded_files"]), "commit": r["commit"]}}))
    """
)


def generate(root: Path, samples: int, seed: int, repeat: bool) -> None:
    from hubpress.testdata.synth import write_dataset

    write_dataset(root, samples=samples, image_size=256, seed=seed, repeat_bytes=repeat)


def _median(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda r: r["seconds"])
    median = dict(ordered[len(ordered) // 2])
    median["all_seconds"] = [round(r["seconds"], 2) for r in runs]
    return median


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--sizes", default="1000,3000,6000")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the median is shown)")
    args = parser.parse_args()
    work = workdir("hubpress-bench-publish-")
    servers = Servers(work)
    try:
        env = servers.env()
        src = work / "src"
        generate(src, args.samples, seed=1, repeat=False)
        size_mb = sum(p.stat().st_size for p in src.rglob("*") if p.is_file()) / 1e6
        print(f"dataset: {args.samples} samples, {size_mb:.0f} MB of images")

        def fresh(i: int) -> dict[str, str]:
            # A first publish each time: its own repo, staging area and caches.
            return {
                **env,
                "HUBPRESS_STAGING": str(work / f"staging-{i}"),
                "HUBPRESS_CACHE_DIR": str(work / f"cache-{i}"),
                "HF_DATASETS_CACHE": str(work / f"hf-datasets-{i}"),
            }

        # Each figure is the median of --repeat runs (the machine is shared; runs vary by ~10%).
        # Interleaved, so that both ways meet the same machine (a VM disk slows as writes pile up).
        refs, firsts = [], []
        for i in range(args.repeat):
            refs.append(measure(REFERENCE.format(src=str(src), repo=f"bench/reference-{i}"), fresh(i)))
            firsts.append(measure(HUBPRESS.format(src=str(src), repo=f"bench/hubpress-{i}"), fresh(i)))
        agains = [
            measure(HUBPRESS.format(src=str(src), repo="bench/hubpress-0"), fresh(0))
            for _ in range(args.repeat)
        ]
        ref, first, again = _median(refs), _median(firsts), _median(agains)
        env = fresh(0)

        extra = work / "extra"
        generate(extra, max(1, args.samples // 100), seed=99, repeat=False)
        for sub in ("control_images", "training_images"):
            for f in (extra / "train" / sub).iterdir():
                shutil.copy(f, src / "train" / sub / f"zz_{f.name}")
        grown = measure(HUBPRESS.format(src=str(src), repo="bench/hubpress-0"), env)

        rows = [
            ("reference (from_list + push_to_hub)", ref["seconds"], ref["peak_rss_mb"], "-", "-"),
            *(
                (name, r["seconds"], r["peak_rss_mb"], f"{r['uploaded_bytes']:,}", f"{r['sent_bytes']:,}")
                for name, r in (
                    ("hubpress first publish", first),
                    ("hubpress unchanged re-publish", again),
                    ("hubpress after +1% samples", grown),
                )
            ),
        ]
        # On Xet (the default) "bytes sent" is what crossed the wire after deduplication.
        print("\n| run | seconds | peak RSS MB | bytes of files | bytes sent |\n|---|---:|---:|---:|---:|")
        for name, sec, rss, files, sent in rows:
            print(f"| {name} | {sec:.1f} | {rss} | {files} | {sent} |")
        print(
            f"\nruns (s): reference {ref['all_seconds']}, first publish {first['all_seconds']}, "
            f"unchanged {again['all_seconds']}"
        )
        print(
            f"speed-up vs reference: {ref['seconds'] / first['seconds']:.1f}x; unchanged re-publish takes "
            f"{again['seconds'] / first['seconds']:.1%} of the first publish; +1% sent "
            f"{grown['sent_bytes'] / max(first['sent_bytes'], 1):.1%} of the first publish's bytes"
        )

        print("\n| samples | MB of images | seconds | peak RSS MB |\n|---:|---:|---:|---:|")
        for n in [int(x) for x in args.sizes.split(",") if x]:
            root = work / f"size-{n}"
            generate(root, n, seed=n, repeat=True)
            mb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
            r = measure(HUBPRESS.format(src=str(root), repo=f"bench/size-{n}"), env)
            print(f"| {n} | {mb:.0f} | {r['seconds']:.1f} | {r['peak_rss_mb']} |")
        print(json.dumps({"reference": ref, "first": first, "again": again, "grown": grown}))
    finally:
        servers.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
