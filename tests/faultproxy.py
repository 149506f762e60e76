"""A small fault-injecting HTTP proxy, for putting in front of moto's S3 server in tests.

    proxy = FaultProxy("http://127.0.0.1:5000").start()
    proxy.url                                        # point HUBPRESS_S3_ENDPOINT_URL here
    proxy.arm(r"^PUT ", "slowdown", count=3)         # the next 3 matching requests get 503 SlowDown
    proxy.arm(r"^GET /bucket/", "reset", count=1)    # the next matching request: TCP reset
    proxy.fired                                      # [(kind, "METHOD /path"), ...]
    proxy.requests                                   # every request seen, faulted or not

A pattern is a regex searched in "METHOD /path?query". Kinds:
  slowdown  503 with S3's SlowDown error document (what S3 answers when throttling)
  500       500 InternalError
  503       503 ServiceUnavailable
  access_denied  403 AccessDenied;  invalid_key  403 InvalidAccessKeyId
  moved     301 PermanentRedirect (a bucket in another region), with x-amz-bucket-region: eu-west-1
  reset     the connection is reset (SO_LINGER 0) after the request was read
Requests that match no armed fault are forwarded unchanged, body and headers included.
"""

from __future__ import annotations

import http.client
import re
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

_S3_ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "ServiceUnavailable", "Service is unable to handle request."),
    "access_denied": (403, "AccessDenied", "Access Denied"),
    "invalid_key": (
        403,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    "moved": (
        301,
        "PermanentRedirect",
        "The bucket you are attempting to access must be addressed using the specified endpoint.",
    ),
}
KINDS = (*_S3_ERRORS, "reset")


@dataclass
class _Fault:
    pattern: re.Pattern[str]
    kind: str
    remaining: int


class ArmedFaults:
    """Faults armed by pattern ("METHOD /path?query"), consumed first-armed first, and a record of
    what fired and of every request seen. The base of FaultProxy and tests/hostileproxy.py."""

    kinds: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self.fired: list[tuple[str, str]] = []
        self.requests: list[str] = []

    def arm(self, pattern: str, kind: str, count: int = 1) -> None:
        if kind not in self.kinds:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(self.kinds)}")
        with self._lock:
            self._faults.append(_Fault(re.compile(pattern), kind, count))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.fired.clear()
            self.requests.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def _take(self, line: str) -> str | None:
        with self._lock:
            self.requests.append(line)
            for fault in self._faults:
                if fault.remaining > 0 and fault.pattern.search(line):
                    fault.remaining -= 1
                    self.fired.append((fault.kind, line))
                    return fault.kind
        return None


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1, no access log, the request body read whole."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


def forward(handler: BaseHTTPRequestHandler, host: str, port: int, body: bytes):
    """Send the handler's request upstream unchanged; (status, reason, headers, body) of the answer."""
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "connection"}
        # Asked as an HTTP proxy (HTTP_PROXY), the path is a whole URL: upstream gets its path.
        target = urlparse(handler.path)
        path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        path = path if target.scheme else handler.path
        conn.request(handler.command, path, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.reason, response.getheaders(), response.read()
    finally:
        conn.close()


class FaultProxy(ArmedFaults):
    kinds = KINDS

    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0):
        super().__init__()
        parsed = urlparse(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(QuietHandler):
    owner: FaultProxy

    def _handle(self) -> None:
        body = self._body()
        kind = self.owner._take(f"{self.command} {self.path}")
        if kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if kind is not None:
            status, code, message = _S3_ERRORS[kind]
            payload = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message><RequestId>faultproxy</RequestId></Error>"
            ).encode()
            self.send_response(status)
            if kind == "moved":
                self.send_header("x-amz-bucket-region", "eu-west-1")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        status, reason, headers, data = forward(
            self, self.owner.upstream_host, self.owner.upstream_port, body
        )
        self.send_response(status, reason)
        for key, value in headers:
            if key.lower() in ("transfer-encoding", "connection", "content-length", "server", "date"):
                continue
            self.send_header(key, value)
        # HEAD answers carry the object's length without its bytes.
        length = next((v for k, v in headers if k.lower() == "content-length"), None)
        self.send_header("Content-Length", (length if self.command == "HEAD" else None) or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle
