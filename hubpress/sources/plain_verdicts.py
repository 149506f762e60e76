"""The decision's fast path (hubpress.sources.policy): the kept sample of a sample the policy has
nothing to say about, without `judge`'s closures, sets and lists of problems. Most samples of a
dataset are such samples; `judge` decides every other one (tests/sources/test_plain_verdicts.py
holds the two equal)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache

from hubpress.sources.facts_by_path import FactsByPath
from hubpress.sources.formats import extension_agrees, split_extension
from hubpress.sources.image_checks import FileFacts
from hubpress.sources.models import FileRef, Sample


def plainly_kept(
    sample: Sample, facts: Mapping[str, FileFacts], fine: Callable[[FileRef], FileRef | None] | None = None
) -> Sample | None:
    """The kept sample, as `judge` keeps it, when nothing about it needs a word: a non-empty
    prompt in the CSV, a target, no mask, and every file fine and named as its bytes are (most
    samples of a dataset). None: `judge` decides. Here a sample costs no closures, sets or lists
    of problems (a third of the decision's time at a million samples). `fine`: plainly_fine_in(facts)."""
    fine = fine or plainly_fine_in(facts)
    prompt, target = sample.prompt, sample.target
    if sample.prompt_file is not None or sample.mask is not None or target is None or not prompt:
        return None
    if len(sample.controls) == 1:  # most samples: a list made by appending keeps room for four
        only = fine(sample.controls[0])
        if only is None:
            return None
        controls = [only]  # 24 bytes a sample less, kept for the whole plan
    else:
        controls = []
        for ref in sample.controls:
            checked = fine(ref)
            if checked is None:
                return None
            controls.append(checked)
    target = fine(target)
    stripped = prompt.strip()
    if target is None or not stripped:
        return None
    return Sample(sample.id, sample.split, stripped, controls, None, target, None, sample.row)


def _plainly_fine(ref: FileRef, facts: Mapping[str, FileFacts]) -> FileRef | None:
    """`judge`'s checked FileRef of a file it would say nothing about; else None."""
    f = facts.get(ref.relpath)
    if f is None or f.error is not None or f.orientation is not None or f.frames is not None:
        return None
    if not name_agrees(ref.relpath, f.format):
        return None
    return ref.with_facts(f.format, f.sha256, f.width, f.height, not f.decoded)


def plain_shared_facts(facts: Mapping[str, FileFacts]) -> FileFacts | None:
    """The facts validation's FactsByPath shares between the files it holds as their sha256 alone,
    when they need no word (no error, orientation or frames): the files the fast paths may keep
    without making their FileFacts. None otherwise (other facts, or nothing shared)."""
    shared = facts.shared() if isinstance(facts, FactsByPath) else None
    if (
        shared is None
        or shared.error is not None
        or shared.orientation is not None
        or shared.frames is not None
    ):
        return None
    return shared


def plainly_fine_in(facts: Mapping[str, FileFacts]) -> Callable[[FileRef], FileRef | None]:
    """_plainly_fine over these facts. Over validation's FactsByPath whose shared facts need no
    word, a file held as its sha256 alone is checked without making its FileFacts: two million
    FileFacts at a million samples (tests/sources/test_plain_verdicts.py holds it equal)."""
    shared = plain_shared_facts(facts)
    if shared is None:
        return lambda ref: _plainly_fine(ref, facts)
    held_get = facts.held_get  # type: ignore[attr-defined]
    true_format, width, height, pending = shared.format, shared.width, shared.height, not shared.decoded

    def fine(ref: FileRef) -> FileRef | None:
        held = held_get(ref.relpath)  # a sha256 (bytes: its digest, handed to the FileRef as is)
        if held.__class__ is not bytes and held.__class__ is not str:
            return _plainly_fine(ref, facts)
        if not name_agrees(ref.relpath, true_format):
            return None
        return ref.with_facts(true_format, held, width, height, pending)

    return fine


def name_agrees(relpath: str, true_format: str | None) -> bool:
    """extension_agrees for a file's name, by its last suffix: a dataset has a handful of
    (suffix, format) pairs, and working each out again was a tenth of the decision's time."""
    stem, dot, suffix = relpath.rpartition("/")[2].rpartition(".")
    return _suffix_agrees(suffix if dot and stem else None, true_format)


@lru_cache(maxsize=1024)
def _suffix_agrees(suffix: str | None, true_format: str | None) -> bool:
    ext = split_extension(f"x.{suffix}")[1] if suffix is not None else None
    return extension_agrees(ext, true_format)
