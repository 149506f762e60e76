"""validation.file_jobs lists every file the samples use once, in the order of their first
mention (prompt file, then Sample.images()), as FileJobs equal to those built field by field."""

from __future__ import annotations

import pickle
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.sources.facts_cache import FileJob
from hubpress.sources.models import FileRef, Sample
from hubpress.sources.validation import file_jobs

REFS = [
    FileRef(f"/r/{rel}", rel, n, version=v)
    for n, (rel, v) in enumerate(
        [
            ("a.png", "1+1:1"),
            ("b.png", None),
            ("c.txt", "3+3:3"),
            ("d.png", "4+4"),
            ("e.png", ""),
        ]
    )
]
MAYBE = st.none() | st.sampled_from(REFS)


@st.composite
def samples(draw):
    return [
        Sample(
            f"s{n}",
            "train",
            "p",
            draw(st.lists(st.sampled_from(REFS), max_size=3)),
            draw(MAYBE),
            draw(MAYBE),
            draw(MAYBE),
        )
        for n in range(draw(st.integers(0, 5)))
    ]


@settings(max_examples=200, deadline=None)
@given(samples())
def test_file_jobs_are_each_file_once_in_first_mention_order(listed):
    expected: dict[str, FileJob] = {}
    for sample in listed:
        mentions = [(sample.prompt_file, "prompt")] if sample.prompt_file is not None else []
        for ref, kind in mentions + [(ref, "image") for ref in sample.images()]:
            expected.setdefault(ref.relpath, FileJob(ref.relpath, ref.uri, ref.size, ref.version or "", kind))
    jobs = file_jobs(listed)
    assert jobs == list(expected.values())
    assert all(type(job) is FileJob and job.kind == expected[job.relpath].kind for job in jobs)


# FileJob holds its root, as FileRef does (hubpress.sources.models): it must read, compare, hash,
# print and pickle as the named tuple that held the whole URI, for any URI and relpath.
class WholeUriJob(NamedTuple):
    relpath: str
    uri: str
    size: int
    version: str
    kind: str = "image"


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
relpaths = st.lists(names.filter(bool), min_size=1, max_size=3).map("/".join)
roots = st.sampled_from(["/data/src/", "s3://bucket/prefix/", "/", "", "/data/src/a"])


@st.composite
def whole_jobs(draw) -> WholeUriJob:
    relpath = draw(relpaths)
    uri = draw(st.one_of(roots.map(lambda root: root + relpath), names))  # sometimes not root + relpath
    kind = draw(st.sampled_from(["image", "prompt"]))
    return WholeUriJob(relpath, uri, draw(st.integers(0, 2**40)), draw(names), kind)


@settings(max_examples=300, deadline=None)
@given(whole_jobs(), whole_jobs())
def test_a_job_holding_its_root_behaves_as_the_tuple_holding_its_uri(a, b):
    job, other = FileJob(*a), FileJob(*b)
    assert (job.relpath, job.uri, job.size, job.version, job.kind) == tuple(a)
    assert (job == other) == (a == b) and (job != other) == (a != b)
    assert job == FileJob(*a) and hash(job) == hash(FileJob(*a))
    assert repr(job) == repr(a).replace("WholeUriJob", "FileJob")
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        again = pickle.loads(pickle.dumps(job, protocol))
        assert type(again) is FileJob and again == job and again.uri == a.uri
    ref = FileRef(a.uri, a.relpath, a.size, version=a.version)
    assert FileJob.of(ref, a.kind) == job  # the discovered file's job, holding the ref's root
    assert FileJob(a.relpath, a.uri, a.size, a.version) == FileJob(*a[:4], "image")  # the default kind
