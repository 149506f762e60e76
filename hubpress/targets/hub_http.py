"""huggingface_hub's HTTP client, built with hubpress's deadlines (hubpress.deadlines).

huggingface_hub (and `datasets` and HfFileSystem, which share its client) passes `timeout=None` on
most calls, which turns every httpx timeout off, and a read timeout alone never ends an answer that
trickles one byte at a time. So the client hubpress gives huggingface_hub's `set_client_factory`
has two parts, both public hooks of httpx2/httpcore2:

- a request event hook fills the per-phase timeouts (connect, read, write, pool) where the caller
  left none, and caps the ones it gave;
- its transport is an httpcore2 connection pool whose network backend gives each socket read and
  write only the time left before the phase's deadline. The deadline runs from the request (until
  the answer's headers are in) and again from the headers (until the body is read), each
  `request_deadline` plus the declared bytes at `min_transfer_rate`. Overrunning it raises
  DeadlineExceeded, which huggingface_hub does not retry and the CLI prints as one line.

A JSON answer is held to MAX_ANSWER_BYTES as the parser would hold it: a Content-Encoding (gzip,
deflate, or a chain of them) is undone here, never more than the limit at a time, and the answer
goes on decoded, so a few hundred bytes that inflate to gigabytes are refused, not parsed.

The Xet storage a Hub names (the X-Xet-Cas-Url header of its Xet token answers, which
huggingface_hub hands to hf_xet) is checked here too, before hf_xet sees it: hf_xet takes
`local://PATH` as a storage folder on this machine and writes into it, so a Hub may name one only
inside a folder the operator listed (HUBPRESS_XET_LOCAL_CAS: a test Hub's CAS); anything else
that is not an http(s) address is refused; and where a resolve answer sends the Xet token request
(which carries the user's token) must be the Hub's own origin (hubpress.targets.token_links).
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpcore2
import httpx2

from hubpress.deadlines import DeadlineExceeded, Deadlines, url_without_secrets
from hubpress.errors import HubpressError
from hubpress.parsers import MAX_ANSWER_BYTES
from hubpress.storage.names import is_inside
from hubpress.targets import hub_waits, interrupted
from hubpress.targets.hub_failures import HubAnswerUnusable
from hubpress.targets.listed_sizes import (
    announced_other_size,
    file_limit,
    longer_than_listed,
    path_in_cache_header,
    redirected,
)
from hubpress.targets.listing_pages import PageChains
from hubpress.targets.token_links import TokenLinkRefused, check_token_links

# When the current phase of the current request must end (time.monotonic), and what to call it.
_PHASE_END: contextvars.ContextVar[tuple[float, float, str, str] | None] = contextvars.ContextVar(
    "hubpress_phase_end", default=None
)


class HubDeadlineExceeded(DeadlineExceeded, httpx2.TransportError):
    """DeadlineExceeded as huggingface_hub sees it: a transport error it does not retry."""

    def __init__(self, url: str, seconds: float, phase: str):
        DeadlineExceeded.__init__(self, url, seconds, phase)


def _left(timeout: float | None) -> float | None:
    """The socket timeout for one read or write: the caller's, cut to what is left of the phase."""
    phase = _PHASE_END.get()
    if phase is None:
        return timeout
    end, seconds, url, what = phase
    left = end - time.monotonic()
    if left <= 0:
        raise HubDeadlineExceeded(url, seconds, what)
    return left if timeout is None else min(timeout, left)


def _overran(exc: Exception) -> None:
    """A socket timeout that fell on the phase's deadline is the deadline, not a silence."""
    phase = _PHASE_END.get()
    if phase is not None and time.monotonic() >= phase[0]:
        raise HubDeadlineExceeded(phase[2], phase[1], phase[3]) from None
    raise exc


# A socket read waits in slices this long: Ctrl-C ends a request the Hub holds within one, not when
# the Hub answers or the deadline ends it (the run's tidy-up and exit waited for it).
STOP_CHECK_SECONDS = 0.25


class HubRequestStopped(HubpressError, httpx2.TransportError):
    """A request in flight when Ctrl-C came, ended then. Not retried: the run is stopping."""


