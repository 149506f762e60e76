"""decide(..., hand_over=True) puts each sample its fast path keeps in the discovered sample's
place, so discovery's copies are freed as the report grows. The report is the one deciding over
discovery's own samples gives, the first time and every time after, as the flow decides again
over the same Discovery after decoding skipped samples' images, with the same or newer facts."""

from __future__ import annotations

import copy

import pytest

from hubpress.sources.image_checks import FileFacts
from hubpress.sources.intake import IntakeOptions, decide, discover_source
from hubpress.sources.validation import validate_samples
from hubpress.storage.files import open_storage
from hubpress.storage.hashcache import HashCache
from hubpress.testdata.synth import DEFECTS, write_dataset


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

    untouched = copy.deepcopy(found)
    expected = report_over(found, facts, False)
    assert found.samples == untouched.samples  # without hand_over, found is left as it was
    first = report_over(found, facts, True)
    assert first.to_json() == expected.to_json()
    handed = {id(s) for listed in found.samples.values() for s in listed}
    kept = [s for m in first.splits.values() for s in m.samples]
    took_place = sum(id(s) in handed for s in kept)
    assert took_place >= len(kept) // 2 if fast else took_place == 0  # kept by the fast path: handed over
    assert kept and any(m.skipped for m in first.splits.values())
    assert report_over(found, facts, True).to_json() == expected.to_json()  # and again

    # Newer facts, as after the flow decodes a skipped sample's images: one file a kept sample
    # uses turns out undecodable. Over the handed-over samples, the same report as over fresh ones.
    victim = kept[0].target.relpath if kept[0].target is not None else kept[0].controls[0].relpath
    newer = dict(facts)
    newer[victim] = FileFacts(facts[victim].sha256, error="undecodable_image", detail="broken at the build")
    again = report_over(found, newer, True)
    assert again.to_json() == report_over(copy.deepcopy(untouched), newer, False).to_json()
    assert any(victim == p.path and p.kind == "undecodable_image" for p in again.problems)
