"""A proxy in front of the test Hub that gives the answers a real Hub may give and the test Hub does
not: answers lost after the Hub acted on the request, bodies a client cannot use, rate limits with
any header. In the spirit of tests/faultproxy.py (which fronts moto's S3).

    proxy = HubProxy(hub.url).start()
    proxy.url                                          # point HUBPRESS_HUB_ENDPOINT here
    proxy.lose_answer(r"^POST /api/datasets/.*/commit/")  # forwarded and applied, then the connection closes
    proxy.answer(r"/preupload/", 429, headers={"Retry-After": "nan"})   # answered here, not forwarded
    proxy.rewrite(r"/commit/", lambda body: body.replace(b"a", b"b"))   # forwarded, body rewritten
    proxy.link_loop(r"/commits/", count=300)           # forwarded, its next page is itself
    proxy.fired                                        # [(action, "METHOD /path"), ...]

A pattern is a regex searched in "METHOD /path?query"; each rule fires `count` times (default 1),
first-armed first. Requests that match no rule are forwarded unchanged, and the Host header is
kept, so the upload links the Hub hands out point back through the proxy.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

Rewrite = Callable[[bytes], bytes]


@dataclass
class _Rule:
    pattern: re.Pattern[str]
    action: str  # "lose" | "answer" | "rewrite" | "link_loop"
    remaining: int
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    rewrite: Rewrite | None = None


class HubProxy:
    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0):
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self.fired: list[tuple[str, str]] = []
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubProxy:
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _arm(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def lose_answer(self, pattern: str, count: int = 1) -> None:
        """Forward the request (the Hub acts on it), then close the connection without an answer."""
        self._arm(_Rule(re.compile(pattern), "lose", count))

    def answer(
        self, pattern: str, status: int, body: bytes | dict | list = b"", headers: dict | None = None, count=1
    ) -> None:
        """Answer here, without forwarding: the Hub never sees the request."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self._arm(_Rule(re.compile(pattern), "answer", count, status, dict(headers or {}), raw))

    def rewrite(self, pattern: str, change: Rewrite, count: int = 1) -> None:
        """Forward the request, then send the Hub's answer with its body passed through `change`."""
        self._arm(_Rule(re.compile(pattern), "rewrite", count, rewrite=change))

    def link_loop(self, pattern: str, count: int = 1) -> None:
        """Forward the request, then send the Hub's answer with a `Link: <this same URL>; rel="next"`
        header: a listing whose next page is the page just read, for as long as the rule fires."""
        self._arm(_Rule(re.compile(pattern), "link_loop", count))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self.fired.clear()

    def _take(self, line: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.pattern.search(line):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    self.fired.append((rule.action, line))
                    return rule
        return None


class _Handler(BaseHTTPRequestHandler):
    owner: HubProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, headers: list[tuple[str, str]], body: bytes, length: str | None = None
    ) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", length or str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes, str | None]:
        conn = http.client.HTTPConnection(*self.owner.upstream, timeout=120)
        try:
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("connection", "transfer-encoding")
            }
            if body or self.command in ("POST", "PUT"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            length = response.getheader("Content-Length") if self.command == "HEAD" else None
            return response.status, response.getheaders(), data, length
        finally:
            conn.close()

    def _close_without_answer(self) -> None:
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def _handle(self) -> None:
        body = self._body()
        rule = self.owner._take(f"{self.command} {self.path}")
        if rule is not None and rule.action == "answer":
            headers = [("Content-Type", "application/json"), *rule.headers.items()]
            self._send(rule.status, headers, rule.body)
            return
        status, headers, data, length = self._forward(body)
        if rule is not None and rule.action == "lose":
            self._close_without_answer()
            return
        if rule is not None and rule.rewrite is not None:
            data, length = rule.rewrite(data), None
        if rule is not None and rule.action == "link_loop":
            headers = [*headers, ("Link", f'<{self.owner.url}{self.path}>; rel="next"')]
        self._send(status, headers, data, length)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle
