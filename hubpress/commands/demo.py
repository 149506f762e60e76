"""`make demo`: the main job on local defaults, with no token, no S3 and no network.

1. Generates a small qflux dataset (folder layout, a few defects real trees have).
2. Scans it and prints the intake report.
3. Publishes it with the publish-dataset flow to a local target directory, then loads it back
   with `load_editing_dataset` and prints a row.
4. Publishes it again: nothing changed, so nothing is written.
5. Publishes a small LoRA to a local target, twice (the second time is skipped by SHA256).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# Nothing here may reach the network: every Hub and datasets call is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main(argv: list[str] | None = None) -> None:
    out = Path(argv[0] if argv else "demo-output").resolve()
    shutil.rmtree(out / "source", ignore_errors=True)
    os.environ.setdefault("HUBPRESS_STAGING", str(out / "staging"))
    os.environ.setdefault("HUBPRESS_CACHE_DIR", str(out / "cache"))

    from hubpress.api import load_editing_dataset, upload_editing_dataset, upload_lora_safetensors
    from hubpress.testdata.synth import write_dataset
    from hubpress.testdata.synth_lora import write_lora

    _say(
        f"Generating a small dataset in {out / 'source'} (with one truncated image and one mislabelled JPEG)"
    )
    summary = write_dataset(
        out / "source",
        samples=40,
        test_fraction=0.25,
        extra_controls=1,
        masks=True,
        image_size=64,
        defects=("truncated", "ext_mismatch"),
        seed=7,
    )
    print(f"   {len(summary.files)} files written")

    _say("hubpress scan (the intake report)")
    from hubpress.commands.cli import main as cli

    try:
        cli(["scan", str(out / "source")])
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise

    target = f"{out / 'dataset'}"
    _say(f"Publishing to the local target {target} (the flow runs on a temporary Prefect server)")
    result = upload_editing_dataset(str(out / "source"), f"{target}/", max_shard_size="200KB")
    print(
        f"   commit {result['commit'][:12]}: {len(result['uploaded_files'])} files, {result['uploaded_bytes']:,} bytes"
    )
    print(f"   samples {result['samples']}, skipped {result['skipped']}")

    _say("Loading it back with load_editing_dataset")
    dsd = load_editing_dataset(f"{target}/")
    print("  ", dsd)
    row = dsd["train"][0]
    print(
        f"   first row: id={row['id']!r} prompt={row['prompt']!r} "
        f"controls={[im.size for im in row['control_images']]} mask={row['control_mask'] is not None}"
    )

    _say("Publishing again: the data did not change")
    again = upload_editing_dataset(str(out / "source"), f"{target}/", max_shard_size="200KB")
    print(
        f"   commit: {again['commit']}, bytes written: {again['uploaded_bytes']}, stage reused: {again['stage_reused']}"
    )

    _say("Publishing a LoRA to a local target, twice")
    weights = write_lora(out / "lora" / "pytorch_lora_weights.safetensors", rank=8)
    for attempt in (1, 2):
        upload_lora_safetensors(str(weights), f"{out / 'lora-repo'}/")
        files = sorted(p.name for p in (out / "lora-repo").iterdir())
        print(f"   publish {attempt}: {files}")

    _say(f"Done. Look in {out}: dataset/ is what a Hub dataset repo would hold.")


if __name__ == "__main__":
    main(sys.argv[1:])
