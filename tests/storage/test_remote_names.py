"""What a remote names passes the name gate: paths in listings and manifests (their percent-decoded
form too), commit ids and URLs in Hub answers. Property tests over generated names and the
hostile spellings the third hostile round tried."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.storage import names

ENDPOINT = "http://127.0.0.1:5000"
SEGMENTS = st.sampled_from(["a", "data", "x.parquet", "..", ".", "", "%2e%2e", "%2E%2e", "%2f", "\\", "~"])


@settings(max_examples=300, deadline=None)
@given(name=st.lists(SEGMENTS, min_size=1, max_size=6).map("/".join))
def test_an_accepted_remote_path_never_leaves_its_root_even_decoded(name):
    try:
        rel = names.remote_path(name, what="listed file")
    except names.UnsafeNameError as exc:
        assert "\n" not in str(exc)
        return
    for form in (rel, unquote(rel)):
        parts = form.split("/")
        assert ".." not in parts and not form.startswith("/") and "\\" not in form


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example/alice/x/commit/1",
        f"http://user:pw@{ENDPOINT.removeprefix('http://')}/x",
        "https://127.0.0.1:5000/x",  # another scheme: another origin
        "http://127.0.0.1:5001/x",  # another port
        "/alice/../../admin",
        "/alice/%2e%2e/%2e%2e/admin",
        "/a\\b",
        "http://127.0.0.1:5000/x\nSet-Cookie: a=b",
        "",
    ],
)
def test_a_hub_answer_url_off_the_endpoint_is_not_kept(url):
    assert names.answer_url(url, ENDPOINT) is None


def test_a_hub_answer_url_on_the_endpoint_is_kept_and_made_absolute():
    assert names.answer_url("/alice/x/commit/ab", ENDPOINT) == f"{ENDPOINT}/alice/x/commit/ab"
    assert names.answer_url(f"{ENDPOINT}/alice/x", ENDPOINT) == f"{ENDPOINT}/alice/x"


@pytest.mark.parametrize("oid", ["../x", "main", "A" * 40, "a" * 39, "a" * 41, "a" * 40 + "\n", None, 7])
def test_an_answered_commit_id_must_be_one(oid):
    with pytest.raises(names.UnsafeNameError):
        names.commit_id(oid)
    assert names.commit_id("0123456789abcdef" * 2 + "01234567") == "0123456789abcdef" * 2 + "01234567"


def test_a_cache_key_with_a_trailing_newline_is_refused():
    with pytest.raises(names.UnsafeNameError):
        names.cache_key("backend\n")
