"""The per-sample digests are held as each split's ids and 8 bytes a sample (SampleDigests), not as
a dict of two strings a sample: they must read, compare, pickle and be recorded as the dict
fingerprint_and_digests made before, which this file keeps as the reference (`_as_a_dict`), for
any splits and ids: ids twice in a split, split names and ids with a "/" whose keys meet."""

from __future__ import annotations

import hashlib
import pickle

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubpress.shards.fingerprint import _ENCODE_ASCII, fingerprint_and_digests, sample_facts
from hubpress.shards.published import PublishedRecord, PublishedRecords, sample_changes
from hubpress.shards.sample_digests import SampleDigests
from hubpress.sources.models import FileRef, IntakeReport, Sample, SplitManifest


def _as_a_dict(report: IntakeReport) -> dict[str, str]:
    """The digests as fingerprint_and_digests made them before: a dict per split in sorted order,
    merged in the report's order of splits."""
    by_split = {}
    for split in sorted(report.splits):
        digests = by_split[split] = {}
        for sample in sorted(report.splits[split].samples, key=lambda s: s.id):
            text = _ENCODE_ASCII(sample_facts(sample))
            digests[f"{split}/{sample.id}"] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return {k: v for split in report.splits for k, v in by_split[split].items()}


ids = st.sampled_from(["a", "b", "b/c", "c", "m1", "é"])
prompts = st.sampled_from(["make it red", "make it blue", ""])
split_samples = st.lists(st.tuples(ids, prompts), max_size=5)
splits = st.dictionaries(st.sampled_from(["train", "test", "a", "a/b"]), split_samples, max_size=3)


def _report(drawn: dict[str, list[tuple[str, str]]]) -> IntakeReport:
    report = IntakeReport(source="/data/", layout="csv")
    for split, rows in drawn.items():
        samples = [
            Sample(sid, split, prompt, [FileRef(f"/data/c{n}.png", f"c{n}.png", n)], None,
                   FileRef(f"/data/t{n}.png", f"t{n}.png", n + 1, "png", f"{n:064x}"))
            for n, (sid, prompt) in enumerate(rows)
        ]  # fmt: skip
        report.splits[split] = SplitManifest(split, samples)
    return report


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=splits, before=st.dictionaries(st.sampled_from(["train/a", "test/b", "a/b/c", "x"]), prompts))
def test_the_digests_read_as_the_dict_they_replace(tmp_path, drawn, before):
    report = _report(drawn)
    expected = _as_a_dict(report)
    digests = fingerprint_and_digests(report, {})[1]
    unique = all("/" not in s for s in drawn) and all(
        len({sid for sid, _ in rows}) == len(rows) for rows in drawn.values()
    )
    assert isinstance(digests, SampleDigests) == unique  # else the dict, as before
    assert list(digests) == list(expected)
    assert list(digests.items()) == list(expected.items())
    assert list(digests.values()) == list(expected.values())
    assert list(digests.keys()) == list(expected.keys())
    assert len(digests) == len(expected)
    assert digests == expected and expected == digests
    assert (digests != expected) is False
    assert all(digests[key] == value and digests.get(key) == value for key, value in expected.items())
    for absent in ("train/zz", "a/b", "x", 3):
        assert (absent in digests) == (absent in expected)
        assert digests.get(absent, "none") == expected.get(absent, "none")
    if expected:
        first = next(iter(expected))
        assert digests != {**expected, first: "0" * 16}
        assert digests != {k: v for k, v in expected.items() if k != first}
    assert repr(digests) == repr(expected)
    again = pickle.loads(pickle.dumps(digests))
    assert again == expected and list(again.items()) == list(expected.items())
    assert sample_changes(before, digests) == sample_changes(before, expected) == _changes(before, expected)
    records = PublishedRecords(tmp_path / "cache")
    records.put("org/name", "main", PublishedRecord("listing", "head", digests))
    assert records.get("org/name", "main").samples == expected


def _changes(before: dict[str, str], after: dict[str, str]):
    """sample_changes as it was written before it stopped looking keys up in `after`."""
    from hubpress.shards.published import SampleChanges

    added = sum(1 for key in after if key not in before)
    changed = sum(1 for key, value in after.items() if key in before and before[key] != value)
    removed = sum(1 for key in before if key not in after)
    return SampleChanges(added, changed, removed)
