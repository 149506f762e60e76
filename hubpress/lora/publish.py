"""LoRA publishing and the post-training release, as plain steps over typed values.

Everything that can be refused is refused before a byte is sent: the weights' header, that the
tensors are a LoRA, pickles, missing extra files. Hashes come from the hash cache (path, size,
mtime, inode), so an unchanged multi-GB file is never re-read; the plan then compares them with
the remote's sha256 and nothing differs -> no upload and no commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubpress.errors import ConfigError
from hubpress.lora.loaders import PEFT_WEIGHT_NAME
from hubpress.lora.model_card import render_model_card
from hubpress.lora.release import (
    Checkpoint,
    ReleaseManifest,
    TrainingOutput,
    discover_training_output,
    load_training_config,
    release_files,
)
from hubpress.lora.selection import select_checkpoint
from hubpress.lora.weights import (
    ADAPTER_CONFIG,
    LoraInfo,
    adapter_config_beside,
    apply_adapter_config,
    find_weights,
    inspect_safetensors,
)
from hubpress.parsers import MAX_DOCUMENT_BYTES
from hubpress.settings import Settings
from hubpress.shards.staging import RELEASE_PREFIX, Staging
from hubpress.storage import names
from hubpress.storage.hashcache import HashCache
from hubpress.storage.regular import read_regular
from hubpress.storage.scratch import scratch_dir
from hubpress.targets.plan import StagedFile, git_blob_oid

log = logging.getLogger("hubpress.lora")

DEFAULT_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
RELEASE_JSON = "release.json"
SMALL = 10 * 1024 * 1024


@dataclass(slots=True)
class LoraBundle:
    """What a LoRA publish sends: the weights, extra files, and what the card needs to know."""

    files: list[StagedFile]
    info: LoraInfo
    weight_name: str
    training_config: dict[str, Any] | None = None
    sample_images: list[str] = field(default_factory=list)
    user_card: bool = False  # the user passed their own README.md: no generated card


def hash_cache(settings: Settings) -> HashCache:
    return HashCache(Path(settings.cache_dir) / "hashes.sqlite")


def staged_local(path: str | Path, path_in_repo: str, cache: HashCache) -> StagedFile:
    path = os.path.abspath(path)
    size = os.path.getsize(path)
    sha = cache.sha256_local(path)
    oid = None
    if size <= SMALL:
        with open(path, "rb") as fh:
            oid = git_blob_oid(fh.read())
    return StagedFile(path=path_in_repo, sha256=sha, size=size, source=path, git_oid=oid)


def check_card_text(local: str) -> None:
    """A card given as an extra file (`--extra card.md=README.md`) is the repo's README.md, which
    every later publish reads back and merges: it must be UTF-8 text within the document limit
    (weights given there by mistake, a card saved in Latin-1, are one line, before anything is sent)."""
    from hubpress.targets.blob_texts import too_large, utf8_text

    card = read_regular(local, MAX_DOCUMENT_BYTES)
    if (refusal := too_large(local, "the card given as README.md", len(card))) is not None:
        raise refusal
    utf8_text(card, local, "the card given as README.md")


def prepare_lora(
    src_path: str | Path,
    *,
    remote_name: str | None = None,
    extra_files: dict[str, str] | None = None,
    cache: HashCache,
) -> LoraBundle:
    """Validate and hash everything a LoRA publish will send. Raises before any network call."""
    weights = find_weights(src_path)
    info = inspect_safetensors(weights)
    extra_files = dict(extra_files or {})
    adapter_config = adapter_config_beside(weights)
    # A PEFT adapter folder keeps PEFT's names: PeftModel.from_pretrained and load_peft_weights look
    # for exactly adapter_model.safetensors beside adapter_config.json (hubpress.lora.loaders).
    default_name = PEFT_WEIGHT_NAME if adapter_config is not None else DEFAULT_WEIGHT_NAME
    weight_name = remote_name or default_name
    if adapter_config is not None:  # PEFT's config travels with its weights, and is checked against them
        info = apply_adapter_config(info, adapter_config)
        if ADAPTER_CONFIG not in extra_files.values():
            extra_files.setdefault(str(adapter_config), ADAPTER_CONFIG)
    missing = [local for local in extra_files if not os.path.isfile(local)]
    if missing:
        raise ConfigError(
            "Extra file(s) not found (or not regular files: a device, FIFO or socket is never read), "
            "nothing was uploaded: " + ", ".join(missing) + ". Fix the paths and run again."
        )
    remote_paths = [weight_name, *extra_files.values()]
    duplicates = sorted({p for p in remote_paths if remote_paths.count(p) > 1})
    if duplicates:
        raise ConfigError(f"Several files would land at the same path in the repo: {', '.join(duplicates)}.")
    files = [staged_local(weights, weight_name, cache)]
    config = None
    for local, remote in sorted(extra_files.items(), key=lambda kv: kv[1]):
        if remote == "README.md":
            check_card_text(local)
        files.append(staged_local(local, remote, cache))
        if remote.rsplit("/", 1)[-1] in {
            "train_config.yaml",
            "train_config.yml",
            "train_config.json",
            "config.yaml",
        }:
            from hubpress.lora.release import parse_training_config

            config = parse_training_config(read_regular(local, MAX_DOCUMENT_BYTES), local)
    return LoraBundle(
        files=files,
        info=info,
        weight_name=weight_name,
        training_config=config,
        user_card="README.md" in extra_files.values(),
    )


def card_for(bundle: LoraBundle, repo_id: str, base_model: str | None, license: str | None, provenance=None):
    if bundle.user_card:
        return None
    return lambda existing: render_model_card(
        existing,
        bundle.info,
        repo_id=repo_id,
        base_model=base_model,
        license=license,
        training_config=bundle.training_config,
        sample_images=bundle.sample_images or None,
        weight_name=bundle.weight_name,
        provenance=provenance,
        with_adapter_config=any(f.path == ADAPTER_CONFIG for f in bundle.files),
    )


# --- the post-training release ----------------------------------------------------------------


@dataclass(slots=True)
class PreparedRelease:
    output: TrainingOutput
    checkpoint: Checkpoint
    bundle: LoraBundle
    staging: Staging
    fingerprint: str
    stage_reused: bool = False  # an earlier run (failed, killed) had staged these files


def _release_fingerprint(files) -> str:
    facts = sorted([f.source_uri, f.path_in_repo, f.size, f.version] for f in files)
    return RELEASE_PREFIX + hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:32]


def prepare_release(output_uri: str, select: str, settings: Settings, lease=None) -> PreparedRelease:
    """Find the checkpoint, stage its files (local or S3 staging), and validate the weights.
    `lease` (a hubpress.shards.runs.RunStage) is made to name the stage before it is looked up, so
    no sweep removes it while this release uses it."""
    output = discover_training_output(output_uri, settings)
    checkpoint = select_checkpoint(output, select)
    chosen = release_files(output, checkpoint)
    staging = lease.staging if lease is not None else Staging(settings.staging, settings)
    fingerprint = _release_fingerprint(chosen)
    if lease is not None:
        lease.renew(keys=[fingerprint])
    staged = staging.lookup(fingerprint)
    stage_reused = staged is not None
    if staged is None:
        from hubpress.storage.files import ListedFile, open_storage

        source = open_storage(output.root, settings)
        root = source.root.rstrip("/") + "/"

        staged = []
        with scratch_dir("release") as tmp:
            for f in chosen:
                local = names.inside(tmp, f.path_in_repo, what="path in the repo")
                local.parent.mkdir(parents=True, exist_ok=True)
                rel = f.source_uri[len(root) :] if f.source_uri.startswith(root) else f.source_uri
                # The file the selection listed, of its listed size and version, or nothing: weights
                # rewritten since (or an S3 answer of other bytes) are never staged as the checkpoint.
                source.get_listed(ListedFile(rel, f.size, f.version), local)
                staged.append(staging.add_file(fingerprint, f.path_in_repo, local))
        staged = staging.complete(fingerprint, staged)
    weights = next(f for f in staged if f.path in (DEFAULT_WEIGHT_NAME, PEFT_WEIGHT_NAME))

    with scratch_dir("inspect") as tmp:
        info = inspect_safetensors(staging.local_copy(weights, tmp))
    config = load_training_config(output, settings)
    samples = sorted(f.path for f in staged if f.path.startswith("samples/"))
    bundle = LoraBundle(
        files=staged,
        info=info,
        weight_name=weights.path,
        training_config=config,
        sample_images=samples,
    )
    return PreparedRelease(output, checkpoint, bundle, staging, fingerprint, stage_reused)


def release_manifest(
    prep: PreparedRelease, select: str, tag: str, flow_run_id: str | None, previous: str | None
) -> bytes:
    """release.json. When the previous release.json describes the same files from the same
    checkpoint, its bytes are reused as they are, so re-releasing the same output is a no-op."""
    manifest = ReleaseManifest(
        source=prep.output.root,
        checkpoint=prep.checkpoint.name,
        checkpoint_step=prep.checkpoint.step,
        select=select,
        files={f.path: f.sha256 for f in prep.bundle.files},
        sources={},
        tag=tag,
        flow_run_id=flow_run_id,
        lora=prep.bundle.info.to_dict(),
    )
    if previous:
        try:
            old = ReleaseManifest.from_json(previous)
        except Exception:
            old = None
        if old is not None and (old.files, old.checkpoint, old.source, old.tag) == (
            manifest.files,
            manifest.checkpoint,
            manifest.source,
            manifest.tag,
        ):
            return previous.encode("utf-8")
    return (manifest.to_json() + "\n").encode("utf-8")
