"""Validation of samples holds its file jobs as the samples' FileRefs (validation.JobsOfRefs), each
FileJob made when read: it must read as the list file_jobs gives, and validating samples (the
cache scan over the FileRefs, a job made for each file found) must give the facts and counts the
list of jobs gives, whatever the cache knows."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.settings import get_settings
from hubpress.sources import validation
from hubpress.sources.discovery import discover
from hubpress.sources.intake import list_source
from hubpress.sources.models import FileRef, Sample
from hubpress.sources.validation import JobsOfRefs, file_jobs, validate_files, validate_samples
from hubpress.storage.files import LocalStorage
from hubpress.storage.hashcache import HashCache
from hubpress.testdata.synth import write_dataset
from tests.sources.test_file_jobs import samples
from tests.sources.test_validation import png


@settings(max_examples=200, deadline=None)
@given(samples(), st.integers(-8, 8), st.integers(-8, 8))
def test_reads_as_the_list_of_file_jobs(listed, i, j):
    expected = file_jobs(listed)
    jobs = JobsOfRefs.of(listed)
    assert len(jobs) == len(expected)
    assert list(jobs) == expected and [job.kind for job in jobs] == [job.kind for job in expected]
    assert jobs[i:j] == expected[i:j]
    if -len(expected) <= i < len(expected):
        assert jobs[i] == expected[i] and jobs[i].kind == expected[i].kind


def _samples(root: str) -> list[Sample]:
    found = discover(list_source(LocalStorage(root)), root=root)
    # A FileRef under another name (not root + relpath) and a prompt file: the scan's other paths.
    extra = FileRef(f"{root}/train/control_images/s000001.png", "elsewhere/s000001.png", 1, version="v")
    prompt = found.samples["train"][0].controls[0]
    samples = [s for listed in found.samples.values() for s in listed]
    return [Sample("x", "train", "p", [extra], None, None, prompt, 99), *samples]  # its prompt first


@pytest.mark.parametrize("decode", [True, False])
@pytest.mark.parametrize("scan_from", [1, 10**9])
def test_validating_samples_finds_what_the_list_of_jobs_finds(tmp_path, monkeypatch, decode, scan_from):
    write_dataset(tmp_path / "ds", samples=12, masks=True, extra_controls=1)
    root = str(tmp_path / "ds")
    settings_ = get_settings({"cache_dir": str(tmp_path / "c")})
    monkeypatch.setattr(validation, "SCAN_FROM", scan_from)

    def both(samples):
        by_refs = validate_samples(
            samples,
            root=root,
            settings=settings_,
            cache=HashCache(tmp_path / "a.sqlite"),
            workers=1,
            decode=decode,
        )
        by_list = validate_files(
            file_jobs(samples),
            root=root,
            settings=settings_,
            cache=HashCache(tmp_path / "b.sqlite"),
            workers=1,
            decode=decode,
        )
        assert dict(by_refs.facts) == dict(by_list.facts)
        assert by_refs.stats == by_list.stats
        return by_refs

    first = both(_samples(root))
    again = both(_samples(root))  # from the cache: by the scan when scan_from is 1
    assert again.stats.files_read == 0 and again.stats.cache_hits == first.stats.files
    (tmp_path / "ds/train/control_images/s000003.png").write_bytes(png((9, 9)))
    changed = both(_samples(root))
    assert changed.stats.files_read == 1
    assert changed.facts["train/control_images/s000003.png"].width == 9
