"""validation.file_jobs lists every file the samples use once, in the order of their first
mention (prompt file, then Sample.images()), as FileJobs equal to those built field by field."""

from __future__ import annotations

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
