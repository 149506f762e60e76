"""listing_digest sorts its lines, not the files: for every listing with unique relpaths (every
real one) the digest is the one of the files in relpath order, and for any listing, duplicates
included, it does not depend on the listing's order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.shards.published import listing_digest
from hubpress.storage.files import UNLISTED, ListedFile
from tests.shards.test_listing_digest import _line_by_line

NAMES = st.text(
    alphabet=st.sampled_from(["a", "b", "/", ".", "-", "0", " ", "é", "\udce9", "\x01", "~", "ÿ"]),
    min_size=1,
    max_size=6,
)
FILES = st.builds(
    ListedFile,
    NAMES,
    st.sampled_from([0, 1, 10, 1000, UNLISTED]),
    st.sampled_from(["1+1", "2+2", "etag", "is a symbolic link to nothing (dangling)"]),
    st.none() | st.integers(0, 99),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(FILES, max_size=12, unique_by=lambda lf: lf.relpath))
def test_unique_relpaths_digest_in_relpath_order(listing):
    assert listing_digest(listing, {"o": 1}) == _line_by_line(listing, {"o": 1})


@settings(max_examples=200, deadline=None)
@given(st.lists(FILES, max_size=12), st.randoms(use_true_random=False))
def test_the_order_of_a_listing_does_not_matter(listing, random):
    shuffled = list(listing)
    random.shuffle(shuffled)
    assert listing_digest(shuffled, {}) == listing_digest(listing, {})
