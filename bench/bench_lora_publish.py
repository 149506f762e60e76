"""Publishing a 1 GB LoRA-shaped safetensors file, and re-publishing it unchanged.

    .venv/bin/python -m bench.bench_lora_publish [--gb 1.0]

Prints time and bytes the server received for: the first publish; an unchanged re-publish with
the hash cache; the same without it (every byte re-hashed); and the qflux guide's reference way, a
plain `upload_file` each time. The Hub-protocol server runs in this process so its accounting can
be read; Prefect runs against one local server, so its start-up is not in the figures, and the
"own work" time is measured around the publish steps without the flow engine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

from bench.common import free_port, workdir


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=1.0)
    args = parser.parse_args()
    work = workdir("hubpress-bench-lora-")
    port = free_port()
    os.environ.update(
        HF_ENDPOINT=f"http://127.0.0.1:{port}",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HOME=str(work / "hf-home"),
        HF_TOKEN="hf_benchwrite_0000",
        HUBPRESS_CACHE_DIR=str(work / "cache"),
    )
    from huggingface_hub import HfApi

    from hubpress.lora.publish import card_for, hash_cache, prepare_lora
    from hubpress.settings import get_settings
    from hubpress.targets.publish import open_target, publish_files
    from hubpress.testdata.synth_lora import write_streaming
    from tests.hubserver import HubServer

    hub = HubServer(work / "hub", port=port, tokens={"hf_benchwrite_0000": ("bench", "write")}).start()
    try:
        weights = write_streaming(work / "pytorch_lora_weights.safetensors", target_bytes=int(args.gb * 1e9))
        size = weights.stat().st_size
        print(f"weights: {size / 1e9:.2f} GB")

        def publish(repo: str, cache_dir: str) -> tuple[float, int, str | None]:
            settings = get_settings({"cache_dir": cache_dir})
            hub.reset_stats()
            start = time.perf_counter()
            bundle = prepare_lora(weights, cache=hash_cache(settings))
            target = open_target(repo, "model", settings)
            out = publish_files(
                target,
                bundle.files,
                target_name=repo,
                message="bench",
                card=card_for(bundle, repo, None, None),
                allow_deletes=False,
            )
            return time.perf_counter() - start, hub.stats.upload_bytes, out.commit

        rows = []
        t, sent, commit = publish("bench/lora", str(work / "cache"))
        rows.append(("hubpress first publish", t, sent, commit is not None))
        t, sent, commit = publish("bench/lora", str(work / "cache"))
        rows.append(("hubpress unchanged, hash cache warm", t, sent, commit is not None))
        shutil.rmtree(work / "cold", ignore_errors=True)
        t, sent, commit = publish("bench/lora", str(work / "cold"))
        rows.append(("hubpress unchanged, no hash cache", t, sent, commit is not None))

        api = HfApi()
        for label in ("reference upload_file, first", "reference upload_file, unchanged"):
            hub.reset_stats()
            start = time.perf_counter()
            api.create_repo("bench/reference", exist_ok=True, private=True)
            api.upload_file(
                path_or_fileobj=str(weights), path_in_repo=weights.name, repo_id="bench/reference"
            )
            rows.append((label, time.perf_counter() - start, hub.stats.upload_bytes, hub.stats.commits > 0))

        print("\n| run | seconds | bytes received by the server | commit made |\n|---|---:|---:|---|")
        for name, sec, sent, made in rows:
            print(f"| {name} | {sec:.2f} | {sent:,} | {'yes' if made else 'no'} |")
    finally:
        hub.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
