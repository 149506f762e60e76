"""A changed night's verification, the two ways (issue 21): opening the revision with `datasets`
(what a first publish does) against the check by footers, the committed card and each split's
first row (hubpress.shards.verify.verify_changed_revision), with the footers read eight at a time
and one at a time, each in a fresh process, alternately.

    .venv/bin/python -m bench.bench_verify                       # 2,000 x 64 px, 237 shards
    .venv/bin/python -m bench.bench_verify --samples 200 --rounds 2   # a smoke run

One dataset is published, then one sample is added and it is published again (a changed night,
whose record names the card shape datasets opened). Each round then verifies that second
revision both ways, in children that import what they need after the timer starts (hubpress's
flow modules, as a run has them, are imported before it). Prints wall and CPU seconds per way.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import textwrap

from bench.bench_incremental import PUBLISH, wait_for_prefect
from bench.common import Servers, measure, workdir

VERIFY = textwrap.dedent(
    """
    import json, os, resource, time
    import huggingface_hub.hf_api, pyarrow.parquet
    from hubpress.settings import get_settings
    from hubpress.shards.published import PublishedRecords
    from hubpress.shards.editing_format import FEATURES_DICT
    from hubpress.targets.publish import open_target

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    settings = get_settings()
    record = PublishedRecords(settings.cache_dir).get({repo!r}, "main")
    target = open_target({repo!r}, "dataset", settings, write=False)
    files = json.loads(target.read_text("manifest.json", record.head))["files"]
    start, cpu0 = time.perf_counter(), cpu()
    from hubpress.shards import verify
    import hubpress.targets.hub
    if {way!r}.endswith("one reader"):
        hubpress.targets.hub.FOOTER_READERS = 1
    if {way!r} == "datasets":
        rows = verify.verify_dataset_revision(
            {repo!r}, target, record.head, files, FEATURES_DICT, os.environ["HF_TOKEN"], ["id", "prompt"]
        )
    else:
        rows = verify.verify_changed_revision(
            {repo!r}, target, record.head, files, FEATURES_DICT, ["id", "prompt"], record.opened_shape
        )
    import sys
    print(json.dumps({{"seconds": time.perf_counter() - start, "cpu": cpu() - cpu0, "rows": rows,
                      "datasets": "datasets" in sys.modules,
                      "shards": sum(1 for f in files.values() if "num_rows" in f)}}))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--max-shard-size", default="500KB")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = workdir("hubpress-bench-verify-")
    servers = Servers(work)
    try:
        wait_for_prefect(servers)
        env = servers.env()
        src = work / "src"
        from hubpress.testdata.synth import write_dataset

        write_dataset(src, samples=args.samples, image_size=args.size, seed=1)
        write_dataset(work / "extra", samples=1, image_size=args.size, seed=9)
        repo = "bench/verify"
        measure(PUBLISH.format(src=str(src), repo=repo, shard=args.max_shard_size), env)
        for f in (work / "extra").glob("train/*/s000000*"):
            shutil.copy(f, src / "train" / f.parent.name / f"zz_{f.name}")
        measure(PUBLISH.format(src=str(src), repo=repo, shard=args.max_shard_size), env)
        ways = ("datasets", "footers and card", "footers and card, one reader")
        times: dict[str, list[dict]] = {way: [] for way in ways}
        for i in range(args.rounds):
            for way in ways if i % 2 == 0 else reversed(ways):
                r = measure(VERIFY.format(repo=repo, way=way), env)
                times[way].append(r)
                print(
                    f"  {way}: {r['seconds']:.2f} s, {r['cpu']:.2f} s CPU, datasets imported: "
                    f"{r['datasets']}, {r['shards']} shards"
                )
        print("\n| verification | wall s (median) | CPU s (median) | runs |")
        print("|---|---:|---:|---:|")
        for way, runs in times.items():
            wall = statistics.median(r["seconds"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            print(f"| {way} | {wall:.2f} | {cpu:.2f} | {len(runs)} |")
    finally:
        servers.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
