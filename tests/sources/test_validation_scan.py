"""A large validation reads the facts cache in one range scan of the root's entries
(hubpress.sources.validation._facts_by_scan): the same facts and counts as the lookups chunk by
chunk, and a changed file or a cache full of other entries still handled as before."""

from __future__ import annotations

import pytest

from hubpress.sources import validation
from hubpress.sources.facts_by_path import FactsByPath
from hubpress.sources.validation import validate_files
from hubpress.storage.hashcache import HashCache
from hubpress.testdata.synth import write_dataset
from tests.sources.test_validation import jobs_for, png


@pytest.fixture
def tree(tmp_path):
    write_dataset(tmp_path / "ds", samples=12, masks=True, extra_controls=1)
    return str(tmp_path / "ds")


def run(root, cache, decode=True):
    return validate_files(jobs_for(root), root=root, cache=cache, workers=1, chunk_size=7, decode=decode)


@pytest.mark.parametrize("decode", [True, False])
def test_the_scan_finds_what_the_lookups_find(tmp_path, tree, monkeypatch, decode):
    cache = HashCache(tmp_path / "cache.sqlite")
    first = run(tree, cache, decode)
    monkeypatch.setattr(validation, "SCAN_FROM", 1)
    scanned = run(tree, cache, decode)
    monkeypatch.setattr(validation, "SCAN_FROM", 10**9)
    looked_up = run(tree, cache, decode)
    assert scanned.facts == looked_up.facts == first.facts
    assert scanned.stats == looked_up.stats
    assert scanned.stats.cache_hits == scanned.stats.files and scanned.stats.files_read == 0

    (tmp_path / "ds/train/control_images/s000003.png").write_bytes(png((9, 9)))
    monkeypatch.setattr(validation, "SCAN_FROM", 1)
    changed = run(tree, cache, decode)
    assert (changed.stats.files_read, changed.stats.cache_hits) == (1, changed.stats.files - 1)
    assert changed.facts["train/control_images/s000003.png"].width == 9
    # The cache now holds the file's old entry beside its new one: the scan, which puts a found
    # file's facts in its index in place, takes the one that matches, whichever comes first.
    again = run(tree, cache, decode)
    monkeypatch.setattr(validation, "SCAN_FROM", 10**9)
    assert again.facts == run(tree, cache, decode).facts == changed.facts
    assert (again.stats.files_read, again.stats.cache_hits) == (0, again.stats.files)


def test_the_scan_facts_are_its_index_and_a_late_file_is_added(tmp_path, tree, monkeypatch):
    """A whole tree's scan hands its index over as the facts' dict (FactsByPath.adopt), and a file
    it did not find (new tonight) is read and added to it."""
    cache = HashCache(tmp_path / "cache.sqlite")
    run(tree, cache)
    (tmp_path / "ds/train/control_images/new.png").write_bytes(png((5, 5)))
    monkeypatch.setattr(validation, "SCAN_FROM", 1)
    adopted = []
    real_adopt = FactsByPath.adopt
    monkeypatch.setattr(
        FactsByPath, "adopt", lambda self, held: adopted.append(held) or real_adopt(self, held)
    )
    night = run(tree, cache)
    assert len(adopted) == 1 and night.stats.files_read == 1
    assert night.facts["train/control_images/new.png"].width == 5
    # the adopted dict is the facts' own: the file read afterwards went into it
    assert set(adopted[0]) == set(night.facts) and "train/control_images/new.png" in adopted[0]
    with pytest.raises(ValueError):
        night.facts.adopt({})  # only an empty mapping takes a dict over


def test_a_cache_holding_many_more_entries_under_the_root_is_looked_up(tmp_path, tree, monkeypatch):
    cache = HashCache(tmp_path / "cache.sqlite")
    run(tree, cache)
    stale = [(f"{tree}/gone/{n}.png", 1, "v", "0" * 64, None) for n in range(1000)]
    cache.put_many(stale)
    monkeypatch.setattr(validation, "SCAN_FROM", 1)
    asked = []
    monkeypatch.setattr(HashCache, "under", lambda self, prefix: asked.append(prefix) or iter(()))
    again = run(tree, cache)
    assert asked == [] and again.stats.cache_hits == again.stats.files


def test_count_under_and_under_see_only_the_prefix(tmp_path):
    cache = HashCache(tmp_path / "c.sqlite")
    rows = [(uri, 1, "v", "a" * 64, {"k": 1}) for uri in ("/r/a", "/r/b/c", "/r0", "/r-x", "/q/r/a", "/r")]
    cache.put_many(rows)
    assert cache.count_under("/r/", 10) == 2 and cache.count_under("/r/", 1) == 1
    assert sorted(u for u, *_ in cache.under("/r/")) == ["/r/a", "/r/b/c"]
    with pytest.raises(ValueError):
        cache.count_under("/r", 10)
