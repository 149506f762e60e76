"""An upstream listed at its pinned commit holds every later download of its files to the listed
sizes (hubpress.refresh.upstream_listing), found by the resolve URL's path. A Hub endpoint with a
path of its own (`HF_ENDPOINT=https://artifactory.example/api/huggingfaceml/hf-remote`, a mirror
behind a reverse proxy's prefix) puts that path before `/datasets/...`: the lookup missed, and
downloads through such an endpoint were held to nothing but their deadline."""

from __future__ import annotations

import httpx2

from hubpress.targets.listed_sizes import file_limit, remember_listing

SHA = "a" * 40


def test_a_listed_file_is_held_through_an_endpoint_with_a_path():
    endpoint = "http://mirror.invalid/api/huggingfaceml/hf-remote"
    remember_listing("dataset", "org/upstream", SHA, {"data/a.jsonl": 1234}, endpoint=endpoint)
    request = httpx2.Request("GET", f"{endpoint}/datasets/org/upstream/resolve/{SHA}/data/a.jsonl")
    limit = file_limit(request)
    assert limit is not None and limit[0] == 1234
    # Without a path, as before.
    remember_listing("dataset", "org/plain", SHA, {"b.json": 7}, endpoint="http://hub.invalid")
    assert (
        file_limit(httpx2.Request("GET", f"http://hub.invalid/datasets/org/plain/resolve/{SHA}/b.json"))[0]
        == 7
    )
