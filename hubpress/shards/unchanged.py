"""The cheapest check of publish-dataset and publish-lora, in one place.

The flows ask it first (served, scheduled and UI runs), and the CLI and the Python API ask it
before they create a flow run at all (hubpress.orchestration.unchanged_event then records the
unchanged publish as a Prefect event). Both sides compute the same listing digest, read the same
record of the last publish (hubpress.shards.published.PublishedRecords) and decide with the same
pure functions (`head_can_decide`, then `is_unchanged` on the target's head), so a publish is a
no-op before the flow exactly when it would be one inside it.

Nothing here imports Prefect, `datasets` or pyarrow: a no-op costs a listing of the source (one
stat per file for a LoRA), a small file read and one round trip to the target.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hubpress.settings import Settings, get_settings
from hubpress.shards.published import (
    PublishedRecord,
    PublishedRecords,
    head_can_decide,
    is_unchanged,
    listing_digest,
    local_listing,
)
from hubpress.storage.files import ListedFile
from hubpress.storage.listing import relpaths_of
from hubpress.targets.base import Target

if TYPE_CHECKING:  # the flows' parameter models: the shards layer never imports the flows layer
    from hubpress.flows.params import PublishDatasetParams, PublishLoraParams

log = logging.getLogger("hubpress.unchanged")

DATASET_FLOW = "publish-dataset"
LORA_FLOW = "publish-lora"


# --- pure -----------------------------------------------------------------------------------------


def asks_more(params: PublishDatasetParams | PublishLoraParams) -> bool:
    """A dry run, a pull request or a tag asks for more than "is there anything new": those runs
    always take the full path."""
    return bool(params.dry_run or params.tag or getattr(params, "create_pr", False))


def dataset_options(params: PublishDatasetParams, listing: list[ListedFile]) -> dict[str, Any]:
    """The options that shape a dataset's published bytes (the manifest's `options`)."""
    from hubpress.shards.pipeline import build_options
    from hubpress.sources.discovery import detect_layout

    return build_options(
        target=params.target,
        # The layout found, not the one asked for: "auto" (CLI) and "folder" (API) publish the same.
        layout=detect_layout(relpaths_of(listing), params.layout),
        on_error=params.on_error,
        allow_missing_target=params.allow_missing_target,
        prompt_encoding=params.prompt_encoding,
        max_shard_size=params.max_shard_size,
        license=params.license,
        pretty_name=params.pretty_name,
        tags=params.tags,
    )


def dataset_digest(
    params: PublishDatasetParams, listing: Sequence[ListedFile], options: dict[str, Any]
) -> str:
    return listing_digest(listing, {**options, "max_pixels": params.max_pixels})


def lora_digest(params: PublishLoraParams) -> str | None:
    """The digest of the files a LoRA publish would send (by path, size, mtime and inode) and of
    the options that shape the card; None when a file is missing (the full path reports it)."""
    from hubpress.lora.weights import adapter_config_beside, find_weights

    try:
        weights = find_weights(params.src_path)
        beside = adapter_config_beside(weights)
        files = local_listing([weights, *([beside] if beside else []), *sorted(params.extra_files)])
    except Exception:  # noqa: BLE001 - prepare_lora says what is wrong, with its own message
        return None
    options = params.model_dump(mode="json", exclude={"src_path", "dry_run", "tag", "commit_message"})
    return listing_digest(files, options)


def lora_unchanged_result(target: str) -> dict[str, Any]:
    """What publish-lora returns when nothing differs from its last publish."""
    return {
        "target": target,
        "commit": None,
        "commit_url": None,
        "dry_run": False,
        "uploaded_files": [],
        "uploaded_bytes": 0,
        "unchanged_files": [],
        "deleted_files": [],
        "unchanged": True,
    }


# --- edges: the target's head, the listing ----------------------------------------------------------


def unchanged_head(
    target: Target, record: PublishedRecord | None, digest: str | None, asks: bool, revision: str
) -> str | None:
    """The target's head when the publish is a no-op, else None. The round trip is made only when
    the head can decide."""
    if not head_can_decide(record, digest, asks):
        return None
    head = target.head(revision)
    return head if is_unchanged(record, digest, head) else None


@dataclass(frozen=True, slots=True)
class Unchanged:
    """A publish found unchanged before any flow run: what the flow would have returned."""

    flow: str  # the flow it stands for: publish-dataset or publish-lora
    repo_type: str  # dataset or model
    source: str
    target: str
    revision: str
    head: str
    result: dict[str, Any]


def _settings(params: PublishDatasetParams | PublishLoraParams) -> Settings:
    staging = getattr(params, "staging", None)
    return get_settings({"staging": staging} if staging else None)


def check_dataset(params: PublishDatasetParams) -> Unchanged | None:
    """publish-dataset's no-op, decided without Prefect; None when the flow must run."""
    from hubpress.shards.run_result import unchanged_result
    from hubpress.sources.intake import list_source
    from hubpress.storage.files import open_storage
    from hubpress.targets.publish import open_target

    if asks_more(params):
        return None
    settings = _settings(params)
    record = PublishedRecords(settings.cache_dir).get(params.target, params.revision)
    if record is None:
        return None
    listing = list_source(open_storage(params.source, settings))
    digest = dataset_digest(params, listing, dataset_options(params, listing))
    if not head_can_decide(record, digest, False):
        return None
    # Opened as the flow opens it; an unchanged publish writes nothing, so write access is asked
    # only by a run that has something to write (hubpress.targets.publish.require_write_access).
    target = open_target(params.target, "dataset", settings, write=True, defer_access_check=True)
    head = unchanged_head(target, record, digest, False, params.revision)
    if head is None:
        return None
    return Unchanged(
        DATASET_FLOW,
        "dataset",
        params.source,
        params.target,
        params.revision,
        head,
        unchanged_result(params.target, record),
    )


def check_lora(params: PublishLoraParams) -> Unchanged | None:
    """publish-lora's no-op, decided without Prefect; None when the flow must run."""
    from hubpress.targets.publish import open_target

    if asks_more(params):
        return None
    settings = _settings(params)
    record = PublishedRecords(settings.cache_dir, kind="model").get(params.target, params.revision)
    digest = lora_digest(params)
    if not head_can_decide(record, digest, False):
        return None
    target = open_target(params.target, "model", settings, write=True, defer_access_check=True)
    head = unchanged_head(target, record, digest, False, params.revision)
    if head is None:
        return None
    return Unchanged(
        LORA_FLOW,
        "model",
        params.src_path,
        params.target,
        params.revision,
        head,
        lora_unchanged_result(params.target),
    )
