"""A Prefect server that lists a trigger for `training.job.finished` but refuses the event itself
(its database full, a proxy in front answering 5xx): `hubpress training-finished` still exits 0 (it
never fails the trainer) with one warning line. That line printed httpx's message whole: two
lines (its "For more information check: ..." link), and the API URL with any `user:password@` it
was given in PREFECT_API_URL."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import run_cli


class _ListensButRefusesEvents(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path.endswith("/automations/filter"):
            status = 200
            body = [{"enabled": True, "trigger": {"type": "event", "expect": ["training.job.finished"]}}]
        else:
            status, body = 503, {"detail": "the event store is unavailable"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ListensButRefusesEvents)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_refused_event_is_one_warning_line_without_the_urls_credentials(
    tmp_path, monkeypatch, refusing_api
):
    run = tmp_path / "run"
    (run / "checkpoint-10").mkdir(parents=True)
    monkeypatch.setenv("PREFECT_API_URL", f"http://ops:pr3fect-s3cret@{refusing_api}/api")
    code, out, err = run_cli("training-finished", str(run), "--repo", "acme-org/lora")
    assert code == 0 and out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("warning: could not announce training.job.finished")
    assert "503" in err
    assert "pr3fect-s3cret" not in err and "ops:" not in err
    assert err.rstrip().endswith(f"release it by hand with: hubpress release {run} --repo acme-org/lora")
