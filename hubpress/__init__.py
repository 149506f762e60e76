"""hubpress: publish image-editing datasets and LoRA weights to the Hugging Face Hub with Prefect.

Importing hubpress first translates the qflux guide's HF_HUB_ENABLE_HF_TRANSFER=1 into its
modern equivalent, because huggingface_hub reads its switches once, when it is imported.

The package follows the pipeline, one subpackage per stage:

- `hubpress.storage`: local and S3 files, the hash cache (the lowest layer: everything reads through it);
- `hubpress.sources`: discovery of the qflux layouts, formats, validation, the intake report;
- `hubpress.refresh`: SimpleTuner dataloader configs, upstream Hub reading, row rules, mixing, and
  what a refresh adds to the shared pipeline (its lineage, card, index and dataloader entry);
- `hubpress.shards`: the one shard pipeline both row sources share (a local or S3 tree after intake,
  upstream Hub rows after a refresh's rules): the boundary rule, the one parquet writer, staging,
  card and manifest;
- `hubpress.targets`: a Hub repo or a local directory, the plan, limits, retries, one commit and
  its check;
- `hubpress.lora`: weights checks, LoRA publishing, training-run releases, the model card;
- `hubpress.orchestration`: the Prefect server, task runners, artifacts;
- `hubpress.commands`: the `hubpress` command line;
- `hubpress.testdata`: generators of synthetic datasets and LoRA files for the demo, tests and benches.

The Prefect flows, their tasks and parameter models live in `hubpress.flows` and `hubpress.tasks`,
the served deployments in `hubpress.deployments`. hubpress installs no other top-level name, so a
user's own `flows/` or `tasks.py` in the working directory cannot shadow them. Nothing in the other
subpackages imports them (tests/e2e/test_imports.py holds every module to that and to importing
without a cycle).
"""

from hubpress._env import apply_transfer_compat, limit_malloc_arenas, quiet_prefect_telemetry

__version__ = "0.1.0"

apply_transfer_compat()
limit_malloc_arenas()
quiet_prefect_telemetry()

# The qflux guide's functions (hubpress.api), importable as `from hubpress import load_editing_dataset`.
# Loaded on first use (PEP 562), so `import hubpress` stays cheap: no datasets, Prefect or flows.
_API = (
    "upload_editing_dataset",
    "upload_editing_dataset_from_csv",
    "load_editing_dataset",
    "upload_lora_safetensors",
    "download_lora",
)
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from hubpress import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hubpress' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
