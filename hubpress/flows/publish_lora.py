"""publish-lora: LoRA safetensors (and extra files) to a Hub model repo or a local directory,
with a SHA256 skip that really skips: nothing differs -> no upload and no commit."""

from __future__ import annotations

from typing import Any

from prefect import flow

from hubpress.flows.params import PublishLoraParams
from hubpress.lora.publish import card_for
from hubpress.orchestration import artifacts, assets
from hubpress.settings import get_settings
from hubpress.shards.published import PublishedRecord, PublishedRecords
from hubpress.shards.unchanged import asks_more, lora_digest, lora_unchanged_result, unchanged_head
from hubpress.targets.publish import open_target, require_write_access
from hubpress.tasks.lora import prepare_lora_task
from hubpress.tasks.publish import publish_task


@flow(name="publish-lora", validate_parameters=True)
def publish_lora(params: PublishLoraParams) -> dict[str, Any]:
    settings = get_settings()
    target = open_target(params.target, "model", settings, write=not params.dry_run, defer_access_check=True)

    # The cheapest check first: one stat per file and the target's head (one round trip). The
    # same files, options and head as the last publish from here: nothing to read or send. The
    # CLI and the API ask the same (hubpress.shards.unchanged) before they create a run at all.
    records = PublishedRecords(settings.cache_dir, kind="model")
    digest = lora_digest(params)
    record = records.get(params.target, params.revision)
    if unchanged_head(target, record, digest, asks_more(params), params.revision):
        return lora_unchanged_result(params.target)
    if not params.dry_run:  # something to write: a token that cannot write is refused before any work
        require_write_access(target)

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
        artifacts.commit_link(
            outcome.commit_url, f"LoRA commit {outcome.commit[:12]} in {params.target}", params.target
        )
    head = outcome.commit or outcome.plan.parent_commit
    if digest and head and not params.dry_run:
        records.put(params.target, params.revision, PublishedRecord(digest, head))
    result = outcome.to_dict()
    result["unchanged"] = outcome.commit is None and not params.dry_run
    info = bundle.info
    result["lora_family"] = info.family
    result["lora"] = {
        "lora_family": info.family,
        "rank": info.rank,
        "ranks": list(info.ranks),
        "alphas": list(info.alphas),
        "target_modules": list(info.target_modules),
    }
    assets.record_publish(
        params.target, "model", params.revision, result, [assets.source_key(params.src_path)]
    )
    return result
