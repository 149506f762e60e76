"""A file's download held to the size the Hub lists for it.

huggingface_hub writes every byte a resolve answer (or the storage it redirects to) gives into its
cache and compares the size only at the end, and hubpress's transport bounds a file body by its
deadline alone (120 s, plus 68 minutes a declared GB): a hostile or broken Hub answering a few-KB
LoRA with bytes without end, or declaring 100 GB, filled the disk (300 MB a test run, all the
proxy had). A caller that knows the listed size downloads inside `listed_size(size, what)`; the
transport (hubpress.targets.hub_http) then refuses a file body that declares more, or stops one
as soon as it has given more (`FileLongerThanListed`, one line, not retried). A request for a byte
range is held to that range the same way, whoever made it.
"""

from __future__ import annotations

import contextvars
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx2

from hubpress.deadlines import url_without_secrets
from hubpress.targets.hub_failures import HubAnswerUnusable

# (the bytes the file has, what it is) for the downloads made in this context, or None.
_LISTED: contextvars.ContextVar[tuple[int, str] | None] = contextvars.ContextVar(
    "hubpress_listed", default=None
)
# Whether that size is the file's own (listed), not only a bound on it (a document limit).
_EXACT: contextvars.ContextVar[bool] = contextvars.ContextVar("hubpress_listed_exact", default=True)


class FileNotAsListed(HubAnswerUnusable, httpx2.TransportError):
    """A download answered, or announced, as another size than the Hub lists for the file. Not retried."""


class FileLongerThanListed(FileNotAsListed):
    """A download answered with more bytes than the Hub lists for the file. Not retried."""


@contextmanager
def listed_size(size: int, what: str, exact: bool = True) -> Iterator[None]:
    """File bodies answered in this context (this thread, this task) are at most `size` bytes;
    `exact`: `size` is what the Hub lists for the file, so a resolve answer announcing another
    size is refused too (else `size` is only a bound, such as a document limit)."""
    size = max(0, int(size))
    said = f"which the Hub lists at {size:,} bytes" if exact else f"which may have at most {size:,} bytes"
    reset = _LISTED.set((size, f"{what}, {said}"))
    reset_exact = _EXACT.set(exact)
    try:
        yield
    finally:
        _EXACT.reset(reset_exact)
        _LISTED.reset(reset)


_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


def file_limit(request: httpx2.Request) -> tuple[int, str] | None:
    """(at most how many bytes, what they are for) when `request` downloads a file of a known size
    or a byte range of one. A range is the tighter bound: HfFileSystem (footers, streamed upstream
    row groups) asks for ranges and reads each whole answer into memory, so an answer ignoring the
    Range header (200 with the whole file, or bytes without end) would all be held there."""
    if request.method != "GET":
        return None
    asked = _RANGE.fullmatch((request.headers.get("range") or "").strip())
    if asked is not None:
        start, end = int(asked[1]), int(asked[2])
        size = max(0, end - start + 1)
        return size, f"a request for {size:,} bytes (Range: bytes={start}-{end})"
    return _LISTED.get() or _listed_by_url(request)


# Files of pinned commits whose sizes a listing gave, by the path of their resolve URL (and the
# storage URLs a resolve answer redirected to): (size, what). Shared by every thread, as `datasets`
# downloads on threads of its own, which a context variable does not reach; sound, as a path under
# a commit sha names one content for ever.
_BY_URL: dict[str, tuple[int, str]] = {}
_BY_URL_LOCK = threading.Lock()
_MAX_REMEMBERED = 500_000
_COMMIT = re.compile(r"[0-9a-f]{40}")


def remember_listing(
    repo_type: str, repo_id: str, commit: str, sizes: Mapping[str, int], endpoint: str | None = None
) -> None:
    """Hold every later download of these files of `repo_id` at `commit` (a resolve URL naming the
    commit, whoever asks: `datasets` downloading an upstream's card or data files itself, HfFileSystem
    opening its media) to the listed sizes, as `listed_size` holds one download. `endpoint`: the
    Hub they come from, whose own path (a mirror's `/api/huggingfaceml/hf-remote`) comes first."""
    if not _COMMIT.fullmatch(commit):
        return  # a branch name moves: its files' sizes are not facts
    prefix = urlsplit(endpoint).path.rstrip("/") if endpoint else ""
    prefix += "" if repo_type == "model" else f"/{repo_type}s"
    with _BY_URL_LOCK:
        if len(_BY_URL) + len(sizes) > _MAX_REMEMBERED:
            _BY_URL.clear()
        for path, size in sizes.items():
            what = f"{path} of {repo_type} repo {repo_id}, which the Hub lists at {size:,} bytes"
            _BY_URL[f"{prefix}/{repo_id}/resolve/{commit}/{path}"] = (max(0, int(size)), what)


def _listed_by_url(request: httpx2.Request) -> tuple[int, str] | None:
    if not _BY_URL:
        return None
    return _BY_URL.get(request.url.path) or _BY_URL.get(str(request.url))


def redirected(request: httpx2.Request, location: str) -> None:
    """A resolve answer for a listed file redirected to `location` (its storage): the download
    that follows is held to the same size."""
    listed = _listed_by_url(request)
    if listed is not None:
        with _BY_URL_LOCK:
            _BY_URL[str(request.url.join(location))] = listed


