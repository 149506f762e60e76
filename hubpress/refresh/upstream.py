"""Read upstream datasets for a refresh: resolve the revision, then stream or scan rows.

The Hub is asked once for the revision's commit sha (so a refresh reads one fixed snapshot and
its fingerprint means something), then `datasets` reads that sha. Media columns are cast to
`decode=False`: filters and captions read only the metadata columns, and image bytes are read
only for rows that pass them. Non-streaming scans run in two phases (metadata for every row,
then media for the survivors); streaming handles each row as it arrives, in bounded memory.
"""

from __future__ import annotations

import json
import os
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hubpress.errors import HubAccessError, SourceError
from hubpress.refresh.config import HuggingfaceBackend, LocalBackend
from hubpress.refresh.media import MediaOrigin, resolve_media
from hubpress.refresh.parquet_stream import ParquetStream, download_files, resolve_parquet_files
from hubpress.refresh.row_facts import ROW_FACTS, Entry, RecordingReport, RowFacts, file_identity, replay
from hubpress.refresh.rows import (
    RefreshReport,
    check_columns,
    decide,
    fingerprint,
    media_columns,
    metadata_cache_dir,
    metadata_columns,
    process_rows,
    virtual_index,
)
from hubpress.refresh.upstream_listing import hold_to_listing
from hubpress.settings import TOKEN_SOURCES_HELP, get_settings, resolve_token
from hubpress.targets import hub_answers

SCAN_BATCH = 1000  # metadata rows per Arrow batch in the first phase
MEDIA_BATCH = 64  # rows with media bytes per batch in the second phase
CACHE_FORMAT = 1


def _endpoint(endpoint: str | None) -> str:
    """The upstream Hub; every upstream read asks for it first, so the deadlines are in place."""
    from hubpress.targets import hub_http

    hub_http.install()
    return (endpoint or get_settings().endpoint()).rstrip("/")


