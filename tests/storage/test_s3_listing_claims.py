"""An S3 listing that names keys it was not asked for: ListObjectsV2 over `stage/` answered with
`other/secret.bin` and `stagex/evil.bin` beside `stage/ok.bin`. Cut to a relative path, such a key
named another object of the prefix (`other/secret.bin` became `secret.bin`, read as
`stage/secret.bin`, and `stagex/evil.bin` became `/evil.bin`); now it is left out, and reported where the caller reports what it could not
list. `stage/../x` stays for the name gate to refuse. The answers come from a small S3-speaking
server (real botocore, no patching): moto never answers keys outside the prefix. A listing whose
pages never end (the same key again, or empty pages, each with a new token) is stopped in one line."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import pytest

from hubpress.errors import SourceError
from hubpress.settings import Settings
from hubpress.storage.files import UNLISTED
from hubpress.storage.s3 import S3Storage

KEYS = ["other/secret.bin", "stage/../x.bin", "stage/ok.bin", "stagex/evil.bin"]  # in S3 order


class _Listing(BaseHTTPRequestHandler):
    keys: list[str] = KEYS
    truncated = False  # True: every page names a next one, with a new token (a listing without end)
    pages = 0

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).pages += 1
        contents = "".join(
            f"<Contents><Key>{escape(key)}</Key><Size>3</Size><ETag>&quot;e{i}&quot;</ETag></Contents>"
            for i, key in enumerate(self.keys)
        )
        more = f"<NextContinuationToken>t{self.pages}</NextContinuationToken>" if self.truncated else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><Prefix>stage/</Prefix>'
            f"<KeyCount>{len(self.keys)}</KeyCount><MaxKeys>1000</MaxKeys>"
            f"<IsTruncated>{str(self.truncated).lower()}</IsTruncated>{more}{contents}</ListBucketResult>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def lying_s3(monkeypatch):
    handler = type("Listing", (_Listing,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HUBPRESS_S3_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    yield handler
    server.shutdown()
    server.server_close()


def test_keys_outside_the_listed_prefix_are_left_out_and_reported(lying_s3):
    storage = S3Storage("s3://b/stage", Settings())
    assert [f.relpath for f in storage.list()] == ["../x.bin", "ok.bin"]
    reported = {f.relpath: f.version for f in storage.list(report_unlisted=True) if f.size == UNLISTED}
    assert set(reported) == {"other/secret.bin", "stagex/evil.bin"}
    assert all("outside the prefix" in why for why in reported.values())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("keys", [["stage/a.bin"], []], ids=["the-same-key-again", "empty-pages"])
def test_a_listing_that_never_ends_is_stopped_in_one_line(lying_s3, keys):
    """Each page names a next one with a new token (botocore stops only a token repeated at once):
    the same key again, or no key at all. Before, the listing went on for ever."""
    lying_s3.keys, lying_s3.truncated = keys, True
    storage = S3Storage("s3://b/stage", Settings())
    with pytest.raises(SourceError, match="never end"):
        list(storage.list())
    assert lying_s3.pages <= 102


def test_a_listing_out_of_lexicographic_order_is_read_whole(lying_s3):
    """S3 Express One Zone directory buckets (and stores that list by upload time) answer
    ListObjectsV2 in no lexicographic order: each key once, honestly. Such a listing was refused
    as one that "would never end"; only a key named again is."""
    lying_s3.keys = ["stage/b.bin", "stage/a.bin", "stage/c/z.bin", "stage/c.bin"]
    storage = S3Storage("s3://b/stage", Settings())
    assert [f.relpath for f in storage.list()] == ["b.bin", "a.bin", "c/z.bin", "c.bin"]


@pytest.mark.timeout(120)
def test_an_unordered_listing_that_repeats_is_stopped(lying_s3):
    """Out of order and naming the same keys on every page, each with a new token: stopped at the
    first key named again (ascending order cannot be what ends it here)."""
    lying_s3.keys, lying_s3.truncated = ["stage/b.bin", "stage/a.bin"], True
    storage = S3Storage("s3://b/stage", Settings())
    with pytest.raises(SourceError, match="never end"):
        list(storage.list())
    assert lying_s3.pages == 2
