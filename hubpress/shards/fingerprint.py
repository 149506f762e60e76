"""A dataset's fingerprint: a hash of everything a publish-dataset stage depends on, so a stage
built once is found again (hubpress.shards.staging.Staging.lookup) instead of being rebuilt."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from hashlib import sha256
from itertools import pairwise
from operator import attrgetter, itemgetter, methodcaller
from typing import Any

import hubpress
from hubpress.shards.keys import format_json_string, json_encoder, json_string
from hubpress.shards.sample_digests import DIGEST_BYTES, SampleDigests
from hubpress.shards.shards import SHARD_FORMAT
from hubpress.shards.staging import RECORD_FORMAT
from hubpress.sources.discovery import gc_paused
from hubpress.sources.models import FileRef, IntakeReport, Sample, held_sha256_of


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


def dataset_fingerprint(report: IntakeReport, options: Mapping[str, Any]) -> str:
    """A hash of everything a stage holds depends on: the intake manifest (ids, file sha256s,
    prompts, skipped samples and corrections, which manifest.json reports), the build and card
    options, and the hubpress and shard format versions. 32 hex characters. The README is not
    staged (it is merged with the target's card at publish time), so the target's card is not
    part of it."""
    return fingerprint_and_digests(report, options)[0]


# One encoder each for every sample (json.dumps with options builds a new one per call): the text
# of json.dumps(value, ensure_ascii=False, sort_keys=True, default=str) for the fingerprint, and
# of json.dumps(value, sort_keys=True, default=str) for a sample's digest. Values are plain, never
# circular, so the check for cycles is skipped.
_ENCODE = json_encoder(ensure_ascii=False, sort_keys=True, default=str)
_ENCODE_ASCII = json_encoder(sort_keys=True, default=str)


@gc_paused()  # a digest per sample, all kept: nothing for the cyclic GC to find in the intake's heap
def fingerprint_and_digests(
    report: IntakeReport, options: Mapping[str, Any]
) -> tuple[str, Mapping[str, str]]:
    """The dataset's fingerprint (dataset_fingerprint) and each sample's digest (`split/id` -> 16
    hex characters of the sha256 of its facts as ASCII JSON: hubpress.shards.published.
    sample_digests), in one pass: both are made of the same facts, and text of printable ASCII
    encodes the same with or without ensure_ascii, so most samples are encoded once, not twice.
    The digests are a SampleDigests (8 bytes a sample, not a dict entry of two strings), which
    reads and compares as the dict but is not a JSON object: sample_digests gives the dict."""
    digest = hashlib.sha256()

    def feed(value: Any) -> None:
        digest.update(_ENCODE(value).encode() + b"\n")

    feed(["hubpress-stage", RECORD_FORMAT, SHARD_FORMAT, hubpress.__version__, report.source, report.layout])
    feed(dict(options))
    # Each split's digests as its ids and 8 bytes a sample (SampleDigests), in the report's order of
    # splits, as sample_digests always gave them.
    parts: dict[str, tuple[list[str], bytearray]] = {}
    for split in sorted(report.splits):
        manifest = report.splits[split]
        feed(["split", split, len(manifest.samples)])
        ordered = sorted(manifest.samples, key=_ID)
        ids = list(map(_ID, ordered))
        digests = bytearray()
        # The fingerprint's lines a few thousand at a time, and their digests by `map` over C
        # functions: no Python frame per sample but the text's own.
        for start in range(0, len(ordered), _LINES_PER_UPDATE):
            batch = ordered[start : start + _LINES_PER_UPDATE]
            texts = list(map(_facts_text, batch))
            lines = "\n".join(texts) + "\n"
            digest.update(lines.encode())
            # A digest hashes the facts' ASCII JSON (ensure_ascii): text of printable ASCII is
            # that already. DEL (\x7f) is ASCII, but ensure_ascii escapes it: such text, and any
            # that is not ASCII, is encoded again.
            if lines.isascii() and "\x7f" not in lines:
                digests += b"".join(map(_SHORT, map(_DIGEST, map(sha256, map(str.encode, texts)))))
                continue
            for sample, text in zip(batch, texts, strict=True):
                if not text.isascii() or "\x7f" in text:
                    text = _ENCODE_ASCII(sample_facts(sample))
                digests += sha256(text.encode()).digest()[:DIGEST_BYTES]
        parts[split] = (ids, digests)
        feed(sorted([s.id, list(s.reasons)] for s in manifest.skipped))
    feed(sorted([c.split, c.sample, c.path, c.from_, c.to, c.kind] for c in report.corrections))
    made = SampleDigests()
    for split in report.splits:
        made.add_split(split, *parts[split])
    if all("/" not in split and not _has_twins(parts[split][0]) for split in parts):
        return digest.hexdigest()[:32], made
    # Keys that meet (an id twice in a split, a split named with a "/"): the dict, in which a
    # later digest takes an earlier one's place, as it always did.
    return digest.hexdigest()[:32], dict(made.items())


_ID = attrgetter("id")
_DIGEST = methodcaller("digest")
_SHORT = itemgetter(slice(0, DIGEST_BYTES))  # a sample's digest: the first bytes of its sha256
_LINES_PER_UPDATE = 4096  # under 1 MB of text at a time
_quote = json_string  # a string's JSON text as _ENCODE writes it (not ASCII-only)


def _facts_text(sample: Sample) -> str:
    """_ENCODE(sample_facts(sample)), written directly for most samples: one control and a target,
    both validated (the sha256 held as its digest), with plain strings and sizes. Held to _ENCODE's
    text by tests/shards/test_sample_digests.py."""
    sid, prompt, controls, target = sample.id, sample.prompt, sample.controls, sample.target
    if len(controls) == 1 and sample.mask is None and target is not None:
        control = controls[0]
        held, target_held = held_sha256_of(control), held_sha256_of(target)
        fmt, target_fmt, size, target_size = control.format, target.format, control.size, target.size
        relpath, target_relpath = control.relpath, target.relpath
        if (
            held.__class__ is bytes
            and target_held.__class__ is bytes
            and fmt.__class__ is str
            and target_fmt.__class__ is str
            and size.__class__ is int
            and target_size.__class__ is int
            and sid.__class__ is str
            and prompt.__class__ is str
            and relpath.__class__ is str
            and target_relpath.__class__ is str
        ):
            quoted = format_json_string(fmt)
            target_quoted = quoted if target_fmt == fmt else format_json_string(target_fmt)
            return (
                f'[{_quote(sid)}, {_quote(prompt)}, [[{_quote(relpath)}, "{held.hex()}", {quoted}, {size}]], '
                f'null, [{_quote(target_relpath)}, "{target_held.hex()}", {target_quoted}, {target_size}]]'
            )
    return _ENCODE(sample_facts(sample))


def _has_twins(sorted_ids: list[str]) -> bool:
    return any(a == b for a, b in pairwise(sorted_ids))
