"""`make demo`: the main job on local defaults, with no token, no S3 and no network.

1. Generates a small qflux dataset (folder layout, a few defects real trees have).
2. Scans it and prints the intake report.
3. Publishes it with the publish-dataset flow to a local target directory, then loads it back
   with `load_editing_dataset` and prints a row.
4. Publishes it again: nothing changed, so nothing is written.
5. Publishes a small LoRA to a local target, twice (the second time is skipped by SHA256).

Running it again works: the source is regenerated identically, so every publish says
"unchanged, nothing sent".
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
# A demo leaves nothing running: its flows run on a temporary Prefect server (as it says), not the
# lasting local one the `auto` mode would start and leave on port 4200 for later commands.
os.environ.setdefault("HUBPRESS_PREFECT_SERVER", "temporary")


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main(argv: list[str] | None = None) -> None:
    out = Path(argv[0] if argv else "demo-output").resolve()
    shutil.rmtree(out / "source", ignore_errors=True)
    os.environ.setdefault("HUBPRESS_STAGING", str(out / "staging"))
    os.environ.setdefault("HUBPRESS_CACHE_DIR", str(out / "cache"))

    from hubpress.api import load_editing_dataset, upload_editing_dataset
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
    options = {"max_shard_size": "200KB", "pretty_name": "hubpress demo: face edits"}
    result = upload_editing_dataset(str(out / "source"), f"{target}/", **options)
    print(f"   {_outcome(result)}")
    print(f"   samples {result['samples']}, skipped {result['skipped']} (listed in the intake report above)")
    print(
        f"   {target} is a link to the version it holds ({os.readlink(target)}): a local target keeps "
        "its versions beside it and swaps the link in one step, so a reader never sees half a publish."
    )

    _say("Loading it back with load_editing_dataset")
    dsd = load_editing_dataset(f"{target}/")
    print("  ", dsd)
    row = dsd["train"][0]
    print(
        f"   first row: id={row['id']!r} prompt={row['prompt']!r} "
        f"controls={[im.size for im in row['control_images']]} mask={row['control_mask'] is not None}"
    )

    _say("Publishing again: the data did not change")
    again = upload_editing_dataset(str(out / "source"), f"{target}/", **options)
    print(f"   {_outcome(again)}")
    if again["listing_unchanged"]:
        print("   the source's listing (names, sizes, times) matched the last publish: no file was read")
    else:
        from hubpress.shards.run_result import reuse_line

        print(f"   {reuse_line(again)}")

    _say("Publishing a LoRA to a local target, twice (the second time its sha256 is already there)")
    from hubpress.flows.params import PublishLoraParams
    from hubpress.flows.publish_lora import publish_lora

    weights = write_lora(out / "lora" / "pytorch_lora_weights.safetensors", rank=8)
    for attempt in (1, 2):
        lora = publish_lora(PublishLoraParams(src_path=str(weights), target=f"{out / 'lora-repo'}/"))
        files = sorted(p.name for p in (out / "lora-repo").iterdir())
        print(f"   publish {attempt}: {_outcome(lora)}; the target holds {files}")

    _say(
        f"Done. Look in {out}: dataset/ is what a Hub dataset repo would hold, lora-repo/ a model repo. "
        "Run `make demo` again: everything is unchanged and nothing is sent."
    )


def _outcome(result: dict) -> str:
    """One line: what a publish did (a commit, or nothing because the target already holds it)."""
    if result.get("commit") is None:
        return "unchanged, nothing sent: the target already holds exactly this (no commit)"
    return (
        f"commit {result['commit'][:12]}: {len(result['uploaded_files'])} file(s), "
        f"{result['uploaded_bytes']:,} bytes sent"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
