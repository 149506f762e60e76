"""A night's cache scan of a whole tree's samples (validation._scan_refs_in_place: every FileRef
under the root, the facts empty) compares each cache row with its file's packed version, works
each distinct info text out once (the usual one marked by SQLite, HashCache.rows_under) and holds
a file's sha256 as held_sha256 would without a call per file. Whatever the cache holds (another
size or version of a file, an old and a new entry, a sha256 in upper case, short, not hex or
missing, info texts damaged, empty, of a prompt, of another FACTS_VERSION, entries of files not
asked for), it must put into the facts exactly what the general scan over the list of FileJobs
puts there (the same held values, in the same order, the same shared facts) and miss the same
files, in order."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.sources import validation
from hubpress.sources.facts_by_path import FactsByPath
from hubpress.sources.facts_cache import FACTS_VERSION, FileJob, to_info
from hubpress.sources.image_checks import FileFacts
from hubpress.sources.models import FileRef, Sample
from hubpress.sources.validation import JobsOfRefs, _facts_by_scan, file_jobs
from hubpress.storage.hashcache import HashCache

ROOT = "/src/"
STAMP = st.integers(-(2**63), 2**63 - 1)
INODE = st.integers(0, 2**64 - 1)

_IMAGE = FileJob("r", "/u/r", 1, "v", "image")
USUAL = to_info(_IMAGE, FileFacts(None, "png", 8, 8, decoded=True))
INFOS = [
    USUAL,
    to_info(_IMAGE, FileFacts(None, "png", 9, 9, decoded=True)),
    to_info(_IMAGE, FileFacts(None, "png", 8, 8, decoded=False)),  # decoded: read again
    to_info(_IMAGE, FileFacts(None, "png", 40000, 40000, decoded=True)),  # over the pixel limit
    to_info(_IMAGE, FileFacts(None, "png", 8, 8, error="undecodable_image", detail="x")),
    {**USUAL, "v": FACTS_VERSION - 1},
    to_info(FileJob("r", "/u/r", 1, "v", "prompt"), FileFacts(None, text=b"a prompt")),
    {**USUAL, "width": "8"},  # damaged: a width as text
    {},
    None,
]
SHAS = st.sampled_from(
    ["ab" * 32, "cd" * 32, "AB" * 32, "ab" * 31, "zz" * 32, "a b" * 21 + "a", None, "", "e" * 63]
)


@st.composite
def nights(draw):
    """(samples, cache rows, usual info first or not) for a tree under ROOT."""
    files = []
    for n in range(draw(st.integers(1, 8))):
        relpath = f"train/{'control' if n % 2 else 'target'}/s{n}.png"
        size = draw(st.integers(0, 3))
        if draw(st.integers(0, 5)):  # most files: a local listing's packed stamp
            mtime, ctime, inode = draw(STAMP), draw(STAMP), draw(INODE)
            ref = FileRef.under_stamp(ROOT, relpath, size, mtime, ctime, inode)
        else:
            ref = FileRef.under(ROOT, relpath, size, draw(st.sampled_from([None, "", "1+2:3", "etag"])))
        files.append(ref)
    rows = []
    for ref in files:
        for _ in range(draw(st.integers(0, 2))):  # no entry, one, or an old and a new one
            size, version = ref.size, ref.version or ""
            change = draw(st.sampled_from(["none", "none", "none", "size", "version", "inode", "text"]))
            if change == "size":
                size += 1
            elif change == "version":
                version = draw(st.sampled_from(["", "1+2:3", "etag", version + "0"]))
            elif change == "inode" and ref.version and ":" in ref.version:
                head, _, inode = ref.version.rpartition(":")
                version = f"{head}:{int(inode) + 1}"
            elif change == "text" and ref.version:
                version = " " + ref.version
            # most entries share the usual text, as a dataset's do: the fast path's case
            info = draw(st.sampled_from([USUAL] * len(INFOS) + INFOS))
            rows.append((ROOT + ref.relpath, size, version, draw(SHAS), info))
    for n in range(draw(st.integers(0, 2))):  # entries of files nobody asks for
        rows.append((f"{ROOT}gone/{n}.png", 1, "v", "ab" * 32, USUAL))
    rows = draw(st.permutations(rows))  # the table's order is not the samples'; the first sets the shared
    samples = []
    for n in range(0, len(files), 2):
        pair = files[n : n + 2]
        prompt = pair[0] if len(pair) == 1 and draw(st.booleans()) else None  # a file met first as a prompt
        samples.append(Sample(f"s{n}", "train", "p", pair[1:], None, pair[0], prompt, n))
    return samples, rows


def _scan(jobs, cache, max_pixels, decode):
    facts = FactsByPath()
    missed = _facts_by_scan(jobs, ROOT, cache, max_pixels, decode, facts)
    return facts, missed


@settings(max_examples=300, deadline=None)
@given(nights(), st.sampled_from([10**6, 100]), st.booleans(), st.booleans(), st.booleans())
def test_the_scan_in_place_holds_what_the_general_scan_holds(
    night, max_pixels, decode, damaged_text, in_order
):
    """in_order: the samples' files without a dict when they fit (_scan_refs_in_order), else
    always the dict's in-place scan."""
    samples, rows = night
    with pytest.MonkeyPatch.context() as patch:
        if not in_order:
            patch.setattr(JobsOfRefs, "of_in_order", classmethod(lambda cls, samples: None))
        patch.setattr(validation, "SCAN_FROM", 1)
        patch.setattr(validation, "SCAN_ENTRIES_PER_FILE", 10)
        cache = HashCache(":memory:")  # one connection, this thread's: the test's own database
        cache.put_many(rows)
        if damaged_text and rows:  # an info text that is not JSON: the file is read again
            conn = cache._conn()
            conn.execute("UPDATE facts SET info = '{not json' WHERE uri = ?", (rows[0][0],))
        jobs = JobsOfRefs.of(samples)
        expected = file_jobs(samples)
        in_place, missed = _scan(jobs, cache, max_pixels, decode)
        assert jobs.by_relpath is None  # the in-place scan took the samples' index over, or had none
        general, general_missed = _scan(expected, cache, max_pixels, decode)
    assert missed == general_missed and [j.kind for j in missed] == [j.kind for j in general_missed]
    assert list(in_place.held_items()) == list(general.held_items())
    assert [type(h) for _, h in in_place.held_items()] == [type(h) for _, h in general.held_items()]
    assert in_place.shared_fields == general.shared_fields
    assert dict(in_place) == dict(general)


