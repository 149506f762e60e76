"""listing_digest hashes its lines in batches: the digest is the one of a line per update, whether
the lines are written per file or, for a large local listing, by Arrow from its columns."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
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


# --- a large local listing is digested by Arrow from its columns (published._column_texts) -------

names = st.sampled_from(
    ["a.png", "b.png", "B.png", "é.png", "\uffff.png", "\U0001f600.png", "\ue000.png", "a b.png", "a\x7f"]
)
folders = st.sampled_from(["", "train/", "train/img/", "tráin/", "train/\U00010000/"])
relpaths = st.builds(lambda folder, name: folder + name, folders, names)
stats = st.builds(
    SimpleNamespace,
    st_size=st.integers(0, 2**63 - 1) | st.integers(2**63, 2**64),
    st_mtime_ns=st.integers(-(2**63) + 1, 2**63 - 1),
    st_ctime_ns=st.integers(-(2**63) + 1, 2**63 - 1),
    st_ino=st.integers(0, 2**63 - 1),
)
# An entry from its stat (held as columns, or whole if a number does not fit), or held whole as
# given: an unlisted entry's reason for a version, an inode of None.
whole = st.builds(
    ListedFile,
    relpaths,
    st.integers(-1, 10**6),
    st.sampled_from(["1+2", "etag", "is not a regular file"]),
    st.none() | st.integers(-1, 10**6),
)
entries = st.lists(
    st.tuples(st.just("stat"), relpaths, stats) | st.tuples(st.just("whole"), whole), max_size=40
)


@pytest.fixture
def arrow_from_the_first_file(monkeypatch):
    """Every Listing digested by Arrow, in batches of 3 lines (the same bytes whatever the cut)."""
    monkeypatch.setattr(published, "ARROW_FROM", 0)
    monkeypatch.setattr(published, "ROWS_PER_BATCH", 3)


def _both(drawn) -> tuple[Listing, list[ListedFile]]:
    listing, plain = Listing(), []
    for kind, *rest in drawn:
        if kind == "stat":
            relpath, st_ = rest
            listing.append_stat(relpath, st_)
            plain.append(ListedFile(relpath, st_.st_size, stat_version(st_), st_.st_ino))
        else:
            listing.append(rest[0])
            plain.append(rest[0])
    return listing, plain


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=entries)
def test_arrow_digest_is_the_line_by_line_digest(arrow_from_the_first_file, drawn):
    # Names across code point ranges (2, 3 and 4 UTF-8 bytes; U+FFFF against U+10000 and U+E000),
    # the same relpath listed twice with other sizes (a stable sort keeps listing order), entries
    # held whole among the columns, and numbers that do not fit a column.
    listing, plain = _both(drawn)
    options = {"max_shard_size": "500MB"}
    assert published._column_texts(listing) is not None
    assert listing_digest(listing, options) == _line_by_line(plain, options)


def test_arrow_digest_of_a_name_not_utf8_takes_the_line_by_line_path(arrow_from_the_first_file):
    # A surrogate-escaped name sorts by code point in Python and by byte in Arrow: not Arrow's.
    listing, plain = _both(
        [("stat", "train/\udce9.png", SimpleNamespace(st_size=1, st_mtime_ns=2, st_ctime_ns=3, st_ino=4))]
        + [
            (
                "stat",
                "train/\U0001f600.png",
                SimpleNamespace(st_size=1, st_mtime_ns=2, st_ctime_ns=3, st_ino=5),
            )
        ]
    )
    assert published._column_texts(listing) is None
    assert listing_digest(listing, {}) == _line_by_line(plain, {})
