"""The fingerprint and the per-sample digests write a plain sample's facts as JSON directly
(fingerprint._facts_text) and hash the fingerprint's lines a few thousand at a time: the same
fingerprint and digests as the JSON encoder's text hashed a line at a time (`_as_before`, the
code as it was), for any ids, prompts, images, splits, skipped samples and corrections."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import hubpress
import hubpress.shards.fingerprint as fingerprint
from hubpress.shards.fingerprint import _ENCODE, _ENCODE_ASCII, fingerprint_and_digests, sample_facts
from hubpress.shards.shards import SHARD_FORMAT
from hubpress.shards.staging import RECORD_FORMAT
from hubpress.sources.models import Correction, IntakeReport, Sample, SkippedSample, SplitManifest
from tests.shards.test_shard_keys import _any_sample, _nearly_plain_sample, _pair


def _as_before(report: IntakeReport, options: dict) -> tuple[str, dict[str, str]]:
    """fingerprint_and_digests as it was: each sample's facts through the encoder, one update a line."""
    digest = hashlib.sha256()

    def feed(value) -> None:
        digest.update(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str).encode() + b"\n")

    feed(["hubpress-stage", RECORD_FORMAT, SHARD_FORMAT, hubpress.__version__, report.source, report.layout])
    feed(dict(options))
    digests = {}
    for split in sorted(report.splits):
        manifest = report.splits[split]
        feed(["split", split, len(manifest.samples)])
        for sample in sorted(manifest.samples, key=lambda s: s.id):
            feed(sample_facts(sample))
            text = json.dumps(sample_facts(sample), sort_keys=True, default=str)
            digests[f"{split}/{sample.id}"] = hashlib.sha256(text.encode()).hexdigest()[:16]
        feed(sorted([s.id, list(s.reasons)] for s in manifest.skipped))
    feed(sorted([c.split, c.sample, c.path, c.from_, c.to, c.kind] for c in report.corrections))
    return digest.hexdigest()[:32], digests


_samples = _any_sample() | _nearly_plain_sample()


@settings(max_examples=500, deadline=None)
@given(_samples)
@example(_pair({}, {}))
@example(_pair({"format": "jpeg"}, {}))  # two formats
@example(_pair({"format": None}, {}))
@example(_pair({"sha256": None}, {}))  # never validated
@example(_pair({}, {"sha256": "AB" * 32}))
@example(_pair({"size": True}, {}))
@example(_pair({}, {}, sid='q"1\x7f', prompt="é猫\n"))
@example(_pair({}, {}, prompt=None))
def test_a_samples_facts_written_directly_are_their_json(sample):
    expected = json.dumps(sample_facts(sample), ensure_ascii=False, sort_keys=True, default=str)
    assert fingerprint._facts_text(sample) == _ENCODE(sample_facts(sample)) == expected
    assert _ENCODE_ASCII(sample_facts(sample)) == json.dumps(
        sample_facts(sample), sort_keys=True, default=str
    )


@st.composite
def _reports(draw) -> IntakeReport:
    splits = {}
    for split in draw(st.lists(st.sampled_from(["train", "test", "a/b"]), unique=True, max_size=3)):
        samples = []
        for n, sample in enumerate(draw(st.lists(_samples, max_size=8))):
            unique = draw(st.booleans())  # an id twice in a split now and then
            samples.append(Sample(f"{sample.id}{n}" if unique else sample.id, split, *_fields(sample)))
        skipped = [
            SkippedSample(i, ["missing_control"]) for i in draw(st.lists(st.text(max_size=3), max_size=2))
        ]
        splits[split] = SplitManifest(split, samples, skipped)
    corrections = [Correction("train", "s1", "a.jpg", "a.jpg", "a.png")] if draw(st.booleans()) else []
    return IntakeReport("/src", "csv", splits, corrections=corrections)


def _fields(sample: Sample) -> tuple:
    return (sample.prompt, sample.controls, sample.mask, sample.target)


@pytest.mark.parametrize("lines_per_update", [1, 3, 4096])
@settings(max_examples=100, deadline=None)
@given(report=_reports(), options=st.sampled_from([{}, {"max_shard_size": "500MB", "name": "é"}]))
def test_the_fingerprint_and_digests_are_those_hashed_a_line_at_a_time(lines_per_update, report, options):
    saved = fingerprint._LINES_PER_UPDATE
    fingerprint._LINES_PER_UPDATE = lines_per_update
    try:
        made, digests = fingerprint_and_digests(report, options)
    finally:
        fingerprint._LINES_PER_UPDATE = saved
    expected, expected_digests = _as_before(report, options)
    assert made == expected
    assert dict(digests.items()) == expected_digests