def test_a_tree_not_all_under_the_root_takes_the_general_scan(tmp_path, monkeypatch):
    monkeypatch.setattr(validation, "SCAN_FROM", 1)
    inside = FileRef.under_stamp(ROOT, "a.png", 1, 1, 2, 3)
    outside = FileRef("/elsewhere/b.png", "b.png", 1, version="1+2:3")
    cache = HashCache(tmp_path / "c.sqlite")
    cache.put_many([(inside.uri, 1, inside.version, "ab" * 32, USUAL)])
    jobs = JobsOfRefs.of([Sample("s", "train", "p", [outside], None, inside)])
    facts, missed = _scan(jobs, cache, 10**6, False)
    assert (jobs.by_relpath or jobs.in_order) is not None  # the general scan: the files not taken
    assert [j.relpath for j in missed] == ["b.png"]
    assert facts["a.png"].sha256 == "ab" * 32


def test_rows_under_marks_the_usual_info_and_under_reads_it_back(tmp_path):
    cache = HashCache(tmp_path / "c.sqlite")
    other = {**USUAL, "width": 9}
    cache.put_many([("/r/a", 1, "v", "s", USUAL), ("/r/b", 1, "v", "s", other), ("/r/c", 1, "v", "s", None)])
    usual = cache.first_info_under("/r/")
    assert json.loads(usual) == USUAL
    rows = {row[0]: row[4] for chunk in cache.rows_under("/r/", usual) for row in chunk}
    assert rows["/r/a"] == 1 and json.loads(rows["/r/b"]) == other and rows["/r/c"] is None
    assert {uri: info for uri, _, _, _, info in cache.under("/r/")} == {
        "/r/a": USUAL,
        "/r/b": other,
        "/r/c": None,
    }
    assert cache.first_info_under("/none/") is None


def test_the_files_the_cache_cannot_hold_are_told_before_the_scan(tmp_path, monkeypatch):
    """Fewer entries under the root than files: that many files are surely read, and validation
    may start its workers while the scan runs (validation._validate_chunks' warm_up)."""
    monkeypatch.setattr(validation, "SCAN_FROM", 1)
    monkeypatch.setattr(validation, "SCAN_ENTRIES_PER_FILE", 10)
    refs = [FileRef.under_stamp(ROOT, f"{n}.png", 1, n, n, n) for n in range(5)]
    cache = HashCache(tmp_path / "c.sqlite")
    cache.put_many([(ref.uri, 1, ref.version, "ab" * 32, USUAL) for ref in refs[:3]])
    cache.put_many([(f"{ROOT}gone.png", 1, "v", "ab" * 32, USUAL)])
    jobs = JobsOfRefs.of([Sample(f"s{n}", "train", "p", [], None, ref) for n, ref in enumerate(refs)])
    told = []
    missed = _facts_by_scan(
        jobs,
        ROOT,
        cache,
        10**6,
        False,
        FactsByPath(),
        lambda n: told.append((n, (jobs.by_relpath or jobs.in_order) is not None)),
    )
    assert told == [(1, True)]  # 5 files, 4 entries (one of a file gone): at least one is new
    assert [job.relpath for job in missed] == ["3.png", "4.png"]
    told.clear()
    _facts_by_scan(
        JobsOfRefs.of([Sample("s", "train", "p", [], None, refs[0])]),
        ROOT,
        cache,
        10**6,
        False,
        FactsByPath(),
        told.append,
    )
    assert told == []  # every file may be in the cache: nothing is sure
