"""The listed-size hold (hubpress.targets.listed_sizes) counts a file's decoded bytes: an honest
answer that a CDN or proxy gzipped is the file, however long its encoding, and a gzipped answer
that decodes to more than the file is refused (tests/lora/test_download_without_end.py)."""

from __future__ import annotations

import gzip
import os
import threading
from http.server import ThreadingHTTPServer

import pytest

from hubpress.targets.listed_sizes import FileLongerThanListed, listed_size
from tests.faultproxy import QuietHandler

FILE = os.urandom(4096)  # random bytes: gzipped, they take more room than the file itself


class _Gzipping(QuietHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = gzip.compress(FILE + (b"x" * 10 if self.path == "/longer" else b""))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def gzipping_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gzipping)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_honest_gzipped_file_longer_encoded_than_listed_is_given_whole(gzipping_server):
    from huggingface_hub.utils import get_session

    from hubpress.targets import hub_http

    hub_http.install()
    assert len(gzip.compress(FILE)) > len(FILE)  # what the declared Content-Length says
    with listed_size(len(FILE), "weights.safetensors of model repo a/b"):
        assert get_session().get(f"{gzipping_server}/file").content == FILE
        with pytest.raises(FileLongerThanListed, match="which the Hub lists at 4,096 bytes"):
            get_session().get(f"{gzipping_server}/longer").read()


class _Redirecting(QuietHandler):
    """The Hub's answer for an LFS file: 302 to its storage, with a body ("Found. Redirecting
    to <signed URL>") that is longer than a small file."""

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/resolve/main/tiny.parquet":
            where = f"http://{self.headers['Host']}/storage/tiny.parquet?X-Amz-Signature={'0' * 600}"
            body, status = f"Found. Redirecting to {where}".encode(), 302
        else:
            body, status, where = FILE[:100], 200, None
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if where else "application/octet-stream")
        if where:
            self.send_header("Location", where)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_redirect_to_the_storage_is_not_held_to_the_files_size():
    """Only the file's own body is held: the redirect's text before it is not the file."""
    from huggingface_hub.utils import get_session

    from hubpress.targets import hub_http

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hub_http.install()
        url = f"http://127.0.0.1:{server.server_address[1]}/resolve/main/tiny.parquet"
        with listed_size(100, "tiny.parquet of dataset a/b"):
            assert get_session().get(url).content == FILE[:100]
    finally:
        server.shutdown()
        server.server_close()
