"""A hostile HTTP proxy in front of the test Hub: the answers a real network or a broken proxy gives.

    proxy = HostileProxy(hub.url).start()
    proxy.url                                         # point HF_ENDPOINT here
    proxy.arm(r"^GET /api/models/", "not_json")       # the next matching request gets HTML
    proxy.arm(r"^HEAD ", "never_answer", count=5)     # read the request, then say nothing
    proxy.fired                                       # [(kind, "METHOD /path"), ...]

A pattern is a regex searched in "METHOD /path?query". Kinds:
  slow_loris     the upstream's answer, status line included, one byte every `interval` seconds
  never_answer   the request is read and accepted; nothing is ever sent back
  huge_json      200 application/json declaring `huge_bytes` (300 MB), then streaming a JSON list
  huge_chunked   the same without a Content-Length (chunked), so only counting the bytes can stop it
  not_json       200 text/html with a page that is not JSON
  redirect_empty 302 to another origin (the proxy's second port) that answers `{}` to anything
  redirect_short 302 to another origin that answers 2 bytes (for a download: a short file)
  redirect_dead  302 to http://127.0.0.1:1/x with a signed query string: a host nothing listens on
  redirect_dead_schemeless  the same as `//127.0.0.1:1/x?...` (a network-path reference)
  redirect_file  302 to file:///etc/passwd (another scheme)
  redirect_userinfo  302 to the other origin with user information (`http://user:pass@host/short/...`)
  redirect_moved 307 to `/moved<the same path, /resolve/ as /file/>` on this proxy (the same host:
                 huggingface_hub follows it and takes the file's ETag and commit from the answer there)
  moved_path_etag  for a `/moved/...` request: the upstream's answer to the path it stands for,
                 its ETag and X-Linked-Etag replaced by `"<planted_etag>"` (set it on the proxy)
  echo_token     400 whose error message (JSON body and X-Error-Message) repeats the request's
                 Authorization header, as a careless or hostile server may
  echo_token_glued  the same, but only the token's value, glued to the word before it (`key=...`,
                 `a1hf_...`): nothing marks it as a token, so only its value can find it
  link_loop      the upstream's answer with a `Link: <this same URL>; rel="next"` header: a listing
                 whose next page is the page just read, forever
  bad_sha        the upstream's answer with every `"sha": "<40 hex>"` replaced by `"sha": "../../x"`
  bad_size       the upstream's answer with every `"size": <n>` replaced by `"size": "lots"`
  endless_file   200 application/octet-stream, chunked without a length: a file's bytes without end
                 (up to `huge_bytes`); `file_bytes_sent` counts what the client took
  huge_file      the same declaring a Content-Length of 100 GB
  gzip_bomb      200 application/json, Content-Encoding: gzip twice over: a few hundred bytes on
                 the wire that decode to 80 MB of blanks before `{}` (over MAX_ANSWER_BYTES)
  gzip_file      the same bomb as a file body (application/octet-stream): small on the wire,
                 80 MB once decoded, far past the size the Hub lists for the file
Requests that match no armed fault are forwarded unchanged. `stop()` ends every held connection.
Tests (tests/e2e/test_hostile_network.py) drive hubpress's CLI through it; the fixture is
`hostile_proxy` in tests/conftest.py.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import threading
import zlib
from http.server import ThreadingHTTPServer
from urllib.parse import urlparse

from tests.faultproxy import ArmedFaults, QuietHandler, forward

KINDS = (
    "slow_loris",
    "never_answer",
    "huge_json",
    "huge_chunked",
    "not_json",
    "redirect_empty",
    "redirect_short",
    "redirect_dead",
    "redirect_dead_schemeless",
    "redirect_file",
    "redirect_userinfo",
    "redirect_moved",
    "moved_path_etag",
    "gzip_bomb",
    "bad_sha",
    "bad_size",
    "echo_token",
    "echo_token_glued",
    "link_loop",
    "endless_file",
    "huge_file",
    "gzip_file",
)


# Where redirect_dead leads: port 1 on loopback, where nothing listens; the signature stands for the
# signed query string a CDN redirect carries, which no message may repeat.
DEAD_HOST = "http://127.0.0.1:1"
SIGNATURE = "sig-0123456789abcdef"
USERINFO = "redirect-user:redirect-pass-5e1"  # what redirect_userinfo names; no message may repeat it


@functools.cache
def gzip_bomb(size: int = 80 * 1024 * 1024) -> bytes:
    """`size` blanks then `{}`, gzipped twice: each pass shrinks the one before about 1,000 times.
    Made once per process (about a second): a test arming it calls it first, so the answer is not
    late."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1 << 20)
    parts = [inner.compress(block) for _ in range(size >> 20)]
    once = b"".join(parts) + inner.compress(b"{}") + inner.flush()
    return gzip.compress(once, 9)


