"""publish-lora: LoRA safetensors (and extra files) to a Hub model repo or a local directory,
with a SHA256 skip that really skips: nothing differs -> no upload and no commit."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.params import PublishLoraParams
from hubpress.lora.publish import card_for
from hubpress.orchestration import artifacts
from hubpress.settings import get_settings
from hubpress.targets.publish import open_target
from tasks.lora import prepare_lora_task
from tasks.publish import publish_task


@flow(name="publish-lora", validate_parameters=True)
def publish_lora(params: PublishLoraParams) -> dict[str, Any]:
    settings = get_settings()
    target = open_target(params.target, "model", settings, write=not params.dry_run)
    bundle = prepare_lora_task(params.src_path, params.remote_name, params.extra_files, settings)
    outcome = publish_task(
        target,
        bundle.files,
        None,
        target_name=params.target,
        revision=params.revision,
        private=not params.public,
        message=params.commit_message or "Upload LoRA weights with hubpress",
        card=card_for(bundle, params.target, params.base_model, params.license),
        allow_deletes=False,
        tag=params.tag,
        dry_run=params.dry_run,
    )
    if outcome.commit:
        artifacts.commit_link(outcome.commit_url, f"LoRA commit {outcome.commit[:12]} in {params.target}")
    result = outcome.to_dict()
    result["lora"] = {"rank": bundle.info.rank, "target_modules": list(bundle.info.target_modules)}
    return result
