"""A night's cache scan of a whole tree's samples without a dict of their files by relpath
(validation._scan_refs_in_order, facts_by_path.FilesInOrder): the files are followed in the
samples' order, each cache row's file found a few past the last one's or by bisection, and the
facts held in a list beside them, which the decision reads in its own order. Whatever the
samples (files in order or not, a relpath twice, masks, prompt files, other roots) and whatever
the cache holds, in whatever order (the table's, the key's, any), the facts, the files missed
and the decision's report must be exactly those of the general scan over the list of FileJobs
and of a dict of the facts."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.sources import validation
from hubpress.sources.discovery import Discovery
from hubpress.sources.facts_by_path import FactsByPath, FilesInOrder
from hubpress.sources.image_checks import FileFacts
from hubpress.sources.intake import IntakeOptions, decide
from hubpress.sources.models import FileRef, Sample
from hubpress.sources.validation import JobsOfRefs, _facts_by_scan, file_jobs
from hubpress.storage.hashcache import HashCache
from tests.sources.test_scan_in_place import INFOS, ROOT, SHAS, USUAL

NAMES = st.sampled_from(["a", "b", "c", "d", "e", "f"])


@st.composite
def trees(draw):
    """(samples in discovery's order, cache rows) for a tree under ROOT: most often files named
    after their sorted sample ids, as a dataset's are; sometimes in no order, a relpath twice,
    a mask or prompt file, or a different number of controls."""
    stride = draw(st.integers(1, 3))
    count = draw(st.integers(1, 10))
    in_order = draw(st.integers(0, 3))  # 0: names drawn (any order, repeats), else the ids'
    odd = draw(st.integers(0, 5)) == 0  # a sample of another shape: the dict's scan
    splits = sorted(draw(st.sets(st.sampled_from(["train", "test"]), min_size=1)))
    samples: list[Sample] = []
    made: dict[str, FileRef] = {}

    def ref(relpath: str) -> FileRef:
        if relpath in made and draw(st.booleans()):  # the same file met twice: one FileRef or two
            return made[relpath]
        size = draw(st.integers(0, 2))
        if draw(st.integers(0, 4)):
            r = FileRef.under_stamp(ROOT, relpath, size, draw(st.integers(-5, 5)), 7, draw(st.integers(0, 9)))
        else:
            r = FileRef.under(ROOT, relpath, size, draw(st.sampled_from([None, "", "etag", "1+2:3"])))
        return made.setdefault(relpath, r)

    for split in splits:
        for n in range(count):
            sid = f"s{n:02d}"
            name = sid if in_order else draw(NAMES)
            files = [ref(f"{split}/c{c}/{name}.png") for c in range(stride - 1)]
            target = ref(f"{split}/t/{name}.png")
            mask = prompt_file = None
            if odd and n == count - 1:
                kind = draw(st.sampled_from(["mask", "prompt", "no target", "more controls"]))
                if kind == "mask":
                    mask = ref(f"{split}/m/{name}.png")
                elif kind == "prompt":
                    prompt_file = ref(f"{split}/p/{name}.txt")
                elif kind == "no target":
                    target = None
                else:
                    files.append(ref(f"{split}/x/{name}.png"))
            samples.append(Sample(sid, split, "make it red", files, mask, target, prompt_file, n))
    rows = []
    for r in made.values():
        for _ in range(draw(st.integers(0, 2))):  # no entry, one, or an old and a new one
            size, version = r.size, r.version or ""
            change = draw(st.sampled_from(["none", "none", "none", "size", "version"]))
            if change == "size":
                size += 1
            elif change == "version":
                version = draw(st.sampled_from(["", "1+2:3", "etag", version + "0"]))
            info = draw(st.sampled_from([USUAL] * len(INFOS) + INFOS))
            rows.append((ROOT + r.relpath, size, version, draw(SHAS), info))
    for n in range(draw(st.integers(0, 2))):  # entries of files nobody asks for, anywhere
        rows.append(
            (f"{ROOT}{draw(st.sampled_from(['a', 'train/t', 'zz']))}/gone{n}.png", 1, "v", "ab" * 32, USUAL)
        )
    order = draw(st.sampled_from(["put", "key", "any"]))
    if order == "key":
        rows.sort(key=lambda row: row[:3])
    elif order == "any":
        rows = draw(st.permutations(rows))
    return samples, rows


def _scan(jobs, cache, max_pixels, decode):
    facts = FactsByPath()
    missed = _facts_by_scan(jobs, ROOT, cache, max_pixels, decode, facts)
    return facts, missed


def _as_dict(facts: FactsByPath) -> FactsByPath:
    """The same facts held in a dict by relpath, as before FilesInOrder."""
    held = FactsByPath()
    held.adopt(dict(facts.held_items()))
    held._shared = facts.shared_fields
    return held


@settings(max_examples=400, deadline=None)
@given(trees(), st.sampled_from([10**6, 100]), st.booleans(), st.booleans(), st.sampled_from([1, 3, 4096]))
def test_the_scan_in_order_holds_and_decides_what_the_general_scan_does(
    tree, max_pixels, decode, give_up, tried_first
):
    samples, rows = tree
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(validation, "_TRIED_FIRST", tried_first)  # the first samples' files tried alone
        patch.setattr(validation, "SCAN_FROM", 1)
        patch.setattr(validation, "SCAN_ENTRIES_PER_FILE", 10)
        if give_up:  # any row out of order: the dict's scan, from the start
            patch.setattr(validation, "BISECTS_FREE", 0)
            patch.setattr(validation, "BISECTS_PER_ROW", 10**9)
        cache = HashCache(":memory:")
        cache.put_many(rows)
        jobs = JobsOfRefs.of(samples)
        followed = jobs.in_order is not None
        in_order, missed = _scan(jobs, cache, max_pixels, decode)
        general, general_missed = _scan(file_jobs(samples), cache, max_pixels, decode)
    assert missed == general_missed
    missed = missed or []  # None: no files, no scan
    assert [j.kind for j in missed] == [j.kind for j in general_missed or []]
    assert list(in_order.held_items()) == list(general.held_items())
    assert [type(h) for _, h in in_order.held_items()] == [type(h) for _, h in general.held_items()]
    assert in_order.shared_fields == general.shared_fields
    if not give_up:  # the list whenever the files are in order (else the dict's scan, from the start)
        assert (in_order._files is not None) == followed
    assert dict(in_order) == dict(general) and len(in_order) == len(general)
    assert list(in_order) == list(general)
    for relpath in [*(r.relpath for s in samples for r in s.images()), "zz/none.png", "a"]:
        assert (relpath in in_order) == (relpath in general)
        assert in_order.get(relpath) == general.get(relpath)

    # The files missed are read and their facts put in (validation's chunks); then the decision,
    # and again after newer facts (the flow's retake after decoding skipped samples' images).
    for facts in (in_order, general):
        for n, job in enumerate(missed):
            facts[job.relpath] = FileFacts("cd" * 32, "png", 8, 8, decoded=n % 3 > 0)
    assert list(in_order.held_items()) == list(general.held_items())
    as_dict = _as_dict(in_order)
    asked = [*(r.relpath for s in samples for r in s.images()), "zz/none.png"]
    for order in (asked, asked[::-1], sorted(asked)):  # the decision's order, and any other
        held_get, expected_get = in_order.held_get, as_dict.held_get
        assert [held_get(relpath) for relpath in order] == [expected_get(relpath) for relpath in order]
    options = IntakeOptions()

    def discovery() -> Discovery:
        found = Discovery(layout="csv")
        for s in copy.deepcopy(samples):
            found.samples.setdefault(s.split, []).append(s)
        return found

    found, found_dict = discovery(), discovery()
    report = decide(found, in_order, source=ROOT, options=options, hand_over=True)
    expected = decide(found_dict, as_dict, source=ROOT, options=options, hand_over=True)
    assert report.to_json() == expected.to_json()
    if samples[0].target is not None:
        victim = samples[0].target.relpath
        for facts in (in_order, as_dict):
            facts[victim] = FileFacts("ef" * 32, error="undecodable_image", detail="broken at the build")
        again = decide(found, in_order, source=ROOT, options=options, hand_over=True)
        assert (
            again.to_json()
            == decide(found_dict, as_dict, source=ROOT, options=options, hand_over=True).to_json()
        )
        assert list(in_order.held_items()) == list(as_dict.held_items())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", "t/a", "t/b", "u", "u/x"]), max_size=12),
    st.integers(1, 3),
    st.data(),
)
def test_files_in_order_find_every_file_and_only_theirs(names, stride, data):
    """FilesInOrder takes files only when each relpath is there once, and then finds each at its
    position from any place, and nothing for any other relpath."""
    names = names[: len(names) - len(names) % stride]
    refs = [FileRef.under(ROOT, name, 1, "v") for name in names]
    files = FilesInOrder.of(refs, stride)
    if files is None:
        return
    assert len(set(names)) == len(names)
    for pos, name in enumerate(names):
        at = data.draw(st.integers(0, len(names)))
        assert files.find(name, at) == pos and files.bisect(name) == pos
    for other in ["", "0", "a0", "t", "t/", "t/c", "v", "zz"]:
        if other not in names:
            assert files.find(other, 0) == -1 and files.bisect(other) == -1


def test_a_dataset_named_after_its_ids_is_followed_without_a_dict():
    refs = [
        FileRef.under(ROOT, f"train/{c}/{n:03d}.png", 1, "v")
        for n in range(50)
        for c in ("control", "target")
    ]
    samples = [
        Sample(f"{n:03d}", "train", "p", [refs[2 * n]], None, refs[2 * n + 1], None, n) for n in range(50)
    ]
    jobs = JobsOfRefs.of(samples)
    assert jobs.by_relpath is None and jobs.in_order is not None and jobs.refs == refs
    assert [j.relpath for j in jobs] == [j.relpath for j in file_jobs(samples)]
    # the same file twice: the dict, as before
    twice = [*samples, Sample("zzz", "train", "p", [refs[0]], None, refs[1], None, 50)]
    assert JobsOfRefs.of(twice).in_order is None


class Relpath(str):
    """A relpath of a str subclass (numpy's str_, a pyarrow scalar's as_py() subclassed, ...):
    a dict finds it as the str it equals."""


def facts_in_order(samples: int, fact_of: Callable[[int], Any]) -> tuple[list[FileRef], FactsByPath]:
    """The files of `samples` samples (a control and a target each), in order, and facts held
    in their order: the n-th file's is fact_of(n)."""
    refs = [
        FileRef.under(ROOT, f"train/{c}/{n:03d}.png", 1, "v")
        for n in range(samples)
        for c in ("control", "target")
    ]
    files = FilesInOrder.of(refs, 2)
    assert files is not None
    facts = FactsByPath()
    facts.adopt_in_order(files, [fact_of(n) for n in range(len(refs))])
    return refs, facts


def test_facts_held_in_order_answer_in_as_a_dict_does_for_any_str():
    """`in` asks what `get` and `[]` ask: a relpath of a str subclass is the file it equals,
    found or not, as it is in the dict the facts stand for."""
    fact = FileFacts("ab" * 32, "png", 1, 1)
    refs, facts = facts_in_order(5, lambda n: fact if n % 3 else None)
    facts["train/extra.png"] = fact
    as_dict = dict(facts.items())
    for name in [ref.relpath for ref in refs] + ["train/extra.png", "train/none.png"]:
        for key in (name, Relpath(name)):
            assert (key in facts) == (key in as_dict) == (facts.get(key) is not None)


def test_facts_held_in_order_take_any_key_a_dict_takes():
    """A key that is no str (None, a number) is a key the facts do not hold, as in a dict: `get`
    gives the default, `[]` a KeyError, `in` False, and it can be set and read back."""
    fact = FileFacts("ab" * 32, "png", 1, 1)
    refs, facts = facts_in_order(3, lambda n: fact)
    for key in (None, 5, b"train/control/000.png"):
        assert key not in facts and facts.get(key, "absent") == "absent" and facts.held_get(key) is None
        with pytest.raises(KeyError):
            facts[key]
    facts[None] = fact
    assert (
        facts[None] == fact and None in facts and facts.held_get(None) == fact and len(facts) == len(refs) + 1
    )