class HostileProxy(ArmedFaults):
    kinds = KINDS

    def __init__(self, upstream: str, *, interval: float = 1.0, huge_bytes: int = 300 * 1024 * 1024):
        super().__init__()
        parsed = urlparse(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.interval = interval
        self.huge_bytes = huge_bytes
        self.file_bytes_sent = 0  # what endless_file and huge_file got out before the client stopped
        self.planted_etag = ""  # what moved_path_etag answers as the ETag and X-Linked-Etag
        self.stopping = threading.Event()
        self.other_saw: list[dict[str, str]] = []  # the headers of each request the other origin got
        proxy = self

        class Handler(_Handler):
            owner = proxy

        class Other(_OtherOrigin):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._other = ThreadingHTTPServer(("127.0.0.1", 0), Other)  # another origin: another port
        for server in (self._server, self._other):
            server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def other_url(self) -> str:
        host, port = self._other.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HostileProxy:
        for server in (self._server, self._other):
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for server in (self._server, self._other):
            server.shutdown()
            server.server_close()


class _Handler(QuietHandler):
    owner: HostileProxy

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        return forward(self, self.owner.upstream_host, self.owner.upstream_port, body)

    def _raw(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason}"]
        length = next((v for k, v in headers if k.lower() == "content-length"), None)
        for key, value in headers:
            if key.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                lines.append(f"{key}: {value}")
        lines.append(f"Content-Length: {length if self.command == 'HEAD' and length else len(data)}")
        body = b"" if self.command == "HEAD" else data
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _hold(self) -> None:
        """Keep the connection open, saying nothing, until the client leaves or the proxy stops."""
        self.connection.settimeout(0.2)
        while not self.owner.stopping.is_set():
            try:
                if self.connection.recv(1) == b"":
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def _drip(self, raw: bytes) -> None:
        for i in range(len(raw)):
            if self.owner.stopping.wait(self.owner.interval):
                return
            try:
                self.wfile.write(raw[i : i + 1])
                self.wfile.flush()
            except OSError:
                return

    def _send(self, status: int, headers: dict[str, str], data: bytes = b"") -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _huge(self, chunked: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(self.owner.huge_bytes))
        self.end_headers()
        piece = b"[" + b"0," * 32767
        sent = 0
        try:
            while sent < self.owner.huge_bytes and not self.owner.stopping.is_set():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
                piece = b"0," * 32768
        except OSError:
            return
        self.close_connection = True

    def _endless_file(self, declared: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if declared:
            self.send_header("Content-Length", str(100 * 1024**3))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        piece = b"\0" * 65536
        try:
            while self.owner.file_bytes_sent < self.owner.huge_bytes and not self.owner.stopping.is_set():
                self.wfile.write(piece if declared else b"%x\r\n%s\r\n" % (len(piece), piece))
                self.owner.file_bytes_sent += len(piece)
        except OSError:
            return
        self.close_connection = True

    def _handle(self) -> None:
        body = self._body()
        kind = self.owner._take(f"{self.command} {self.path}")
        if kind is None:
            self.wfile.write(self._raw(*self._forward(body)))
            return
        self.close_connection = True
        if kind == "never_answer":
            self._hold()
        elif kind == "slow_loris":
            self._drip(self._raw(*self._forward(body)))
        elif kind in ("huge_json", "huge_chunked"):
            self._huge(chunked=kind == "huge_chunked")
        elif kind == "not_json":
            self._send(200, {"Content-Type": "text/html"}, b"<html><body>Gateway says hello</body></html>")
        elif kind == "redirect_empty":
            self._send(302, {"Location": f"{self.owner.other_url}/empty{self.path}"})
        elif kind == "link_loop":
            status, reason, headers, data = self._forward(body)
            headers = [*headers, ("Link", f'<{self.owner.url}{self.path}>; rel="next"')]
            self.wfile.write(self._raw(status, reason, headers, data))
        elif kind in ("echo_token", "echo_token_glued"):
            carried = self.headers.get("Authorization") or ""
            if kind == "echo_token_glued":
                carried = "key=a1" + carried.split()[-1]
            said = f"request refused, it carried {carried}"
            data = json.dumps({"error": said}).encode()
            self._send(400, {"Content-Type": "application/json", "X-Error-Message": said}, data)
        elif kind == "bad_sha":
            status, reason, headers, data = self._forward(body)
            data = re.sub(rb'"sha"\s*:\s*"[0-9a-f]{40}"', b'"sha": "../../x"', data)
            self.wfile.write(self._raw(status, reason, headers, data))
        elif kind == "bad_size":
            status, reason, headers, data = self._forward(body)
            data = re.sub(rb'"size"\s*:\s*\d+', b'"size": "lots"', data)
            self.wfile.write(self._raw(status, reason, headers, data))
        elif kind in ("endless_file", "huge_file"):
            self._endless_file(declared=kind == "huge_file")
        elif kind in ("gzip_bomb", "gzip_file"):
            kind_of = "application/json" if kind == "gzip_bomb" else "application/octet-stream"
            self._send(200, {"Content-Type": kind_of, "Content-Encoding": "gzip, gzip"}, gzip_bomb())
        elif kind == "redirect_moved":
            self._send(307, {"Location": "/moved" + self.path.replace("/resolve/", "/file/", 1)})
        elif kind == "moved_path_etag":
            self.path = self.path.removeprefix("/moved").replace("/file/", "/resolve/", 1)
            status, reason, headers, data = self._forward(body)
            planted = f'"{self.owner.planted_etag}"'
            headers = [(k, v) for k, v in headers if k.lower() not in ("etag", "x-linked-etag")]
            headers += [("ETag", planted), ("X-Linked-Etag", planted)]
            self.wfile.write(self._raw(status, reason, headers, data))
        elif kind == "redirect_short":
            self._send(302, {"Location": f"{self.owner.other_url}/short{self.path}"})
        elif kind == "redirect_file":
            self._send(302, {"Location": "file:///etc/passwd"})
        elif kind == "redirect_userinfo":
            other = self.owner.other_url.replace("://", f"://{USERINFO}@", 1)
            self._send(302, {"Location": f"{other}/short{self.path}"})
        elif kind in ("redirect_dead", "redirect_dead_schemeless"):
            where = DEAD_HOST.removeprefix("http:") if kind.endswith("schemeless") else DEAD_HOST
            self._send(302, {"Location": f"{where}/x?X-Amz-Signature={SIGNATURE}"})

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class _OtherOrigin(QuietHandler):
    """The host a cross-origin redirect leads to: `{}` under /empty, two bytes under /short."""

    owner: HostileProxy

    def _handle(self) -> None:
        self.owner.other_saw.append({k.lower(): v for k, v in self.headers.items()})
        data, kind = (
            (b"{}", "application/json")
            if self.path.startswith("/empty")
            else (b"ok", "application/octet-stream")
        )
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle
