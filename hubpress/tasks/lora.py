"""Prefect tasks for LoRA publishing and releases: thin wrappers over hubpress.lora.publish."""

from __future__ import annotations

from prefect import task

from hubpress.errors import disk_errors
from hubpress.lora.publish import LoraBundle, PreparedRelease, hash_cache, prepare_lora, prepare_release
from hubpress.settings import Settings
from hubpress.targets.retries import NO_CACHE, TRANSIENT_RETRIES


@task(name="validate-and-hash-lora", **NO_CACHE)
def prepare_lora_task(
    src_path: str, remote_name: str | None, extra_files: dict[str, str], settings: Settings
) -> LoraBundle:
    """Refuse bad weights, pickles and missing extra files before anything is sent; hash the rest."""
    return prepare_lora(
        src_path, remote_name=remote_name, extra_files=extra_files, cache=hash_cache(settings)
    )


@task(name="stage-release", **NO_CACHE, **TRANSIENT_RETRIES)
def prepare_release_task(output_uri: str, select: str, settings: Settings, lease=None) -> PreparedRelease:
    """Choose the checkpoint and stage its weights, config and samples (under the run's lease)."""
    with disk_errors(settings.staging):
        return prepare_release(output_uri, select, settings, lease)
