"""A server on another host's address that records the Authorization header of every request: a
hostile Hub's answer pointing a client at it must never get it the token.

    with TokenThief() as thief:
        ... thief.url ...
    assert not thief.saw(TOKEN)
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class TokenThief:
    def __init__(self) -> None:
        self.seen: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                owner.seen.append(self.headers.get("Authorization") or "")
                self.send_response(200)  # a usable Xet token answer, should one be asked for
                self.send_header("X-Xet-Cas-Url", "https://cas.example")
                self.send_header("X-Xet-Access-Token", "x")
                self.send_header("X-Xet-Token-Expiration", "9999999999")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> TokenThief:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def saw(self, token: str) -> bool:
        return any(token in value for value in self.seen)
