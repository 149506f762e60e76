"""A listed S3 object read by its ETag on a store whose If-Match is broken.

hubpress reads a listed object with If-Match: its ETag (hubpress.storage.s3.S3Storage.read_listed),
so one written over since the listing is not read. Some S3-compatible stores answer 412 to an
If-Match that does hold (SeaweedFS 3.97 for every object, seaweedfs/seaweedfs#7274; stores that
compare the quoted and the unquoted ETag, adobe/S3Mock#2665): every listed read was then refused as
"written over since", on every run. The store's own answer without the condition says which it is:
its ETag is the listed one (read), or not (refused, as before). The answers come from a small
S3-speaking server (real botocore, no patching): moto's If-Match is right."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hubpress.settings import Settings
from hubpress.storage.files import ListedFile
from hubpress.storage.listed_reads import NotTheListedFile
from hubpress.storage.s3 import S3Storage

OBJECTS = {"/b/src/train.csv": (b"a,b\n1,2\n", "e1")}


class _BrokenIfMatch(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        body, etag = OBJECTS[self.path]
        if self.headers.get("If-Match") is not None:  # whatever it names: 412
            error = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code>'
                b"<Message>At least one of the pre-conditions you specified did not hold</Message></Error>"
            )
            self.send_response(412)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(error)))
            self.end_headers()
            self.wfile.write(error)
            return
        self.send_response(200)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def broken_if_match(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BrokenIfMatch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HUBPRESS_S3_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("HUBPRESS_S3_MAX_ATTEMPTS", "1")
    yield
    server.shutdown()
    server.server_close()


def test_an_unchanged_object_is_read_where_the_store_refuses_every_if_match(broken_if_match):
    storage = S3Storage("s3://b/src", Settings())
    assert storage.read_listed(ListedFile("train.csv", 8, "e1")) == b"a,b\n1,2\n"


def test_an_object_written_over_is_still_refused_there(broken_if_match):
    storage = S3Storage("s3://b/src", Settings())
    with pytest.raises(NotTheListedFile, match="written over since"):
        storage.read_listed(ListedFile("train.csv", 8, "e0"))
