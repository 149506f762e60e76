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
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2

from hubpress.deadlines import url_without_secrets
from hubpress.targets.hub_failures import HubAnswerUnusable

# (the bytes the file has, what it is) for the downloads made in this context, or None.
_LISTED: contextvars.ContextVar[tuple[int, str] | None] = contextvars.ContextVar(
    "hubpress_listed", default=None
)


class FileLongerThanListed(HubAnswerUnusable, httpx2.TransportError):
    """A download answered with more bytes than the Hub lists for the file. Not retried."""


@contextmanager
def listed_size(size: int, what: str) -> Iterator[None]:
    """File bodies answered in this context (this thread, this task) are at most `size` bytes."""
    size = max(0, int(size))
    reset = _LISTED.set((size, f"{what}, which the Hub lists at {size:,} bytes"))
    try:
        yield
    finally:
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
    return _LISTED.get()


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
