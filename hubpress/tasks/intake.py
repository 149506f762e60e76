"""Prefect tasks for dataset intake: thin wrappers over hubpress.sources.intake / discovery / validation.

    @flow
    def publish(source: str):
        report = intake_in_flow(source)      # list -> discover per split -> validate chunks -> decide (pure, in the flow)
        ...

Shape of the work: one listing task, one discovery task per split, validation mapped over
chunks of samples (never one task per sample: a task costs ~5 ms), then the pure decision.
Only storage I/O is retried, and only when the failure is transient (S3 throttling, 5xx,
dropped connections): bad data is never retried, it is reported.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task
from prefect.cache_policies import NO_CACHE as NO_CACHE_POLICY
from prefect.utilities.annotations import unmapped

from hubpress.orchestration.runners import carry
from hubpress.settings import Settings, get_settings
from hubpress.sources.discovery import SPLITS, Discovery, detect_layout, discover
from hubpress.sources.facts_cache import FileJob
from hubpress.sources.formats import DEFAULT_MAX_PIXELS
from hubpress.sources.intake import IntakeOptions, decide, list_source, read_csv_texts
from hubpress.sources.models import IntakeReport, Sample
from hubpress.sources.report import problem_rows, render_markdown
from hubpress.sources.validation import (
    DEFAULT_CHUNK,
    ValidationResult,
    file_jobs,
    validate_files,
    validate_samples,
)
from hubpress.storage.files import ListedFile, open_storage
from hubpress.storage.listing import named, relpaths_of
from hubpress.targets.retries import TRANSIENT_RETRIES

# Inputs are large listings (intake has its own file-level cache); storage I/O retries only
# transient failures.
_STORAGE_TASK = {**TRANSIENT_RETRIES, "cache_policy": NO_CACHE_POLICY}


class SourceListing:
    """list_source_task's answer: the listing, in a holder Prefect does not walk. Prefect links
    every item of a task's returned list to the task run (to find it again if passed to another
    task); for 4,000 listed files that was 0.1 s of CPU on every run, unchanged nights included,
    and nothing is passed on that way (discovery is handed the listing with carry())."""

    __slots__ = ("files",)

    def __init__(self, files: Sequence[ListedFile]) -> None:
        self.files = files


@task(name="intake-list-source", **_STORAGE_TASK)
def list_source_task(source: str, settings: Settings | None = None) -> SourceListing:
    return SourceListing(list_source(open_storage(source, get_settings(settings))))


@task(name="intake-discover-split", task_run_name="intake-discover-{split}", **_STORAGE_TASK)
def discover_split_task(
    source: str,
    listing: Sequence[ListedFile],
    split: str,
    options: IntakeOptions,
    settings: Settings | None = None,
) -> Discovery:
    storage = open_storage(source, get_settings(settings))
    layout = detect_layout(relpaths_of(listing), options.layout)
    own_csv = named(listing, [f"{split}.csv"])  # read this split's CSV only
    texts = read_csv_texts(storage, own_csv, options) if layout == "csv" else {}
    return discover(
        listing,
        root=storage.root,
        layout=layout,
        csv_texts=texts,
        allow_missing_target=options.allow_missing_target,
        splits=[split],
    )


@task(name="intake-validate-chunk", **_STORAGE_TASK)
def validate_chunk_task(
    source: str,
    samples: Sequence[Sample],
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int = 1,
    settings: Settings | None = None,
    decode: bool = True,
    keep_for_build: bool = False,
) -> ValidationResult:
    """One chunk of samples. workers=1 decodes inline: parallelism comes from the task runner
    (ThreadPoolTaskRunner, ProcessPoolTaskRunner or Dask), not from a pool per chunk.
    `decode=False` checks headers only and leaves the pixels to the build (validation module);
    `keep_for_build` keeps the S3 objects read for the build (hubpress.storage.fetched)."""
    settings = get_settings(settings)
    root = open_storage(source, settings).root
    return validate_samples(
        samples,
        root=root,
        settings=settings,
        max_pixels=max_pixels,
        workers=workers,
        decode=decode,
        keep_for_build=keep_for_build,
    )


def publish_report_artifacts(report: IntakeReport, key: str | None = "intake-report") -> bool:
    """A table artifact (one row per problem) and a markdown summary, when inside a flow run.

    Returns False (and does nothing) outside a flow run, so plain callers can always call it.
    """
    from prefect.artifacts import create_markdown_artifact, create_table_artifact
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return False
    rows = problem_rows(report)
    if rows:
        create_table_artifact(
            rows, key=f"{key}-problems" if key else None, description=f"Problems in {report.source}"
        )
    create_markdown_artifact(render_markdown(report), key=key, description=f"Intake of {report.source}")
    return True


def _undecoded_images_of_skipped(
    found: Discovery, report: IntakeReport, result: ValidationResult
) -> list[FileJob]:
    """The header-checked (not yet decoded) images of the samples the decision skipped."""
    skipped = {(split, s.id) for split, manifest in report.splits.items() for s in manifest.skipped}
    samples = [s for split, listed in found.samples.items() for s in listed if (split, s.id) in skipped]
    return [
        job
        for job in file_jobs(samples)
        if job.kind == "image"
        and (facts := result.facts.get(job.relpath)) is not None
        and not facts.decoded
        and facts.error is None
    ]


def _chunks(samples: Sequence[Sample], size: int) -> list[list[Sample]]:
    return [list(samples[i : i + size]) for i in range(0, len(samples), size)]


def intake_in_flow(
    source: str,
    *,
    layout: str = "auto",
    on_error: str = "skip",
    allow_missing_target: bool = False,
    prompt_encoding: str = "utf-8",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    settings: Settings | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    workers: int = 1,
    artifacts: bool = True,
    listing: Sequence[ListedFile] | None = None,
    decode: bool = True,
    keep_for_build: bool = True,
) -> IntakeReport:
    """run_intake as Prefect tasks; call it inside a flow. Same report, same policy.
    `listing`: the source's listing when the caller already made it (it is not listed again).
    `decode=False`: image pixels are decoded by the build that reads them (publish-dataset).
    `keep_for_build`: the S3 objects intake fetches are kept on local disk for the build, so a
    publish fetches each new object once (hubpress.storage.fetched); off for an intake that no
    build follows."""
    options = IntakeOptions(layout, on_error, allow_missing_target, prompt_encoding, max_pixels).check()  # type: ignore[arg-type]
    if listing is None:
        listing = list_source_task(source, settings).files
    layout_found = detect_layout(relpaths_of(listing), options.layout)
    tops = {rel.split("/", 1)[0] for rel in relpaths_of(listing)}
    present = [s for s in SPLITS if (f"{s}.csv" if layout_found == "csv" else s) in tops]
    futures = [
        discover_split_task.submit(source, carry(listing), split, options, settings) for split in present
    ]
    found = Discovery(layout=layout_found)
    for future in futures:
        part: Discovery = future.result()
        found.samples.update(part.samples)
        found.problems.extend(part.problems)
        found.corrections.extend(part.corrections)
    # Nothing after discovery needs the listing (a caller that hands it over keeps no copy):
    # at a million samples its objects are a quarter of the peak.
    del listing, futures
    samples = [s for split_samples in found.samples.values() for s in split_samples]
    chunks = _chunks(samples, chunk_size)
    del samples  # the chunks' and found's: the decision hands found's over (policy.decide)
    merged = ValidationResult()
    if chunks:
        # carry(): Prefect would otherwise walk every Sample of every chunk looking for futures
        # (about 0.1 s per pass per 2,000 samples, several passes per task).
        results = validate_chunk_task.map(
            unmapped(source),
            [carry(chunk) for chunk in chunks],
            unmapped(max_pixels),
            unmapped(workers),
            unmapped(settings),
            unmapped(decode),
            unmapped(keep_for_build),
        )
        for r in results.result():
            merged.facts.update(r.facts)
            merged.stats.add(r.stats)
        # The futures hold each chunk's facts: at a million files, a second dict of every fact.
        del results, chunks
    root = open_storage(source, get_settings(settings)).root
    try:
        # A pure decision over what the tasks found: run in the flow, as a task would only add
        # an API round trip (and a walk over every sample) to every run.
        stats = {"samples_discovered": found.sample_count(), **merged.stats.as_dict()}
        report = decide(found, merged.facts, source=root, options=options, stats=stats, hand_over=True)
        skipped_unseen = [] if decode else _undecoded_images_of_skipped(found, report, merged)
        if skipped_unseen:
            # A skipped sample is never built, so the build would never decode its images: decode
            # them here, so that every problem of every sample is reported, as full validation does.
            again = validate_files(
                skipped_unseen, root=root, settings=get_settings(settings), max_pixels=max_pixels, workers=1
            )
            merged.facts.update(again.facts)
            merged.stats.add(again.stats)
            stats = {"samples_discovered": found.sample_count(), **merged.stats.as_dict()}
            report = decide(found, merged.facts, source=root, options=options, stats=stats, hand_over=True)
    except Exception as exc:
        failed = getattr(exc, "report", None)
        if artifacts and failed is not None:
            publish_report_artifacts(failed)
        raise
    if artifacts:
        publish_report_artifacts(report)
    return report
