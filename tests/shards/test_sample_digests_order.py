"""fingerprint_and_digests gives each sample's digest in the report's order of splits (each split's
samples by id), whatever that order, and the same fingerprint (the digests are made in sorted
order of splits, and held as a SampleDigests in the report's)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.shards.fingerprint import fingerprint_and_digests
from hubpress.sources.models import FileRef, IntakeReport, Sample, SplitManifest

ids = st.lists(st.sampled_from(["a", "b", "c", "m1", "z"]), unique=True, max_size=4)


def _report(splits: dict[str, list[str]]) -> IntakeReport:
    report = IntakeReport(source="/data/", layout="csv")
    for split, names in splits.items():
        samples = [
            Sample(n, split, f"make {n}", [FileRef(f"/data/{split}/c{n}.png", f"{split}/c{n}.png", 3)], None,
                   FileRef(f"/data/{split}/{n}.png", f"{split}/{n}.png", 4, "png", "ab" * 32))
            for n in reversed(names)
        ]  # fmt: skip
        report.splits[split] = SplitManifest(split, samples)
    return report


@settings(max_examples=100, deadline=None)
@given(st.permutations(["train", "test", "valid"]), st.integers(1, 3), ids, ids, ids)
def test_digests_in_the_reports_order_whatever_it_is(order, count, first, second, third):
    splits = dict(zip(order[:count], (first, second, third), strict=False))
    report = _report(splits)
    fingerprint, digests = fingerprint_and_digests(report, {})
    assert list(digests) == [f"{split}/{n}" for split, names in splits.items() for n in sorted(names)]
    # The fingerprint sees the splits sorted: the report's order of them does not change it.
    again = _report(dict(sorted(splits.items())))
    assert fingerprint_and_digests(again, {}) == (fingerprint, digests)
