"""HashCache.under finds exactly the entries whose URI starts with the prefix, whichever way it
reads them: through the key's index (a cache holding other trees too) or the whole table in its
own order (a cache holding mostly this tree)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.storage.hashcache import HashCache

SEGMENTS = st.sampled_from(["r", "r0", "r-x", "q", "é", "a b", "r.", "s"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(SEGMENTS, min_size=1, max_size=3).map(lambda p: "/" + "/".join(p)), max_size=30, unique=True
    ),
    st.lists(SEGMENTS, min_size=1, max_size=2).map(lambda p: "/" + "/".join(p) + "/"),
)
def test_under_is_the_prefix_whichever_way_it_reads(uris, prefix):
    with tempfile.TemporaryDirectory() as tmp:
        cache = HashCache(Path(tmp) / "c.sqlite")
        cache.put_many([(uri, n, "v", f"{n:064x}", {"n": n % 2}) for n, uri in enumerate(uris)])
        cache.put_many([(uri, 99, "w", None, None) for uri in uris[:3]])  # new versions replace rows
        expected = {}
        for n, uri in enumerate(uris):
            expected[uri] = (uri, n, "v", f"{n:064x}", {"n": n % 2})
        for uri in uris[:3]:
            expected[uri] = (uri, 99, "w", None, None)
        got = sorted(cache.under(prefix), key=lambda row: row[0])
        assert got == sorted(
            (row for uri, row in expected.items() if uri.startswith(prefix)), key=lambda r: r[0]
        )


def test_a_cache_that_is_mostly_the_tree_is_read_whole(tmp_path):
    cache = HashCache(tmp_path / "c.sqlite")
    cache.put_many([(f"/t/{n}", 1, "v", None, None) for n in range(10)] + [("/other/x", 1, "v", None, None)])
    assert sorted(uri for uri, *_ in cache.under("/t/")) == sorted(f"/t/{n}" for n in range(10))
    assert [uri for uri, *_ in cache.under("/other/")] == ["/other/x"]
