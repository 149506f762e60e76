"""The intake policy: options, and the verdict on each sample given what discovery and validation found.

Pure: no I/O. `decide` builds the IntakeReport; `judge` decides one sample.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from itertools import islice
from operator import attrgetter, lt
from typing import Any, Literal

from hubpress.errors import ConfigError, ValidationFailed
from hubpress.sources.discovery import Discovery, gc_paused
from hubpress.sources.formats import DEFAULT_MAX_PIXELS, canonical_name, split_extension
from hubpress.sources.image_checks import FileFacts
from hubpress.sources.models import (
    Correction,
    FileRef,
    IntakeReport,
    Problem,
    Sample,
    SkippedSample,
    SplitManifest,
    severity_of,
    shared_facts,
    with_shared_facts_in_place,
)
from hubpress.sources.plain_verdicts import name_agrees, plain_shared_facts, plainly_fine_in, plainly_kept

OnError = Literal["skip", "fail"]


@dataclass(frozen=True, slots=True)
class IntakeOptions:
    layout: str = "auto"
    on_error: OnError = "skip"
    allow_missing_target: bool = False
    prompt_encoding: str = "utf-8"
    max_pixels: int = DEFAULT_MAX_PIXELS

    def check(self) -> IntakeOptions:
        if self.layout not in ("auto", "folder", "csv"):
            raise ConfigError(f"layout {self.layout!r} is not one of auto, folder, csv.")
        if self.on_error not in ("skip", "fail"):
            raise ConfigError(f"on_error {self.on_error!r} is not one of skip, fail.")
        if self.max_pixels <= 0:
            raise ConfigError(f"max_pixels must be a positive number of pixels, not {self.max_pixels}.")
        try:
            codecs.lookup(self.prompt_encoding)
        except LookupError:
            raise ConfigError(
                f"prompt encoding {self.prompt_encoding!r} is not a known text encoding (e.g. utf-8, cp1252)."
            )
        return self

    @property
    def codec(self) -> str:
        # A UTF-8 byte-order mark (Windows editors write one) is not part of the prompt.
        return "utf-8-sig" if codecs.lookup(self.prompt_encoding).name == "utf-8" else self.prompt_encoding

    @property
    def is_utf8(self) -> bool:
        return codecs.lookup(self.prompt_encoding).name == "utf-8"

    def as_dict(self) -> dict[str, object]:
        return {
            "layout": self.layout,
            "on_error": self.on_error,
            "allow_missing_target": self.allow_missing_target,
            "prompt_encoding": self.prompt_encoding,
            "max_pixels": self.max_pixels,
        }


# --------------------------------------------------------------------------------------- decision


def decide(
    found: Discovery,
    facts: Mapping[str, FileFacts],
    *,
    source: str,
    options: IntakeOptions,
    stats: Mapping[str, int] | None = None,
    hand_over: bool = False,
) -> IntakeReport:
    """Apply the policy to what discovery and validation found. Pure: no I/O.

    A sample with any error is skipped (reported as SkippedSample with the problem kinds), or,
    with on_error="fail", the whole intake raises ValidationFailed (carrying the report).

    `hand_over`: each sample kept by the fast path (plain_verdicts: nothing to say about it)
    takes the discovered sample's place in `found`, so that discovery's copy is freed as the
    report grows (about 390 bytes a sample at the decision's peak, when the caller holds no
    other reference to discovery's samples). Deciding again over that `found`, with the same or
    newer facts, gives the report deciding over discovery's own samples gives
    (tests/sources/test_decide_hand_over.py): such a kept sample differs from its discovered one
    only in facts the policy reads from `facts` and in a prompt already stripped.
    """
    with gc_paused():  # a verdict and a kept sample per sample, none of them garbage
        report = _decide(found, facts, source, options, stats, hand_over)
    if options.on_error == "fail" and report.errors:
        exc = ValidationFailed(_failure_message(report))
        exc.report = report  # type: ignore[attr-defined]  # the CLI prints it; callers may inspect it
        raise exc
    return report


def _decide(
    found: Discovery,
    facts: Mapping[str, FileFacts],
    source: str,
    options: IntakeOptions,
    stats: Mapping[str, int] | None,
    hand_over: bool = False,
) -> IntakeReport:
    report = IntakeReport(
        source=source, layout=found.layout, options=options.as_dict(), stats=dict(stats or {})
    )
    problems = report.problems
    problems.extend(found.problems)
    seen_corrections: set[tuple[str, str, str]] = set()

    def correct(c: Correction, detail: str) -> None:
        key = (c.split, c.path, c.kind)
        if key not in seen_corrections:
            seen_corrections.add(key)
            report.corrections.append(c)
            problems.append(Problem(c.split, c.sample, c.kind, detail, c.path, "warning"))

    for c in found.corrections:
        correct(c, f"{c.from_} does not exist; using {c.to}, the only image with that name")

    sample_errors: dict[tuple[str, str], set[str]] = {}
    for p in found.problems:
        if p.sample is not None and p.severity == "error":
            sample_errors.setdefault((p.split, p.sample), set()).add(p.kind)

    fine = plainly_fine_in(facts)
    kept_in_place = _kept_in_place(facts) if hand_over else None
    for split, samples in found.samples.items():
        manifest = report.splits[split] = SplitManifest(split)
        duplicated = _duplicated_keys(samples)  # almost always empty
        for at, sample in enumerate(samples):
            prior = sample_errors.get((split, sample.id), _NO_KINDS) if sample_errors else _NO_KINDS
            duplicate = bool(duplicated) and _id_key(sample.id) in duplicated
            if kept_in_place is not None and not (prior or duplicate) and kept_in_place(sample):
                manifest.samples.append(sample)  # kept as it is, filled in: nothing new made
                continue
            kept = None if prior or duplicate else plainly_kept(sample, facts, fine)
            if kept is not None:
                manifest.samples.append(kept)
                if hand_over:
                    samples[at] = kept
                continue
            verdict = judge(sample, facts, options, prior=prior, duplicate=duplicate)
            problems.extend(verdict.problems)
            for c, detail in verdict.corrections:
                correct(c, detail)
            if verdict.kept is None:
                manifest.skipped.append(SkippedSample(sample.id, verdict.kinds))
            else:
                manifest.samples.append(verdict.kept)
        manifest.samples.sort(key=lambda s: s.id)
    return report


def _kept_in_place(facts: Mapping[str, FileFacts]) -> Callable[[Sample], bool] | None:
    """When the decision hands discovery's samples over: for most samples (a prompt in the CSV,
    controls and a target, no mask, every file held as their sha256 alone with shared facts
    that need no word, named as their bytes are), make the sample plainly_kept would keep out of
    the discovered one itself (its FileRefs filled in by with_facts_in_place, its prompt
    stripped, a single control's list exact) and say True; else change nothing and say False. A new
    Sample and two FileRefs a sample, made while discovery's were freed, were about a third of
    the decision's time. The report is the one plainly_kept gives
    (tests/sources/test_decide_hand_over.py). None: no shared facts, nothing is kept so."""
    shared = plain_shared_facts(facts)
    if shared is None:
        return None
    held_get = facts.held_get  # type: ignore[attr-defined]
    true_format = shared.format
    # What with_facts_in_place would hold for the four values, made once.
    held_facts = shared_facts(true_format, shared.width, shared.height, not shared.decoded)

    by_suffix: dict[str, bool] = {}  # name_agrees(relpath, true_format) by the name's suffix

    def agrees(relpath: str, suffix: str) -> bool:
        if len(by_suffix) >= 1024:  # a dataset has a handful of suffixes, but any may be given
            by_suffix.clear()
        agreed = by_suffix[suffix] = name_agrees(relpath, true_format)
        return agreed

    def plain(ref: FileRef) -> Any:
        """What facts hold for a file the fast path keeps (a sha256), else None."""
        relpath = ref.relpath
        held = held_get(relpath)
        if held.__class__ is not bytes and held.__class__ is not str:
            return None
        dot = relpath.rfind(".")
        if dot > relpath.rfind("/") + 1:  # a suffix after a stem: name_agrees asks it alone
            suffix = relpath[dot + 1 :]
            agreed = by_suffix.get(suffix)
            if agreed is None:
                agreed = agrees(relpath, suffix)
        else:
            agreed = name_agrees(relpath, true_format)
        return held if agreed else None

    def kept(sample: Sample) -> bool:
        prompt, target, controls = sample.prompt, sample.target, sample.controls
        if sample.prompt_file is not None or sample.mask is not None or target is None or not prompt:
            return False
        if len(controls) == 1:  # most samples
            control = controls[0]
            held, target_held = plain(control), plain(target)
            if held is None or target_held is None:
                return False
            stripped = prompt.strip()
            if not stripped:
                return False
            with_shared_facts_in_place(control, held_facts, held)
            sample.controls = [control]  # exact, as plainly_kept's: discovery's keeps room for more
        else:
            helds = [plain(ref) for ref in controls]
            target_held = plain(target)
            stripped = prompt.strip()
            if target_held is None or None in helds or not stripped:
                return False
            for ref, held in zip(controls, helds, strict=True):
                with_shared_facts_in_place(ref, held_facts, held)
        with_shared_facts_in_place(target, held_facts, target_held)
        sample.prompt = stripped
        return True

    return kept


_NO_KINDS: frozenset[str] = frozenset()
_ID = attrgetter("id")
_UPPER = re.compile("[A-Z]")  # most samples: no error from discovery (not a new set each)


def _duplicated_keys(samples: list[Sample]) -> set[str]:
    """The id keys (_id_key) that more than one sample has. One set of the keys seen, holding the
    ids themselves where they are their own key (a lower-case ASCII id), not a list and a counter
    of new strings: at a million samples that was about 110 bytes a sample at the decision's
    peak, for an answer that is nearly always "none"."""
    if _sorted_distinct_own_keys(samples):
        return set()
    seen: set[str] = set()
    duplicated: set[str] = set()
    for sample in samples:
        key = _id_key(sample.id)
        if key in seen:
            duplicated.add(key)
        else:
            seen.add(key)
    return duplicated


_IDS_AT_ONCE = 4096


def _sorted_distinct_own_keys(samples: list[Sample]) -> bool:
    """Whether every id is its own key (lower-case ASCII: most datasets') and each is greater than
    the one before (discovery sorts a split's samples by id): then no two keys meet. Told
    without a set of every id (about 40 bytes a sample at the decision's peak), a chunk of ids
    joined at a time; False: the caller counts the keys."""
    last = None
    for start in range(0, len(samples), _IDS_AT_ONCE):
        chunk = list(map(_ID, samples[start : start + _IDS_AT_ONCE]))
        every = "".join(chunk)
        if not every.isascii() or _UPPER.search(every) is not None:
            return False
        if (last is not None and not last < chunk[0]) or not all(map(lt, chunk, islice(chunk, 1, None))):
            return False  # not strictly increasing: keys may meet
        last = chunk[-1]
    return True


def _id_key(sample_id: str) -> str:
    """Ids that differ only in case or in Unicode normal form (é as one code point or as e + a
    combining accent) name the same sample on a case-insensitive or normalising file system and
    to a person: they are duplicates."""
    if sample_id.isascii():  # most ids: NFC leaves ASCII as it is, and casefold is lower
        lowered = sample_id.lower()
        return sample_id if lowered == sample_id else lowered  # the id's own string when it is its key
    return unicodedata.normalize("NFC", sample_id).casefold()


@dataclass(slots=True)
class Verdict:
    """One sample judged: the sample to keep (FileRefs filled in), or the error kinds that skip it."""

    kept: Sample | None
    kinds: list[str]
    problems: list[Problem]
    corrections: list[tuple[Correction, str]]


def judge(
    sample: Sample,
    facts: Mapping[str, FileFacts],
    options: IntakeOptions,
    *,
    prior: Iterable[str] = (),
    duplicate: bool = False,
) -> Verdict:
    """The verdict on one sample, given its files' facts and the problems discovery already found."""
    split = sample.split
    kinds = set(prior)
    problems: list[Problem] = []
    corrections: list[tuple[Correction, str]] = []

    def fail(kind: str, detail: str, path: str | None = None) -> None:
        kinds.add(kind)
        problems.append(Problem(split, sample.id, kind, detail, path, severity_of(kind)))

    def checked(ref: FileRef | None) -> FileRef | None:
        if ref is None:
            return None
        f = facts.get(ref.relpath)
        if f is None:
            fail("missing_file", "was not validated", ref.relpath)
            return ref
        if f.error is not None:
            fail(f.error, f.detail or f.error, ref.relpath)
            return ref
        if f.orientation is not None:
            detail = (
                f"EXIF orientation {f.orientation}: a trainer sees it rotated or flipped "
                f"({f.width}x{f.height}); sizes are compared as it sees them"
            )
            problems.append(Problem(split, sample.id, "image_rotated", detail, ref.relpath, "warning"))
        if f.frames is not None:
            detail = f"has {f.frames} frames (animated or multi-page): a trainer sees only the first"
            problems.append(Problem(split, sample.id, "multi_frame_image", detail, ref.relpath, "warning"))
        if not name_agrees(ref.relpath, f.format):
            _, ext = split_extension(ref.name)
            new = _renamed(ref.relpath, f.format or "")
            detail = (
                f"holds {(f.format or '').upper()} bytes but is named .{ext}: it is published as {f.format}"
            )
            corrections.append(
                (Correction(split, sample.id, ref.relpath, ref.relpath, new, "extension_mismatch"), detail)
            )
        # Built directly, not with dataclasses.replace: this runs for every file of every sample,
        # and replace's introspection was half the time of deciding 100,000 samples (py-spy).
        return ref.with_facts(f.format, f.sha256, f.width, f.height, not f.decoded)

    def warn(kind: str, detail: str, path: str | None = None) -> None:
        problems.append(Problem(split, sample.id, kind, detail, path, severity_of(kind)))

    prompt = _prompt_text(sample, facts, options, fail)
    if prompt is not None and not prompt.strip():
        # Kept with a warning, as qflux keeps it: an empty prompt is a deliberate unconditional example.
        if sample.prompt_file is not None:
            warn(
                "empty_prompt",
                "the prompt is empty: kept as an unconditional example",
                sample.prompt_file.relpath,
            )
        else:
            warn(
                "empty_prompt",
                f"{split}.csv row {sample.row}: the prompt cell is empty: kept",
                f"{split}.csv",
            )
    controls = [checked(ref) for ref in sample.controls]
    mask, target = checked(sample.mask), checked(sample.target)
    prompt_file = sample.prompt_file
    if prompt_file is not None and prompt_file.relpath in facts:
        prompt_file = replace(prompt_file, sha256=facts[prompt_file.relpath].sha256)

    if (
        target is None
        and split == "train"
        and not options.allow_missing_target
        and "missing_target" not in kinds
    ):
        fail("missing_target", "the train split needs a target image (or allow_missing_target)")
    if mask is not None and controls and controls[0] is not None:
        main = controls[0]
        if mask.width and main.width and (mask.width, mask.height) != (main.width, main.height):
            detail = (
                f"mask is {mask.width}x{mask.height}, main control {main.name} is {main.width}x{main.height}"
            )
            fail("mask_size_mismatch", detail, mask.relpath)
    if duplicate:
        fail(
            "duplicate_id",
            f"another sample of {split} has the id {sample.id!r} (ids are compared ignoring case and Unicode normal form)",
        )

    if kinds:
        return Verdict(None, sorted(kinds), problems, corrections)
    kept = Sample(
        id=sample.id,
        split=split,
        prompt=prompt.strip() if prompt is not None else None,  # a trailing newline is not part of a prompt
        controls=[c for c in controls if c is not None],
        mask=mask,
        target=target,
        prompt_file=prompt_file,
        row=sample.row,
    )
    return Verdict(kept, [], problems, corrections)


def _prompt_text(sample: Sample, facts: Mapping[str, FileFacts], options: IntakeOptions, fail) -> str | None:
    if sample.prompt_file is None:
        return sample.prompt if sample.prompt is not None else ""
    rel = sample.prompt_file.relpath
    f = facts.get(rel)
    if f is None or f.error is not None:
        fail(
            f.error if f is not None and f.error else "missing_file",
            (f.detail if f else None) or "prompt unreadable",
            rel,
        )
        return None
    try:
        return (f.text or b"").decode(options.codec)
    except UnicodeDecodeError as exc:
        kind = "prompt_not_utf8" if options.is_utf8 else "prompt_undecodable"
        fail(
            kind,
            f"not valid {options.prompt_encoding} (byte {exc.start}); name its encoding with --prompt-encoding",
            rel,
        )
        return None


def _renamed(relpath: str, true_format: str) -> str:
    directory, _, name = relpath.rpartition("/")
    new = canonical_name(name, true_format)
    return f"{directory}/{new}" if directory else new


def _failure_message(report: IntakeReport) -> str:
    counts = Counter(p.kind for p in report.errors)
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.most_common())
    first = report.errors[0]
    where = f" ({first.path})" if first.path else ""
    return (
        f"{len(report.errors)} problem(s) in {report.source}: {summary}. First: {first.split}/{first.sample}: "
        f"{first.kind}{where}: {first.detail}. Nothing was built; fix the data or use --on-error skip."
    )
