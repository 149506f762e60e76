"""decide(..., hand_over=True) puts each sample its fast path keeps in the discovered sample's
place, so discovery's copies are freed as the report grows. The report is the one deciding over
discovery's own samples gives, the first time and every time after, as the flow decides again
over the same Discovery after decoding skipped samples' images, with the same or newer facts."""

from __future__ import annotations

import copy
import pickle
from dataclasses import astuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.sources.facts_by_path import FactsByPath
from hubpress.sources.image_checks import FileFacts
from hubpress.sources.intake import IntakeOptions, decide, discover_source
from hubpress.sources.models import FileRef, Sample
from hubpress.sources.plain_verdicts import plainly_kept
from hubpress.sources.policy import _kept_in_place
from hubpress.sources.validation import validate_samples
from hubpress.storage.files import open_storage
from hubpress.storage.hashcache import HashCache
from hubpress.testdata.synth import DEFECTS, write_dataset
from tests.sources.test_plain_verdicts import cases, mostly_plain


def _held_by_sha256(facts) -> FactsByPath:
    """The facts as validation's cache scan holds them: each file with the first file's facts
    (but its sha256) held as its sha256 alone."""
    by_path = FactsByPath()
    for relpath, f in facts.items():
        by_path.put_shared(relpath, f.sha256, astuple(f)[1:])
    return by_path


@pytest.mark.parametrize(
    ("spec", "fast"),
    [
        ({"layout": "csv", "extra_controls": 1, "fancy_names": True}, True),
        ({"layout": "csv", "masks": True, "test_fraction": 0.3}, False),  # masks: judge decides
        ({"layout": "folder", "test_fraction": 0.3}, False),  # prompt files: judge decides
    ],
)
def test_handing_over_discovery_gives_the_same_report_every_time(tmp_path, spec, fast):
    write_dataset(tmp_path / "src", samples=14, defects=DEFECTS, defect_count=2, seed=3, **spec)
    storage = open_storage(str(tmp_path / "src"))
    options = IntakeOptions()
    found = discover_source(storage, options)
    samples = [s for listed in found.samples.values() for s in listed]
    facts = validate_samples(samples, root=storage.root, cache=HashCache(None), workers=1).facts

    def report_over(discovery, known, hand_over):
        return decide(discovery, known, source=storage.root, options=options, hand_over=hand_over)

    facts = _held_by_sha256(facts)
    untouched = copy.deepcopy(found)
    discovered = {id(s) for listed in found.samples.values() for s in listed}
    discovered_refs = {id(r) for listed in found.samples.values() for s in listed for r in s.images()}
    expected = report_over(found, facts, False)
    assert found.samples == untouched.samples  # without hand_over, found is left as it was
    first = report_over(found, facts, True)
    assert first.to_json() == expected.to_json()
    handed = {id(s) for listed in found.samples.values() for s in listed}
    kept = [s for m in first.splits.values() for s in m.samples]
    took_place = sum(id(s) in handed for s in kept)
    assert took_place >= len(kept) // 2 if fast else took_place == 0  # kept by the fast path: handed over
    assert kept and any(m.skipped for m in first.splits.values())
    # The fast path's samples are discovery's own, filled in: no new Sample or FileRef.
    in_place = [s for s in kept if id(s) in discovered]
    assert len(in_place) >= len(kept) // 2 if fast else not in_place
    assert all(id(r) in discovered_refs for s in in_place for r in s.images())
    assert pickle.loads(pickle.dumps(first)).to_json() == expected.to_json()
    assert report_over(found, facts, True).to_json() == expected.to_json()  # and again

    # Newer facts, as after the flow decodes a skipped sample's images: one file a kept sample
    # uses turns out undecodable. Over the handed-over samples, the same report as over fresh ones.
    victim = kept[0].target.relpath if kept[0].target is not None else kept[0].controls[0].relpath
    newer = dict(facts.items())
    newer[victim] = FileFacts(facts[victim].sha256, error="undecodable_image", detail="broken at the build")
    again = report_over(found, newer, True)
    assert again.to_json() == report_over(copy.deepcopy(untouched), newer, False).to_json()
    assert any(victim == p.path and p.kind == "undecodable_image" for p in again.problems)


@settings(max_examples=300, deadline=None)
@given(st.one_of(cases(), mostly_plain()))
def test_a_sample_kept_in_place_is_the_one_the_fast_path_keeps(case):
    """The decision's in-place keep (policy._kept_in_place, hand_over) fills the discovered
    sample and FileRefs only when it keeps the sample plainly_kept keeps, equal to it in every
    way (fields, equality, hash, repr, pickling, JSON); otherwise it leaves the sample as it was."""
    sample, facts = case
    by_path = _held_by_sha256(facts)
    before = copy.deepcopy(sample)
    expected = plainly_kept(before, by_path)
    keep = _kept_in_place(by_path)
    if keep is None or not keep(sample):
        assert sample == before and all(
            astuple(a) == astuple(b) for a, b in zip(sample.images(), before.images(), strict=True)
        )
        return
    assert expected is not None and sample == expected
    assert len(sample.controls) == len(before.controls)
    for made, filled in zip(expected.images(), sample.images(), strict=True):
        assert isinstance(filled, FileRef) and filled == made and hash(filled) == hash(made)
        assert repr(filled) == repr(made) and pickle.loads(pickle.dumps(filled)) == made
        assert filled.sha256 == made.sha256 and filled.version == made.version and filled.uri == made.uri
    assert repr(sample) == repr(expected)


def test_the_in_place_keep_asks_each_name_as_name_agrees_does():
    """The in-place keep remembers name_agrees by a name's suffix: a name that is all suffix
    (".png"), or has none while its folder has a dot, is not taken for another name with it."""
    names = ["a.png", ".png", "b.png", "x.png/c", "d.PNG", "e", "f.jpg", "g.png"]
    by_path = FactsByPath()
    for name in names:
        for kind in ("c", "t"):
            by_path.put_shared(
                f"train/{kind}/{name}", "a" * 64, ("png", 8, 8, None, None, None, 64, None, False, None)
            )
    keep = _kept_in_place(by_path)
    for name in names:
        refs = [FileRef(f"/r/train/{kind}/{name}", f"train/{kind}/{name}", 5, version="1:2") for kind in "ct"]
        sample = Sample("s1", "train", "p", [refs[0]], None, refs[1], row=1)
        expected = plainly_kept(copy.deepcopy(sample), by_path)
        assert keep(sample) == (expected is not None), name
        assert expected is None or sample == expected