def _read_until_stopped(inner: httpcore2.NetworkStream, max_bytes: int, timeout: float | None) -> bytes:
    phase = _PHASE_END.get()
    if phase is None:
        return inner.read(max_bytes, timeout)
    end, seconds, url, what = phase
    until = None if timeout is None else time.monotonic() + timeout
    while True:
        if interrupted.stopped_after(end - seconds):
            raise HubRequestStopped(f"{url_without_secrets(url)}: stopped by Ctrl-C while {what}.")
        wait = STOP_CHECK_SECONDS if until is None else min(STOP_CHECK_SECONDS, until - time.monotonic())
        try:
            return inner.read(max_bytes, max(wait, 0.001))
        except httpcore2.ReadTimeout:  # nothing was read: a slice, or the caller's whole timeout
            if until is not None and time.monotonic() >= until:
                raise


class _DeadlineStream(httpcore2.NetworkStream):
    def __init__(self, inner: httpcore2.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return _read_until_stopped(self._inner, max_bytes, _left(timeout))
        except httpcore2.ReadTimeout as exc:
            _overran(exc)
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._inner.write(buffer, _left(timeout))
        except httpcore2.WriteTimeout as exc:
            _overran(exc)
            raise

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore2.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore2.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore2.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        stream = self._inner.connect_tcp(host, port, _left(timeout), local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        return _DeadlineStream(self._inner.connect_unix_socket(path, _left(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _declared(headers: Any) -> int | None:
    try:
        return int(headers.get("content-length"))
    except (TypeError, ValueError):
        return None


_EXCEPTIONS: tuple[tuple[type[Exception], type[Exception]], ...] = (
    # Most specific first: the first match wins.
    (httpcore2.ConnectTimeout, httpx2.ConnectTimeout),
    (httpcore2.ReadTimeout, httpx2.ReadTimeout),
    (httpcore2.WriteTimeout, httpx2.WriteTimeout),
    (httpcore2.PoolTimeout, httpx2.PoolTimeout),
    (httpcore2.TimeoutException, httpx2.TimeoutException),
    (httpcore2.ConnectError, httpx2.ConnectError),
    (httpcore2.ReadError, httpx2.ReadError),
    (httpcore2.WriteError, httpx2.WriteError),
    (httpcore2.ProxyError, httpx2.ProxyError),
    (httpcore2.UnsupportedProtocol, httpx2.UnsupportedProtocol),
    (httpcore2.RemoteProtocolError, httpx2.RemoteProtocolError),
    (httpcore2.LocalProtocolError, httpx2.LocalProtocolError),
    (httpcore2.NetworkError, httpx2.NetworkError),
    (httpcore2.ProtocolError, httpx2.ProtocolError),
)


_CORE_ERRORS = tuple(core for core, _ in _EXCEPTIONS)


def _as_httpx(exc: Exception, request: httpx2.Request) -> Exception:
    for core, mapped in _EXCEPTIONS:
        if isinstance(exc, core):
            return mapped(str(exc), request=request)
    return exc


class HubAnswerTooLarge(HubAnswerUnusable, httpx2.TransportError):
    """A JSON answer over MAX_ANSWER_BYTES: refused while it arrives, never parsed."""

    def __init__(self, url: str, limit: int):
        HubAnswerUnusable.__init__(
            self,
            f"{url_without_secrets(url)} sent a JSON answer larger than the {limit:,}-byte limit "
            "(hubpress.parsers.MAX_ANSWER_BYTES); it was not read. Check the endpoint and any proxy in between.",
        )


class XetStorageRefused(HubAnswerUnusable, httpx2.TransportError):
    """A Hub named Xet storage hubpress will not hand to hf_xet. Not retried: the answer is the fault."""


XET_STORAGE_HEADER = "x-xet-cas-url"


def xet_storage_refusal(cas_url: str, local_roots: tuple[str, ...]) -> str | None:
    """Why the Xet storage `cas_url` a Hub named must not be used, or None when it may: an http(s)
    address with a host, or local://PATH inside one of `local_roots` (real paths, symlinks
    resolved, so `..` or a link cannot lead out of them)."""
    scheme, sep, rest = cas_url.partition("://")
    scheme = scheme.lower()
    if sep and scheme in ("https", "http"):
        return None if urlsplit(cas_url).hostname else "it names no host"
    if sep and scheme == "local" and rest:
        path = os.path.realpath(rest)
        for root in local_roots:
            if is_inside(path, os.path.realpath(root)):
                return None
        return "it is a folder on this machine outside HUBPRESS_XET_LOCAL_CAS"
    return "it is not an http(s) address"


def _check_xet_storage(request: httpx2.Request, headers: Any, local_roots: tuple[str, ...]) -> None:
    named = headers.get(XET_STORAGE_HEADER)
    if named is None:
        return
    why = xet_storage_refusal(named, local_roots)
    if why is not None:
        shown = url_without_secrets(named) if "://" in named else named[:80]
        raise XetStorageRefused(
            f"{url_without_secrets(str(request.url))} named {shown!r} as its Xet storage, and {why}: "
            "hubpress does not let hf_xet read or write storage a remote names there. Check the "
            "Hub endpoint (HUBPRESS_HUB_ENDPOINT, HF_ENDPOINT)."
        )


def _json_limit(request: httpx2.Request, headers: Any) -> int | None:
    """The size limit of an answer: API and JSON answers are parsed whole in memory; file bodies
    (resolve, LFS and storage URLs) stream to disk and are bounded by their deadline instead."""
    kind = (headers.get("content-type") or "").lower()
    return MAX_ANSWER_BYTES if "json" in kind or request.url.path.startswith("/api/") else None


_DECODED = ("gzip", "x-gzip", "deflate")


def _encodings(headers: Any) -> list[str]:
    """The Content-Encoding codings to undo, last applied first; identity dropped."""
    named = [c.strip().lower() for c in (headers.get("content-encoding") or "").split(",")]
    return [c for c in reversed(named) if c and c != "identity"]


class _Inflate:
    """One gzip or deflate coding undone chunk by chunk, never more than `cap` bytes at a time."""

    def __init__(self, coding: str):
        self._raw_fallback = coding == "deflate"  # `deflate` is zlib-wrapped, or raw from some servers
        self._obj = zlib.decompressobj(zlib.MAX_WBITS | 32)

    def __call__(self, data: bytes, cap: int) -> bytes | None:
        """The decoded bytes, or None when they would exceed `cap`."""
        try:
            out = self._obj.decompress(data, cap + 1)
        except zlib.error:
            if not self._raw_fallback:
                raise
            self._raw_fallback, self._obj = False, zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._obj.decompress(data, cap + 1)
        self._raw_fallback = False
        return None if len(out) > cap or self._obj.unconsumed_tail else out


class _DeadlineBody(httpx2.SyncByteStream):
    def __init__(
        self,
        inner,
        request: httpx2.Request,
        phase: tuple[float, float, str, str],
        limit: int | None,
        decoders: list[_Inflate] | None = None,
        too_large: Any = None,
    ):
        self._inner, self._request, self._phase, self._limit = inner, request, phase, limit
        self._decoders = decoders or []
        self._too_large = too_large  # the error past `limit`, when it is not a JSON answer's

    def _decoded(self, chunk: bytes, received: int) -> bytes:
        for decode in self._decoders:
            try:
                out = decode(chunk, (self._limit or 0) - received)
            except zlib.error as exc:
                raise httpx2.DecodingError(f"an answer's Content-Encoding cannot be undone: {exc}") from None
            if out is None:
                if self._too_large is not None:
                    raise self._too_large()
                raise HubAnswerTooLarge(str(self._request.url), self._limit or 0)
            chunk = out
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._inner)
        received = 0
        while True:
            reset = _PHASE_END.set(self._phase)
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except _CORE_ERRORS as exc:
                raise _as_httpx(exc, self._request) from exc
            finally:
                _PHASE_END.reset(reset)
            if self._decoders:
                chunk = self._decoded(chunk, received)
            received += len(chunk)
            if self._limit is not None and received > self._limit:
                if self._too_large is not None:
                    raise self._too_large()
                raise HubAnswerTooLarge(str(self._request.url), self._limit)
            yield chunk

    def close(self) -> None:
        if hasattr(self._inner, "close"):
            self._inner.close()


class DeadlineTransport(httpx2.BaseTransport):
    """An httpx2 transport whose every request phase ends by its deadline."""

    def __init__(self, deadlines: Deadlines, max_connections: int = 32, local_cas: tuple[str, ...] = ()):
        self.deadlines = deadlines
        self.local_cas = local_cas
        self._pages = PageChains()  # every listing's pages, so that one that loops is stopped
        self._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=_DeadlineBackend(),
        )

    def _phase(self, request: httpx2.Request, declared: int | None, what: str) -> tuple:
        seconds = self.deadlines.for_phase(declared)
        return (time.monotonic() + seconds, seconds, str(request.url), what)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self._pages.asking(request)
        core_request = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        reset = _PHASE_END.set(self._phase(request, _declared(request.headers), "answering"))
        try:
            response = self._pool.handle_request(core_request)
        except _CORE_ERRORS as exc:
            raise _as_httpx(exc, request) from exc
        finally:
            _PHASE_END.reset(reset)
        headers = httpx2.Headers(response.headers)
        try:
            _check_xet_storage(request, headers, self.local_cas)
            check_token_links(request, headers)
            self._pages.answered(request, headers)
        except (XetStorageRefused, TokenLinkRefused):
            response.close()
            raise
        if (
            refusal := path_in_cache_header(request, headers) or announced_other_size(request, headers)
        ) is not None:
            response.close()
            raise refusal
        limit = _json_limit(request, headers)
        if limit is not None and (_declared(headers) or 0) > limit:
            response.close()
            raise HubAnswerTooLarge(str(request.url), limit)
        body_phase = self._phase(request, _declared(headers), "sending its answer")
        too_large = None
        # A redirect to a file's storage is not the file ("Found. Redirecting to <signed URL>" is
        # longer than a small file): httpx reads its body into memory, so it is held as an answer.
        if limit is None and 300 <= response.status < 400 and "location" in headers:
            limit = MAX_ANSWER_BYTES
            redirected(request, headers["location"])
        if limit is None and (listed := file_limit(request)) is not None:  # a file of a listed size
            # Content-Length counts the encoded bytes: an honest gzipped answer may declare more
            # than the file, so only an unencoded answer's declaration is refused up front.
            if not _encodings(headers) and (_declared(headers) or 0) > listed[0]:
                response.close()
                raise longer_than_listed(request, listed, _declared(headers))
            limit, too_large = listed[0], lambda: longer_than_listed(request, listed)
        # Undone here, within the limit: the decoded bytes are what is held (httpx decodes after).
        codings = _encodings(headers) if limit is not None else []
        decoders = [_Inflate(c) for c in codings if c in _DECODED]  # httpx too skips the others
        if decoders:  # decoded here, within the limit: httpx must not decode again
            for name in ("content-encoding", "content-length"):
                del headers[name]
        return httpx2.Response(
            status_code=response.status,
            headers=headers if decoders else response.headers,
            stream=_DeadlineBody(response.stream, request, body_phase, limit, decoders, too_large),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def _timeouts_hook(deadlines: Deadlines):
    """Fill (or cap) the per-phase timeouts of every request: huggingface_hub often passes None."""
    bounds = deadlines.timeouts()

    def hook(request: httpx2.Request) -> None:
        given = dict(request.extensions.get("timeout") or {})
        request.extensions["timeout"] = {
            key: bound if given.get(key) is None else min(given[key], bound) for key, bound in bounds.items()
        }

    return hook


def client_factory(deadlines: Deadlines, local_cas: tuple[str, ...] = ()):
    """A factory for huggingface_hub's `set_client_factory`: its own request hook, our deadlines,
    and the folders a Hub may name as local Xet storage."""
    from huggingface_hub.utils._http import hf_request_event_hook

    def build() -> httpx2.Client:
        return httpx2.Client(
            # No client default: httpx's is 5 s for every phase, which the hook would keep (it only
            # caps what a request carries) and so cut a commit the Hub takes longer to answer (its
            # own bound is 60 s) with a ReadTimeout. Unset, every phase gets hubpress's bounds.
            timeout=None,
            # every wait the Hub asks for is bounded (hub_waits), every phase ends by its deadline
            transport=hub_waits.bounding_transport(DeadlineTransport(deadlines, local_cas=local_cas)),
            event_hooks={"request": [hf_request_event_hook, _timeouts_hook(deadlines)]},
            follow_redirects=True,
        )

    return build


_installed: tuple[Deadlines, tuple[str, ...]] | None = None
_lock = threading.Lock()


def install(settings=None) -> Deadlines:
    """Give huggingface_hub (and so `datasets` and HfFileSystem) a client with hubpress's deadlines.
    Idempotent; settings that changed since the last call rebuild the client."""
    global _installed
    from huggingface_hub import set_client_factory

    from hubpress.settings import get_settings

    settings = settings or get_settings()
    deadlines = Deadlines.from_settings(settings)
    local_cas = tuple(p for p in (settings.xet_local_cas or "").split(os.pathsep) if p)
    with _lock:
        if _installed != (deadlines, local_cas):
            set_client_factory(client_factory(deadlines, local_cas))
            _installed = (deadlines, local_cas)
    return deadlines
