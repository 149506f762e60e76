"""listing_digest hashes its lines in batches: the digest is the one of a line per update."""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

import hubpress
from hubpress.shards import published
from hubpress.shards.published import LINES_PER_UPDATE, RECORD_FORMAT, listing_digest
from hubpress.storage.files import ListedFile
from hubpress.storage.hashcache import stat_version
from hubpress.storage.listing import Listing


def _line_by_line(listing: list[ListedFile], options: dict) -> str:
    """The digest as one update per file, in relpath order (how it was first written)."""
    digest = hashlib.sha256()
    head = ["hubpress-listing", RECORD_FORMAT, hubpress.__version__, dict(options)]
    digest.update(json.dumps(head, sort_keys=True, default=str).encode() + b"\n")
    for lf in sorted(listing, key=lambda lf: lf.relpath):
        line = f"{lf.relpath}\0{lf.size}\0{lf.version}\0{lf.inode}\n"
        digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


def test_digest_over_several_batches_equals_a_line_per_update():
    count = 2 * LINES_PER_UPDATE + 7
    listing = [ListedFile(f"train/{n:06d}.png", n, f"{n}+{n}", n) for n in reversed(range(count))]
    listing.append(ListedFile("train/caf\udce9.png", 3, "etag-1"))  # not UTF-8: surrogate-escaped
    options = {"max_shard_size": "500MB"}
    assert listing_digest(listing, options) == _line_by_line(listing, options)
    assert listing_digest(listing[:3], options) == _line_by_line(listing[:3], options)
    assert listing_digest([], options) == _line_by_line([], options)
    changed = [*listing[:-1], ListedFile("train/caf\udce9.png", 4, "etag-1")]
    assert listing_digest(changed, options) != listing_digest(listing, options)


# A local listing (hubpress.storage.listing.Listing) in relpath order, as a local listing is made,
# is read a slice of its columns at a time: any entries, held as columns or whole (an unlisted
# entry, numbers that do not fit a column), cut into batches anywhere, give the digest of a line
# per file.
_stats = st.builds(
    SimpleNamespace,
    st_size=st.integers(0, 2**63 - 1) | st.integers(2**63, 2**64),
    st_mtime_ns=st.integers(-(2**63) + 1, 2**63 - 1),
    st_ctime_ns=st.integers(-(2**63) + 1, 2**63 - 1) | st.integers(2**63, 2**64),
    st_ino=st.integers(0, 2**63 - 1),
)
_relpaths = st.sampled_from(["a.png", "train/a.png", "train/b.png", "train/caf\udce9.png", "train.csv", "z"])
_whole = st.builds(
    ListedFile,
    _relpaths,
    st.integers(0, 10**6),
    st.sampled_from(["etag", "1+2"]),
    st.none() | st.integers(0, 9),
)
_entries = st.lists(st.tuples(_relpaths, _stats) | _whole, max_size=14)


@settings(max_examples=300, deadline=None)
@given(_entries, st.integers(1, 5), st.booleans())
def test_a_listing_in_relpath_order_digests_as_a_line_per_file(entries, batch, in_order):
    drawn = sorted(entries, key=_relpath_of) if in_order else entries
    listing, plain = Listing(), []
    for entry in drawn:
        if isinstance(entry, ListedFile):
            listing.append(entry)
            plain.append(entry)
        else:
            relpath, st_ = entry
            listing.append_stat(relpath, st_)
            plain.append(ListedFile(relpath, st_.st_size, stat_version(st_), st_.st_ino))
    options = {"layout": "csv"}
    with _batches_of(batch):
        assert listing_digest(listing, options) == _line_by_line(plain, options)


def _relpath_of(entry) -> str:
    return entry.relpath if isinstance(entry, ListedFile) else entry[0]


@contextmanager
def _batches_of(lines: int):
    """listing_digest with batches of `lines` lines, so a few entries cross batches."""
    was = published.LINES_PER_UPDATE
    published.LINES_PER_UPDATE = lines
    try:
        yield
    finally:
        published.LINES_PER_UPDATE = was
