"""The decision's fast path for samples it has nothing to say about (plain_verdicts.plainly_kept)
keeps exactly what `judge` keeps, and steps aside whenever judge would say a word."""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import astuple

from hypothesis import example, given, settings
from hypothesis import strategies as st

from hubpress.sources.facts_by_path import FactsByPath
from hubpress.sources.image_checks import FileFacts
from hubpress.sources.models import FileRef, Sample
from hubpress.sources.plain_verdicts import plainly_kept
from hubpress.sources.policy import IntakeOptions, _duplicated_keys, _id_key, judge

NAMES = ["a.png", "b.jpg", "c.PNG", "d.jpeg", "e", "f.webp"]


@st.composite
def cases(draw):
    def ref(n):
        name = draw(st.sampled_from(NAMES))
        rel = f"train/{n}/{name}"
        return FileRef(f"/root/{rel}", rel, draw(st.integers(1, 99)), version="1:2")

    controls = [ref(f"c{i}") for i in range(draw(st.integers(0, 2)))]
    target = draw(st.none() | st.just(ref("t")))
    mask = draw(st.none() | st.just(ref("m")))
    facts = {}
    for r in [*controls, target, mask]:
        if r is None or draw(st.integers(0, 9)) == 0:
            continue  # sometimes not validated
        facts[r.relpath] = FileFacts(
            draw(st.sampled_from(["a" * 64, "b" * 64])),
            draw(st.sampled_from(["png", "jpeg", "webp", None])),
            draw(st.sampled_from([4, 8])),
            8,
            error=draw(st.sampled_from([None, None, None, "undecodable_image"])),
            orientation=draw(st.sampled_from([None, None, 6])),
            decoded=draw(st.booleans()),
            frames=draw(st.sampled_from([None, None, 3])),
        )
    prompt = draw(st.sampled_from([None, "", " ", "make it red", " padded \n"]))
    split = draw(st.sampled_from(["train", "test"]))
    sample = Sample("s1", split, prompt, controls, mask, target, row=3)
    return sample, facts


@settings(max_examples=300, deadline=None)
@given(cases())
def test_the_fast_path_keeps_what_judge_keeps(case):
    sample, facts = case
    verdict = judge(sample, facts, IntakeOptions())
    fast = plainly_kept(sample, facts)
    if fast is not None:
        assert verdict.kept == fast
        assert (verdict.problems, verdict.corrections, verdict.kinds) == ([], [], [])


def test_a_plain_sample_takes_the_fast_path():
    refs = [FileRef(f"/root/train/{n}.png", f"train/{n}.png", 5, version="1:2") for n in ("c", "t")]
    facts = {r.relpath: FileFacts("a" * 64, "png", 8, 8, decoded=False) for r in refs}
    sample = Sample("s1", "train", " make it red\n", [refs[0]], None, refs[1], row=1)
    fast = plainly_kept(sample, facts)
    assert fast is not None and fast == judge(sample, facts, IntakeOptions()).kept
    assert fast.prompt == "make it red" and fast.target.sha256 == "a" * 64 and fast.target.decode_pending


ids = st.text(st.sampled_from("aAbB1é\u0065\u0301ẞß_-"), min_size=1, max_size=4)


@given(st.lists(ids, max_size=30))
@example(["A", "a"])  # ASCII ids, distinct as strings, one key
@example(["a", "b-1", "a"])
def test_duplicated_keys_are_the_keys_counted_more_than_once(id_list):
    def folded(sample_id: str) -> str:  # the rule as it was written before it kept ids' own strings
        return (
            sample_id.lower() if sample_id.isascii() else unicodedata.normalize("NFC", sample_id).casefold()
        )

    assert all(_id_key(i) == folded(i) for i in id_list)
    counted = Counter(folded(i) for i in id_list)
    samples = [Sample(i, "train", "p") for i in id_list]
    assert _duplicated_keys(samples) == {key for key, n in counted.items() if n > 1}


@st.composite
def mostly_plain(draw):
    """Samples as most of a dataset's are (a target, controls, a prompt; files fine, named as
    their bytes are), with files' facts drawn from a few, some needing a word."""

    def ref(n):
        name = draw(st.sampled_from(["a.png", "b.png", "c.jpg", "d.PNG"]))
        rel = f"train/{n}/{name}"
        return FileRef(f"/root/{rel}", rel, 5, version="1:2")

    shared = st.sampled_from(
        [
            ("png", 8, 8, None, None, None, 64, None, False, None),
            ("png", 8, 8, None, None, None, 64, None, True, None),
            ("jpeg", 8, 4, None, None, None, 32, None, False, None),
            ("png", 8, 8, "undecodable_image", "bad", None, None, None, True, None),
            ("png", 8, 8, None, None, None, 64, 6, True, None),
        ]
    )
    controls = [ref(f"c{i}") for i in range(draw(st.integers(1, 2)))]
    target = ref("t")
    facts = {
        r.relpath: FileFacts(draw(st.sampled_from(["a" * 64, "b" * 64, None])), *draw(shared))
        for r in [*controls, target]
        if draw(st.integers(0, 19))  # now and then not validated
    }
    return Sample("s1", "train", "make it red", controls, None, target, row=3), facts


@settings(max_examples=300, deadline=None)
@given(st.one_of(cases(), mostly_plain()), st.data())
def test_over_facts_held_by_their_sha256_the_fast_path_is_the_same(case, data):
    """Over validation's FactsByPath, whose files with the shared facts are held as their sha256
    alone (the decision then makes no FileFacts for them), the fast path keeps the same sample."""
    sample, facts = case
    by_path = FactsByPath()
    for relpath, f in facts.items():
        fields = astuple(f)[1:]
        if data.draw(st.booleans()):
            by_path.put_shared(relpath, f.sha256, fields)  # as the cache scan adds a file
        else:
            by_path[relpath] = f
    assert by_path == facts
    assert plainly_kept(sample, by_path) == plainly_kept(sample, facts)


def test_duplicated_keys_of_sorted_ids_makes_no_set_of_them():
    """Discovery hands the decision each split's samples sorted by id: distinct lower-case ASCII
    ids are then told apart by comparing neighbours, without a set of every id (about 40 bytes a
    sample at the decision's peak, 40 MB at a million samples)."""
    import tracemalloc

    samples = [Sample(f"s{n:07d}", "train", "p") for n in range(40_000)]
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        assert _duplicated_keys(samples) == set()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024  # a set of 40,000 ids is 2 MB; a chunk of them joined, 130 KB
    # Out of order, or a repeat among sorted ones: still found as before.
    assert _duplicated_keys([*samples[:3], samples[1]]) == {samples[1].id}
    assert _duplicated_keys([samples[0], samples[0], samples[1]]) == {samples[0].id}
    at_a_seam = [*samples[:4096], samples[4095], *samples[4096:4100]]  # the last of a chunk again
    assert _duplicated_keys(at_a_seam) == {samples[4095].id}
    assert _duplicated_keys([Sample("b", "train"), Sample("A", "train"), Sample("a", "train")]) == {"a"}
