"""Dataset intake: list a source once, discover its samples, validate their files, decide.

    report = run_intake("data/face_seg")                       # local folder or CSV layout
    report = run_intake("s3://bucket/datasets/face_seg", on_error="fail")

`run_intake` is I/O at the edges around two pure steps: `discover` (hubpress.sources.discovery) turns one
listing into samples; `decide` applies the policy to the facts validation established and builds
the IntakeReport (hubpress.sources.policy). `fix_source` (hubpress.sources.fix) is the only code that
changes a source, and only when asked.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence

from hubpress.errors import SourceError
from hubpress.settings import Settings, get_settings
from hubpress.sources.discovery import (
    CSV_NAMES,
    Discovery,
    detect_layout,
    discover,
    gc_paused,
)
from hubpress.sources.fix import SourceFix, fix_source
from hubpress.sources.formats import DEFAULT_MAX_PIXELS
from hubpress.sources.models import IntakeReport
from hubpress.sources.policy import IntakeOptions, OnError, decide, judge
from hubpress.sources.validation import checked_workers, validate_samples
from hubpress.storage.files import ListedFile, LocalStorage, Storage, is_s3, open_storage
from hubpress.storage.hashcache import HashCache
from hubpress.storage.listing import named, relpaths_of

__all__ = [
    "IntakeOptions",
    "OnError",
    "SourceFix",
    "decide",
    "discover_source",
    "fix_source",
    "judge",
    "list_source",
    "read_csv_texts",
    "run_intake",
]


def list_source(storage: Storage) -> Sequence[ListedFile]:
    """The one listing of a source, or a SourceError saying why there is nothing to list. A local
    source's is a Listing (its files held as columns: hubpress.storage.listing)."""
    if not is_s3(storage.root):
        if not os.path.isdir(storage.root):
            what = "is a file, not a directory" if os.path.exists(storage.root) else "does not exist"
            raise SourceError(
                f"source {storage.root} {what}: expected a dataset directory or s3://bucket/prefix."
            )
        with gc_paused():  # hundreds of thousands of small objects, none of them garbage
            # Local listings also say what they could not list (symlink loops, links leaving the root).
            if isinstance(storage, LocalStorage):
                return storage.listing(report_unlisted=True)
            return list(storage.list())
    from botocore.exceptions import ClientError, NoCredentialsError

    try:
        with gc_paused():
            listing = list(storage.list(report_unlisted=True))  # folder markers holding bytes said
    except NoCredentialsError:
        raise SourceError(
            f"no AWS credentials to list {storage.root}: set AWS_* variables or an AwsCredentials block."
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise SourceError(
            f"cannot list {storage.root}: {code or exc}. Check the bucket name and permissions."
        )
    if not listing:
        raise SourceError(f"nothing under {storage.root}: check the bucket and prefix.")
    return listing


def read_csv_texts(storage: Storage, listing: Iterable[ListedFile], options: IntakeOptions) -> dict[str, str]:
    present = {lf.relpath: lf for lf in named(listing, CSV_NAMES.values())}  # not a dict of every path
    texts: dict[str, str] = {}
    for split, name in CSV_NAMES.items():
        if name not in present:
            continue
        data = storage.read_listed(present[name])  # not through a link out of the source
        try:
            texts[split] = data.decode(options.codec)
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{name} is not valid {options.prompt_encoding} text (byte {exc.start}): save it as UTF-8, "
                "or name its encoding with --prompt-encoding."
            )
    return texts


def run_intake(
    source: str,
    *,
    layout: str = "auto",
    on_error: OnError = "skip",
    allow_missing_target: bool = False,
    prompt_encoding: str = "utf-8",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    settings: Settings | None = None,
    workers: int | None = None,
    cache: HashCache | None = None,
) -> IntakeReport:
    """List, discover, validate and decide: the IntakeReport of one source (local dir or s3://)."""
    options = IntakeOptions(layout, on_error, allow_missing_target, prompt_encoding, max_pixels).check()
    checked_workers(workers)  # before the source is listed
    settings = get_settings(settings)
    storage = open_storage(source, settings)
    started = time.perf_counter()
    found = discover_source(storage, options)
    discovered = time.perf_counter()
    samples = [s for split_samples in found.samples.values() for s in split_samples]
    result = validate_samples(
        samples, root=storage.root, settings=settings, cache=cache, max_pixels=max_pixels, workers=workers
    )
    stats = {"samples_discovered": len(samples), **result.stats.as_dict()}
    stats["discovery_ms"] = round((discovered - started) * 1000)
    stats["validation_ms"] = round((time.perf_counter() - discovered) * 1000)
    del samples  # discovery's samples are then found's alone, which the decision hands over
    return decide(found, result.facts, source=storage.root, options=options, stats=stats, hand_over=True)


def discover_source(storage: Storage, options: IntakeOptions) -> Discovery:
    """One listing of the source, the CSV texts if that is the layout, then pure discovery."""
    listing = list_source(storage)
    chosen = detect_layout(relpaths_of(listing), options.layout, where=str(storage.root))
    texts = read_csv_texts(storage, listing, options) if chosen == "csv" else {}
    return discover(
        listing,
        root=storage.root,
        layout=chosen,
        csv_texts=texts,
        allow_missing_target=options.allow_missing_target,
    )