def resolve_revision(cfg: HuggingfaceBackend, token: str | None = None, endpoint: str | None = None) -> str:
    """The commit sha of cfg.revision (or the default branch), or a one-line error naming what is wrong."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    base = _endpoint(endpoint)
    name = cfg.dataset_name
    try:
        info = HfApi(endpoint=base).dataset_info(name, revision=cfg.revision, token=token or False)
    except RevisionNotFoundError:
        raise SourceError(
            f"Revision {cfg.revision!r} not found in dataset {name!r} at {base}: use a branch, tag or commit sha it has"
        ) from None
    except RepositoryNotFoundError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 401 and not token:
            raise SourceError(
                f"Dataset {name!r} not found at {base}, or it is private and needs a token: {TOKEN_SOURCES_HELP}"
            ) from None
        if status == 401:
            raise HubAccessError(f"The Hub at {base} refused the token for dataset {name!r} (401)") from None
        raise SourceError(
            f"Dataset {name!r} not found at {base}"
            + ("" if token else " (if it is private, provide a token)")
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise HubAccessError(f"The Hub at {base} refused access to dataset {name!r} ({status})") from None
        raise SourceError(f"Reading dataset {name!r} at {base} failed: HTTP {status}") from None
    if not info.sha:
        raise SourceError(f"The Hub at {base} returned no commit sha for dataset {name!r}")
    if not hub_answers.is_commit_id(info.sha):  # the pin of every read of this upstream
        raise hub_answers.bad_head(info.sha, f"The Hub at {base}", f"dataset {name!r}")
    return info.sha


def _cast_media(ds: Any, cfg: HuggingfaceBackend) -> Any:
    """Turn off decoding of every media column so that reading a row never decodes pixels or audio."""
    from datasets import Audio, Image, List, Video

    if isinstance(ds, ParquetStream):
        return ds  # its rows hold the stored {bytes, path} structs: nothing is ever decoded
    if hasattr(ds, "decode"):
        # A streamed dataset decodes media by itself (imagefolder's, despite a decode=False cast,
        # yields PIL images): turned off for the whole dataset, so rows carry {bytes, path}.
        ds = ds.decode(False)

    features = ds.features or {}
    for column in media_columns(cfg):
        feature = features.get(column)
        if isinstance(feature, Image):
            ds = ds.cast_column(column, Image(decode=False))
        elif isinstance(feature, Video):
            ds = ds.cast_column(column, Video(decode=False))
        elif isinstance(feature, Audio):
            ds = ds.cast_column(column, Audio(decode=False))
        elif isinstance(feature, List) and isinstance(feature.feature, Image):
            # A control column of several images (List(Image())): decoded, it gave PIL images.
            ds = ds.cast_column(column, List(Image(decode=False), length=feature.length))
    return ds


def load_upstream(
    cfg: HuggingfaceBackend, revision_sha: str, token: str | None = None, endpoint: str | None = None
) -> Any:
    """datasets.load_dataset at a fixed sha, media columns undecoded (nothing is decoded by reading).

    A parquet dataset (anything pushed with datasets) is read with ParquetStream instead: streamed
    one row group at a time (datasets' reader reads ahead without a bound, so its memory grows with
    the dataset), or downloaded and scanned in two phases without preparing an Arrow copy."""
    from datasets import load_dataset

    stream = _parquet_stream(cfg, revision_sha, token, endpoint)
    if stream is not None:
        return stream

    kwargs: dict[str, Any] = {
        "name": cfg.dataset_config,
        "data_files": cfg.data_files,
        "split": cfg.split,
        "revision": revision_sha,
        "streaming": cfg.streaming,
        "token": token or False,
        "cache_dir": cfg.cache_dir,
    }
    if cfg.num_proc and not cfg.streaming:
        kwargs["num_proc"] = cfg.num_proc
    try:
        ds = load_dataset(cfg.dataset_name, **{k: v for k, v in kwargs.items() if v is not None})
    except ValueError as exc:
        message = str(exc).splitlines()[0]
        if "split" in message.lower():
            raise SourceError(f"Dataset {cfg.dataset_name!r}: {message}") from None
        raise SourceError(f"Dataset {cfg.dataset_name!r} could not be read: {message}") from None
    return _cast_media(ds, cfg)


def _parquet_stream(
    cfg: HuggingfaceBackend, revision_sha: str, token: str | None, endpoint: str | None
) -> ParquetStream | None:
    # Whoever downloads a file of the upstream from here on (datasets too) is held to its listed size.
    listing = hold_to_listing(cfg.dataset_name, revision_sha, token or False, _endpoint(endpoint))
    try:
        files = resolve_parquet_files(
            cfg.dataset_name,
            revision_sha,
            cfg.split,
            config_name=cfg.dataset_config,
            data_files=cfg.data_files,
            token=token or False,
        )
    except ValueError as exc:
        message = str(exc).splitlines()[0]
        raise SourceError(f"Dataset {cfg.dataset_name!r}: {message}") from None
    if files is None:
        return None
    base = _endpoint(endpoint)
    if not cfg.streaming:  # download once (cached), then scan the local files in two phases
        files = download_files(files, token or False, cfg.cache_dir, endpoint=base, listing=listing)
    return ParquetStream.open(files, endpoint=base, token=token or False, dataset=cfg.dataset_name)


def column_names(ds: Any) -> list[str]:
    names = getattr(ds, "column_names", None)
    if names:
        return list(names)
    first = next(iter(ds), None)  # a streaming dataset without declared features: peek at one row
    return list(first) if first else []


def _batch_rows(batch: Mapping[str, list[Any]]) -> Iterator[dict[str, Any]]:
    keys = list(batch)
    for values in zip(*(batch[k] for k in keys), strict=True):
        yield dict(zip(keys, values, strict=True))


@dataclass
class BackendRead:
    """One backend being read: `rows()` yields output rows; report and index fill as it goes."""

    backend: HuggingfaceBackend | LocalBackend
    revision_sha: str | None
    fingerprint: str | None
    report: RefreshReport
    _rows: Iterator[dict[str, Any]] | None = None
    # True: the first phase came from the metadata cache; False: it was computed (and saved);
    # None: no cache applies (streaming, local folders, cache turned off).
    cache_reused: bool | None = None
    kept_source_indices: array = field(default_factory=lambda: array("q"))
    media_origin: MediaOrigin | None = None  # where media may come from; its refusals, one line each
    # Reads the output rows of the given source indices again (ascending), for the shards a
    # refresh must rebuild (hubpress.refresh.shards); their drops are not counted twice.
    _reread: Callable[[list[int]], Iterator[dict[str, Any]]] | None = None

    def rows(self) -> Iterator[dict[str, Any]]:
        assert self._rows is not None, "rows() can be iterated once"
        source, self._rows = self._rows, None
        for row in source:
            self.kept_source_indices.append(row["source_index"])
            yield row

    def reread(self, source_indices: list[int]) -> Iterator[dict[str, Any]]:
        """The output rows of these source indices (ascending, each one `rows()` yielded), read again."""
        assert self._reread is not None, "this backend cannot be read again"
        return self._reread(source_indices)

    def index(self) -> dict[str, int]:
        """Virtual name (SimpleTuner's `0.jpg`, `0.mp4`, `0.wav`) -> source row, for rows read so far."""
        return virtual_index(self.kept_source_indices, self.backend.virtual_extension)


def _first_phase(ds: Any, cfg: HuggingfaceBackend, available: list[str], report: RefreshReport) -> list[int]:
    """Metadata columns of every row: captions and metadata filters. Returns the surviving indices."""
    meta = ds.select_columns(metadata_columns(cfg, available))
    if isinstance(meta, ParquetStream):
        rows: Iterator[Mapping[str, Any]] = iter(meta)
    else:
        rows = (row for batch in meta.iter(batch_size=SCAN_BATCH) for row in _batch_rows(batch))
    survivors: list[int] = []
    for index, row in enumerate(rows):
        decision = decide(row, cfg, None)
        if decision.keep:
            survivors.append(index)
        else:
            report.drop(index, decision.reasons)
    return survivors


def _cache_file(cfg: HuggingfaceBackend, key: str) -> Path:
    return metadata_cache_dir(cfg, get_settings().cache_dir) / f"refresh-{key[:32]}.json"


def _load_first_phase(cfg: HuggingfaceBackend, key: str) -> tuple[list[int], RefreshReport] | None:
    path = _cache_file(cfg, key)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("format") != CACHE_FORMAT or data.get("fingerprint") != key:
        return None
    # Phase one counts only its drops in `seen`; phase two counts the survivors as it reads them.
    report = RefreshReport(cfg.id, seen=data["report"]["seen"], kept=0)
    report.dropped = Counter(data["report"]["dropped"])
    report.filter_failures = Counter(data["report"]["filter_failures"])
    report.examples = {k: list(v) for k, v in data["report"]["examples"].items()}
    return list(data["survivors"]), report


def _save_first_phase(cfg: HuggingfaceBackend, key: str, survivors: list[int], report: RefreshReport) -> None:
    path = _cache_file(cfg, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CACHE_FORMAT, "fingerprint": key, "survivors": survivors, "report": report.to_dict()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)  # a cache file is complete or absent, never half-written


def read_huggingface(
    cfg: HuggingfaceBackend,
    token: str | None = None,
    endpoint: str | None = None,
    use_cache: bool = True,
    row_facts: RowFacts | None = None,
) -> BackendRead:
    """Resolve, load and check one Hub backend; all errors are raised here, before any row is read."""
    token = token if token is not None else resolve_token().value
    sha = resolve_revision(cfg, token, endpoint)
    ds = load_upstream(cfg, sha, token, endpoint)
    return read_dataset(
        ds, cfg, sha, use_cache=use_cache, token=token, endpoint=endpoint, row_facts=row_facts
    )


def read_dataset(
    ds: Any,
    cfg: HuggingfaceBackend,
    revision_sha: str,
    use_cache: bool = True,
    token: str | None = None,
    endpoint: str | None = None,
    row_facts: RowFacts | None = None,
) -> BackendRead:
    """Refresh rows from an already-loaded Dataset or IterableDataset (media columns undecoded).

    Columns are checked here, before any row is read. A media value that holds only a path is read
    from the upstream repo at `revision_sha`, or its row is refused (hubpress.refresh.media). The first phase's outcome is cached under
    `{cache_dir}/huggingface_metadata/{id}/`, keyed by the fingerprint (revision sha + rules)."""
    ds = _cast_media(ds, cfg)
    available = column_names(ds)
    check_columns(cfg, available)
    report = RefreshReport(cfg.id)
    key = fingerprint(cfg, revision_sha)
    read = BackendRead(cfg, revision_sha, key, report)
    wanted = list(dict.fromkeys(metadata_columns(cfg, available) + media_columns(cfg)))
    two_phase = isinstance(ds, ParquetStream) or hasattr(ds, "select")  # a Dataset, or parquet files
    origin = MediaOrigin(cfg.dataset_name, revision_sha, _endpoint(endpoint), token or False)
    read.media_origin = origin
    read._reread = lambda indices: _read_again(ds, cfg, wanted, indices, origin)
    if cfg.streaming or not two_phase:
        rows = resolve_media(enumerate(ds.select_columns(wanted)), media_columns(cfg), origin, report)
        read._rows = iter(process_rows(rows, cfg, report))
        return read
    cached = _load_first_phase(cfg, key) if use_cache else None
    if cached is None:
        survivors = _first_phase(ds, cfg, available, report)
        if use_cache:
            _save_first_phase(cfg, key, survivors, report)
            read.cache_reused = False
    else:
        read.cache_reused = True
        # Same fingerprint: same snapshot, same rules. The first phase's drops are already known.
        survivors, report = cached
        read.report = report
    if row_facts is not None and isinstance(ds, ParquetStream):  # downloaded parquet files
        read._rows = _second_phase_by_file(ds, cfg, wanted, survivors, read.report, origin, row_facts)
    else:
        read._rows = iter(_second_phase(ds, cfg, wanted, survivors, read.report, origin))
    return read


def _second_phase(
    ds: Any,
    cfg: HuggingfaceBackend,
    wanted: list[str],
    survivors: list[int],
    report: RefreshReport,
    origin: MediaOrigin,
) -> Iterator[dict[str, Any]]:
    """Media of the surviving rows only, in batches; header-based size checks happen here."""
    if not survivors:
        return
    if isinstance(ds, ParquetStream):  # only the row groups that hold survivors are read
        rows: Iterator[tuple[int, Mapping[str, Any]]] = ds.select_columns(wanted).rows_at(survivors)
    else:
        subset = ds.select_columns(wanted).select(survivors)
        positions = iter(survivors)
        rows = (
            (next(positions), row)
            for batch in subset.iter(batch_size=MEDIA_BATCH)
            for row in _batch_rows(batch)
        )
    yield from process_rows(resolve_media(rows, media_columns(cfg), origin, report), cfg, report)


def _read_again(
    ds: Any, cfg: HuggingfaceBackend, wanted: list[str], indices: list[int], origin: MediaOrigin
) -> Iterator[dict[str, Any]]:
    """The output rows at `indices` (ascending) once more: from a Dataset or parquet files only
    the row groups holding them; from any other stream, the rows before them are passed over
    without their media being fetched. A scratch report: the first read counted them."""
    scratch = RefreshReport(cfg.id)
    if isinstance(ds, ParquetStream) or hasattr(ds, "select"):
        return _second_phase(ds, cfg, wanted, indices, scratch, origin)
    keep = set(indices)
    rows = ((i, row) for i, row in enumerate(ds.select_columns(wanted)) if i in keep)
    return iter(process_rows(resolve_media(rows, media_columns(cfg), origin, scratch), cfg, scratch))


def _second_phase_by_file(
    ds: ParquetStream,
    cfg: HuggingfaceBackend,
    wanted: list[str],
    survivors: list[int],
    report: RefreshReport,
    origin: MediaOrigin,
    facts: RowFacts,
) -> Iterator[dict[str, Any]]:
    """The second phase one upstream file at a time: a file whose rows' facts are kept (same
    content, place and configuration: hubpress.refresh.row_facts) gives its rows' facts without
    its media being read; the others are read, and their facts kept once every row went by."""
    for path, base, count in ds.spans():
        mine = survivors[bisect_left(survivors, base) : bisect_left(survivors, base + count)]
        identity = file_identity(path)
        kept = facts.load(identity, base, mine) if identity and facts.reuse else None
        if kept is not None:
            yield from replay(kept, report)
            continue
        one_file = replace(ds, files=(path,), _fs=None)
        local = one_file.select_columns(wanted).rows_at([i - base for i in mine])
        rows = ((base + i, row) for i, row in local)
        recording = RecordingReport(report)
        outcomes: dict[int, Entry] = {}
        for row in process_rows(resolve_media(rows, media_columns(cfg), origin, recording), cfg, recording):
            digest, size = facts.of(row)
            empty = cfg.editing is not None and not row.get("prompt")
            outcomes[row["source_index"]] = [row["source_index"], digest, size, empty]
            yield {**row, ROW_FACTS: (digest, size)}
        outcomes |= {i: [i, None, reasons] for i, reasons in recording.dropped.items()}
        if identity and sorted(outcomes) == mine:
            facts.save(identity, base, [outcomes[i] for i in mine])
