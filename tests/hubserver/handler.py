"""HTTP/1.1 transport on the standard library's http.server: reads requests (Content-Length or
chunked bodies), injects armed faults (error statuses, connection resets, stalls), streams responses.
"""

from __future__ import annotations

import logging
import math
import socket
import struct
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from .app import HubApp, error_response
from .errors import HubError
from .faults import Fault, FaultPlan, FiredFault
from .link import Link
from .messages import FileSlice, Request, Response

logger = logging.getLogger("tests.hubserver")
_CHUNK = 1024 * 1024


class _ResetConnection(Exception):
    """Abort the connection with a TCP reset, without a response."""


class Connections:
    """Open client connections, so that stopping the server also ends idle keep-alive ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)

    def close_all(self) -> None:
        with self._lock:
            socks = list(self._open)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def make_handler(
    app: HubApp,
    faults: FaultPlan,
    connections: Connections,
    stopping: threading.Event,
    link: Link | None = None,
) -> type[BaseHTTPRequestHandler]:
    link = link or Link()

    class HubRequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "hubpress-test-hub/1"
        timeout = 120  # an idle keep-alive connection is dropped after this many seconds

        def setup(self) -> None:
            super().setup()
            connections.add(self.connection)

        def finish(self) -> None:
            connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
            logger.debug("%s %s", self.address_string(), format % args)

        # ---- body -------------------------------------------------------------------------
        def _prepare_body(self) -> None:
            self._chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
            self._remaining = 0 if self._chunked else int(self.headers.get("Content-Length") or 0)
            self._body_done = not self._chunked and self._remaining == 0

        def _body_chunks(self, limit: int | None = None) -> Iterator[bytes]:
            """Yield the rest of the body (at most `limit` bytes when given)."""
            sent = 0
            while not self._body_done and (limit is None or sent < limit):
                if self._chunked:
                    if self._remaining == 0:
                        line = self.rfile.readline(1024).strip()
                        size = int(line.split(b";")[0] or b"0", 16)
                        if size == 0:
                            while self.rfile.readline(1024).strip():  # trailers
                                pass
                            self._body_done = True
                            return
                        self._remaining = size
                    want = min(self._remaining, _CHUNK)
                else:
                    want = min(self._remaining, _CHUNK)
                if limit is not None:
                    want = min(want, limit - sent)
                data = self.rfile.read(want)
                if not data:
                    raise ConnectionError("client closed the connection mid-body")
                link.transfer(len(data))  # the request body crosses the (shaped) link
                self._remaining -= len(data)
                sent += len(data)
                if self._chunked and self._remaining == 0:
                    self.rfile.readline(16)  # CRLF after each chunk
                elif not self._chunked and self._remaining == 0:
                    self._body_done = True
                yield data

        def _drain(self) -> None:
            for _ in self._body_chunks():
                pass

        # ---- dispatch ---------------------------------------------------------------------
        def _handle(self) -> None:
            method = self.command
            path, _, query = self.path.partition("?")
            self._prepare_body()
            matched = app.match(method, path)
            endpoint = matched[0].endpoint if matched else "not_found"
            app.accounting.request(endpoint)
            request = Request(
                method=method,
                path=path,
                query=parse_qs(query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                params=matched[1] if matched else {},
                body_chunks=self._body_chunks,
            )
            try:
                fault = faults.take(f"{method} {path}", endpoint)
                if fault is not None:
                    app.accounting.fault(FiredFault(fault.kind, endpoint, f"{method} {path}"))
                    response = self._inject(fault, endpoint)
                    if response is None:
                        response = self._dispatch(request, matched)
                else:
                    response = self._dispatch(request, matched)
                self._drain()
            except _ResetConnection:
                self._reset()
                return
            except (ConnectionError, TimeoutError, ValueError) as exc:
                # the client went away (or sent a broken body): nothing to answer
                logger.debug("dropping %s %s: %s", method, path, exc)
                self.close_connection = True
                return
            self._send(response, head=method == "HEAD")
            if endpoint == "resolve" and method == "GET":
                app.accounting.downloaded(response.length)

        def _dispatch(self, request: Request, matched) -> Response:
            try:
                if matched is None:
                    return app.not_found(request)
                return matched[0].handler(request)
            except HubError as error:
                return error_response(error)
            except (ConnectionError, TimeoutError):
                raise
            except Exception:
                logger.error(
                    "internal error on %s %s\n%s", request.method, request.path, traceback.format_exc()
                )
                return Response.json({"error": "Internal server error"}, status=500)

        def _inject(self, fault: Fault, endpoint: str) -> Response | None:
            """Apply a fault: a response to send instead of the real one, None to go on, or a reset."""
            if fault.kind == "stall":
                stopping.wait(fault.stall_seconds)
                return None
            if fault.kind == "reset":
                raise _ResetConnection()
            if fault.kind == "reset_mid_body":
                length = int(self.headers.get("Content-Length") or 0)
                half = max(length // 2, 1) if length else 64 * 1024
                for chunk in self._body_chunks(limit=half):
                    if endpoint == "lfs_upload":
                        app.accounting.uploaded(len(chunk))
                raise _ResetConnection()
            self._drain()
            status = int(fault.kind)
            headers = {}
            if status in (429, 503):
                headers["Retry-After"] = str(max(0, math.ceil(fault.retry_after)))
            message = {
                429: "Too Many Requests",
                500: "Internal Error",
                502: "Bad Gateway",
                503: "Unavailable",
            }
            return Response.json(
                {"error": f"{message[status]} (injected fault)"}, status=status, headers=headers
            )

        def _reset(self) -> None:
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass

        def _send(self, response: Response, head: bool) -> None:
            link.before_response()  # the link's latency, once per response
            try:
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(response.length))
                self.end_headers()
                if head:
                    return
                body = response.body
                if isinstance(body, FileSlice):
                    with open(body.path, "rb") as handle:
                        handle.seek(body.start)
                        left = body.length
                        while left > 0:
                            data = handle.read(min(left, _CHUNK))
                            if not data:
                                break
                            link.transfer(len(data))
                            self.wfile.write(data)
                            left -= len(data)
                elif body:
                    view = memoryview(body)
                    for start in range(0, len(view), _CHUNK):
                        piece = view[start : start + _CHUNK]
                        link.transfer(len(piece))
                        self.wfile.write(piece)
            except (ConnectionError, TimeoutError):
                self.close_connection = True

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    return HubRequestHandler
