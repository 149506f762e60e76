"""Publishing on the Xet path (the Hub's): what a small change costs in storage and on the wire.

    .venv/bin/python -m bench.bench_xet [--samples 300] [--image-size 256] [--shard 8MB]

One generated dataset (noise PNGs, a control and a target per sample) in --shard shards, published
by hubpress to the project's Hub-protocol server with its local Xet CAS, then:
- unchanged re-publish: bytes sent;
- one changed image: how much the CAS grew, against what the first publish stored (target: at most
  1%), and `load_dataset` reads the repo back with the new image;
- +1% samples: bytes sent against the first publish's (target: at most 3%) and against the
  reference's for the same change (datasets' push_to_hub into a server of its own, so neither
  deduplicates against the other).
"Bytes sent" is hubpress's `sent_bytes` (hf_xet's report); "CAS grew" is measured on the server's
disk (xorbs and shards). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import textwrap
from pathlib import Path

from bench.common import REFERENCE, Servers, measure, workdir

PUBLISH = textwrap.dedent(
    """
    import json
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from hubpress.flows.publish_dataset import publish_dataset
    from hubpress.flows.params import PublishDatasetParams
    with temporary_settings({{PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}}):
        r = publish_dataset(PublishDatasetParams(source={src!r}, target={repo!r}, max_shard_size={shard!r}))
    print(json.dumps({{k: r.get(k) for k in ("commit", "uploaded_bytes", "sent_bytes", "deduped_bytes", "transfer")}}))
    """
)

READ_BACK = textwrap.dedent(
    """
    import json
    from datasets import Image, load_dataset
    ds = load_dataset({repo!r}, split="train").cast_column("target_image", Image(decode=False))
    row = next(r for r in ds if r["id"] == {sample!r})
    print(json.dumps({{"rows": len(ds), "changed_image_read_back": row["target_image"]["bytes"] == open({image!r}, "rb").read()}}))
    """
)


def generate(root: Path, samples: int, size: int, seed: int) -> None:
    from hubpress.testdata.synth import write_dataset

    write_dataset(root, samples=samples, image_size=size, seed=seed, test_fraction=0)


def add_samples(src: Path, count: int, size: int, work: Path) -> None:
    extra = work / "extra"
    generate(extra, count, size, seed=99)
    for sub in ("control_images", "training_images"):
        for f in (extra / "train" / sub).iterdir():
            shutil.copy(f, src / "train" / sub / f"zz_{f.name}")


def reference_push(src: Path, repo: str, env: dict[str, str]) -> None:
    measure(REFERENCE.format(src=str(src), repo=repo), env)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--shard", default="8MB")
    args = parser.parse_args()
    work = workdir("hubpress-bench-xet-")
    servers = Servers(work)
    try:
        env = servers.env()
        ref_env = {**env, "HF_ENDPOINT": servers.add_hub("reference-hub")}
        src = work / "src"
        generate(src, args.samples, args.image_size, seed=1)
        mb = sum(p.stat().st_size for p in src.rglob("*") if p.is_file()) / 1e6
        print(
            f"dataset: {args.samples} samples of {args.image_size} px, {mb:.0f} MB of images, {args.shard} shards"
        )

        def publish() -> dict:
            return measure(PUBLISH.format(src=str(src), repo="bench/xet", shard=args.shard), env)

        cas0 = servers.cas_bytes()
        first = publish()
        stored_first = servers.cas_bytes() - cas0
        again = publish()

        # One changed image: a target image of one sample replaced by another noise image.
        targets = sorted((src / "train" / "training_images").glob("*.png"))
        changed = targets[len(targets) // 2]
        other = work / "other"
        generate(other, 1, args.image_size, seed=7)
        shutil.copy(next((other / "train" / "training_images").glob("*.png")), changed)
        cas1 = servers.cas_bytes()
        one = publish()
        grown_one = servers.cas_bytes() - cas1
        read = measure(READ_BACK.format(repo="bench/xet", sample=changed.stem, image=str(changed)), env)

        # The reference pushes the same dataset (with the changed image) into its own server.
        ref_cas0 = servers.cas_bytes("reference-hub")
        reference_push(src, "bench/reference", ref_env)
        ref_first = servers.cas_bytes("reference-hub") - ref_cas0

        add_samples(src, max(1, args.samples // 100), args.image_size, work)
        plus = publish()
        ref_cas1 = servers.cas_bytes("reference-hub")
        reference_push(src, "bench/reference", ref_env)
        ref_plus = servers.cas_bytes("reference-hub") - ref_cas1

        rows = [
            ("first publish", first, stored_first),
            ("unchanged re-publish", again, None),
            ("one changed image", one, grown_one),
            ("+1% samples", plus, None),
        ]
        print(
            "\n| hubpress run | bytes of files | bytes sent | deduplicated | CAS grew |\n|---|---:|---:|---:|---:|"
        )
        for name, r, grew in rows:
            print(
                f"| {name} | {r['uploaded_bytes'] or 0:,} | {r['sent_bytes'] or 0:,} | {r['deduped_bytes'] or 0:,} | "
                f"{'' if grew is None else f'{grew:,}'} |"
            )
        print(f"| reference first push (CAS grew) | | {ref_first:,} | | {ref_first:,} |")
        print(f"| reference +1% samples (CAS grew) | | {ref_plus:,} | | {ref_plus:,} |")
        print(
            f"\none changed image: the CAS grew by {grown_one / max(stored_first, 1):.2%} of what the first "
            f"publish stored (target <= 1%); load_dataset read {read['rows']} rows back, changed image "
            f"{'read back' if read['changed_image_read_back'] else 'NOT read back'}"
        )
        print(
            f"+1% samples: hubpress sent {plus['sent_bytes'] / max(first['sent_bytes'], 1):.2%} of its first "
            f"publish's bytes (target <= 3%); {plus['sent_bytes'] / max(ref_plus, 1):.2f}x the reference's "
            f"{ref_plus:,} bytes for the same change (target <= 1x)"
        )
        print(json.dumps({"first": first, "again": again, "one": one, "plus": plus, "stored_first": stored_first,
                          "grown_one": grown_one, "read": read, "ref_first": ref_first, "ref_plus": ref_plus}))  # fmt: skip
    finally:
        servers.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