class HeaderNamesAPath(HubAnswerUnusable, httpx2.TransportError):
    """A resolve answer whose header huggingface_hub makes a cache path of names a path. Not retried."""


# The headers of a resolve answer huggingface_hub joins into its cache's paths as they come: the
# blob is `blobs/<X-Linked-Etag or ETag>`, the snapshot entry `snapshots/<X-Repo-Commit>/<file>`.
_CACHE_NAMING = ("x-linked-etag", "etag")
_REPO_COMMIT = "x-repo-commit"


def _as_cache_name(etag: str) -> str:
    """An ETag as huggingface_hub makes it a file name: without `W/` and the quotes."""
    etag = etag.strip()
    return etag.removeprefix("W/").strip('"')


def path_in_cache_header(request: httpx2.Request, headers) -> Exception | None:
    """The refusal of a resolve answer (HEAD or GET, a redirect included, and an answer on the path
    a resolve was redirected to) whose ETag, X-Linked-Etag or X-Repo-Commit is not a plain name:
    huggingface_hub writes the download to `blobs/<etag>` as the header gives it, so `/home/me/.bashrc` (os.path.join keeps an absolute part whole) or
    `../../x` put a Hub's bytes anywhere this user may write, and an empty one makes the download
    the folder `blobs/` itself; a commit must be a commit id. None for any other answer."""
    from hubpress.storage.names import is_commit_id, why_unsafe

    # A resolve answer, or any answer huggingface_hub may take for one: it follows a resolve's
    # redirect on the same host to any path (the Hub's own go to /api/resolve-cache/...) and takes
    # the file's facts from the answer there, which carries the file's commit to be of use to it.
    if "/resolve" not in request.url.path and not any(h in headers for h in (_REPO_COMMIT, "x-linked-etag")):
        return None
    bad = None
    commit = headers.get(_REPO_COMMIT)
    if commit is not None and not is_commit_id(commit.strip()):
        bad = _REPO_COMMIT
    for header in _CACHE_NAMING:
        value = headers.get(header)
        if bad is None and value is not None:
            name = _as_cache_name(value)
            # An empty one names `blobs/` itself: the download is then that folder (a traceback).
            if not name or "/" in name or why_unsafe(name) is not None:
                bad = header
    if bad is None:
        return None
    shown = repr(headers[bad][:80])
    return HeaderNamesAPath(
        f"{url_without_secrets(str(request.url))} answered with {'ETag' if bad == 'etag' else headers_name(bad)} {shown}, which is "
        "not a plain name: huggingface_hub would make a path of it and write the download there, "
        "outside its cache. Nothing was downloaded. Check the Hub endpoint (HUBPRESS_HUB_ENDPOINT, "
        "HF_ENDPOINT) and any proxy in between."
    )


LINKED_SIZE = "x-linked-size"
XET_HASH = "x-xet-hash"


def announced_other_size(request: httpx2.Request, headers) -> Exception | None:
    """The refusal of a resolve answer (HEAD or GET, a redirect included) for a file of a listed
    size whose `X-Linked-Size` names another size. huggingface_hub hands that size to hf_xet as the
    size of the file a Xet download rebuilds, and hf_xet writes that many bytes of whatever file the
    answer's `X-Xet-Hash` names, outside this transport: a few-KB LoRA announced at 100 GB would
    fill the disk before any check could see it."""
    listed, exact = _LISTED.get(), _EXACT.get()
    if listed is None and (listed := _listed_by_url(request)) is not None:
        exact = True
    # Without X-Linked-Size, huggingface_hub takes a HEAD answer's Content-Length as the size, and
    # hands it to hf_xet when the answer names a Xet hash.
    header = LINKED_SIZE if LINKED_SIZE in headers else None
    if header is None and request.method == "HEAD" and XET_HASH in headers and "content-length" in headers:
        header = "content-length"
    if listed is None or header is None:
        return None
    try:
        announced = int(headers[header])
    except ValueError:
        announced = -1
    if announced == listed[0] or (0 <= announced < listed[0] and not exact):
        return None
    return FileNotAsListed(
        f"{url_without_secrets(str(request.url))} announced {headers[header][:40]!r} bytes "
        f"({headers_name(header)}) for {listed[1]}: nothing of it was downloaded. Check the Hub endpoint "
        "(HUBPRESS_HUB_ENDPOINT, HF_ENDPOINT) and any proxy in between."
    )


def headers_name(header: str) -> str:
    """`x-linked-size` as HTTP writes it: X-Linked-Size."""
    return "-".join(part.capitalize() for part in header.split("-"))


def longer_than_listed(
    request: httpx2.Request, limit: tuple[int, str], declared: int | None = None
) -> Exception:
    size, what = limit
    sent = f"declared {declared:,} bytes" if declared is not None else f"sent more than {size:,} bytes"
    return FileLongerThanListed(
        f"{url_without_secrets(str(request.url))} {sent} for {what}: the download was stopped and "
        "nothing of it is kept. Check the Hub endpoint (HUBPRESS_HUB_ENDPOINT, HF_ENDPOINT) and any "
        "proxy in between."
    )
