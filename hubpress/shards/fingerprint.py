"""A dataset's fingerprint: a hash of everything a publish-dataset stage depends on, so a stage
built once is found again (hubpress.shards.staging.Staging.lookup) instead of being rebuilt."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import hubpress
from hubpress.shards.shards import SHARD_FORMAT
from hubpress.shards.staging import RECORD_FORMAT
from hubpress.sources.discovery import gc_paused
from hubpress.sources.models import FileRef, IntakeReport, Sample


def _ref_facts(ref: FileRef | None) -> list[Any] | None:
    if ref is None:
        return None
    return [ref.relpath, ref.sha256 or f"{ref.uri}|{ref.size}|{ref.version}", ref.format, ref.size]


def sample_facts(sample: Sample) -> list[Any]:
    return [
        sample.id,
        sample.prompt,
        [_ref_facts(r) for r in sample.controls],
        _ref_facts(sample.mask),
        _ref_facts(sample.target),
    ]


@gc_paused()  # short-lived lists only: nothing for the cyclic GC to find in the intake's heap
def dataset_fingerprint(report: IntakeReport, options: Mapping[str, Any]) -> str:
    """A hash of everything a stage holds depends on: the intake manifest (ids, file sha256s,
    prompts, skipped samples and corrections, which manifest.json reports), the build and card
    options, and the hubpress and shard format versions. 32 hex characters. The README is not
    staged (it is merged with the target's card at publish time), so the target's card is not
    part of it."""
    digest = hashlib.sha256()
    # One encoder for every sample (json.dumps with options builds a new one per call); the same
    # text as json.dumps(value, ensure_ascii=False, sort_keys=True, default=str).
    encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str, check_circular=False).encode

    def feed(value: Any) -> None:
        digest.update(encode(value).encode() + b"\n")

    feed(["hubpress-stage", RECORD_FORMAT, SHARD_FORMAT, hubpress.__version__, report.source, report.layout])
    feed(dict(options))
    for split in sorted(report.splits):
        manifest = report.splits[split]
        feed(["split", split, len(manifest.samples)])
        for sample in sorted(manifest.samples, key=lambda s: s.id):
            feed(sample_facts(sample))
        feed(sorted([s.id, list(s.reasons)] for s in manifest.skipped))
    feed(sorted([c.split, c.sample, c.path, c.from_, c.to, c.kind] for c in report.corrections))
    return digest.hexdigest()[:32]
