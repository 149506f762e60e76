"""A local listing is held as columns (hubpress.storage.listing.Listing), not as a ListedFile per
file: it must read, compare, slice and pickle as the list of ListedFile it replaces, and what is
made from it (the listing digest, discovery's samples and problems, the CSV texts read) must be
what the list gives, for any entries: files from a stat, unlisted entries, names that are not
plain, not UTF-8 or refused, the same relpath twice."""

from __future__ import annotations

import os
import pickle
from array import array
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.shards.published import listing_digest
from hubpress.sources.discovery import discover
from hubpress.storage.files import UNLISTED, ListedFile, LocalStorage
from hubpress.storage.hashcache import stat_version
from hubpress.storage.listing import Listing, named, relpaths_of

names = st.sampled_from(
    ["a.png", "b.png", "c.jpg", "a_mask.png", ".hidden.png", "sp ace.png", "x\udcff.png", "..", "d"]
)
folders = st.sampled_from(["", "train/", "train/img/", "test/", "train//"])
relpaths = st.builds(lambda folder, name: folder + name, folders, names) | st.sampled_from(
    ["train.csv", "test.csv"]
)
stats = st.builds(
    SimpleNamespace,
    st_size=st.integers(0, 2**63 - 1) | st.integers(2**63, 2**64),
    st_mtime_ns=st.integers(-(2**63) + 1, 2**63 - 1) | st.integers(2**63, 2**65),
    st_ctime_ns=st.integers(-(2**63) + 1, 2**63 - 1),
    st_ino=st.integers(0, 2**63 - 1) | st.integers(2**63, 2**64 - 1),
)
# Entries as a listing is given them: a file from its stat, or a ListedFile (an unlisted entry,
# an S3 object, anything a caller appends).
from_stat = st.tuples(st.just("stat"), relpaths, stats)
given_whole = st.tuples(
    st.just("whole"),
    st.builds(
        ListedFile,
        relpaths,
        st.integers(-1, 10**6),
        st.sampled_from(["1+2", "etag", "is not a regular file", "is a symbolic link to nothing (dangling)"]),
        st.none() | st.integers(-1, 10**6),
    ),
)
entries = st.lists(from_stat | given_whole, max_size=12)


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


@settings(max_examples=300, deadline=None)
@given(entries, st.integers(-15, 15), st.integers(-15, 15), st.sampled_from([None, 1, 2, -1]))
def test_reads_compares_and_pickles_as_the_list(drawn, i, j, step):
    listing, plain = _both(drawn)
    assert len(listing) == len(plain)
    assert list(listing) == plain
    assert listing == plain and plain == listing
    assert listing != plain + [ListedFile("z", 1, "v")]
    assert repr(listing) == repr(plain)
    assert listing[i:j:step] == plain[i:j:step]
    if -len(plain) <= i < len(plain):
        assert listing[i] == plain[i]
    else:
        with pytest.raises(IndexError):
            listing[i]
    again = pickle.loads(pickle.dumps(listing))
    assert isinstance(again, Listing) and list(again) == plain
    assert list(relpaths_of(listing)) == [lf.relpath for lf in plain]
    wanted = ["train.csv", "a.png"]
    assert named(listing, wanted) == named(plain, wanted) == [lf for lf in plain if lf.relpath in wanted]


@settings(max_examples=300, deadline=None)
@given(entries)
def test_listing_digest_is_the_lists(drawn):
    listing, plain = _both(drawn)
    options = {"layout": "csv"}
    assert listing_digest(listing, options) == listing_digest(plain, options)


cells = st.sampled_from(
    [
        "train/a.png",
        "train/b.png",
        "train/img/c.jpg",
        "train/a",
        " train/a.png",
        "train/img/x.png",
        "",
        "../a.png",
    ]
)
rows = st.lists(st.tuples(cells, cells, st.sampled_from(["brighter", ""])), max_size=6)


@settings(max_examples=300, deadline=None)
@given(entries, rows, st.booleans(), st.lists(stats, min_size=3, max_size=3))
def test_discovery_finds_what_the_list_gives(drawn, csv_rows, with_mask_column, cell_stats):
    # The files most cells name are listed too (from a stat): rows whose paths are all plain and
    # listed take discovery's fast path (csv_layout.plain_sample).
    files = ["train/a.png", "train/b.png", "train/img/c.jpg"]
    listing, plain = _both(
        [*drawn, *(("stat", rel, st_) for rel, st_ in zip(files, cell_stats, strict=True))]
    )
    listing.append_stat("train.csv", SimpleNamespace(st_size=10, st_mtime_ns=1, st_ctime_ns=2, st_ino=3))
    plain.append(ListedFile("train.csv", 10, "1+2", 3))
    header = "image,control,prompt" + (",mask" if with_mask_column else "")
    text = "\n".join(
        [header, *(",".join(row) + (",train/a_mask.png" if with_mask_column else "") for row in csv_rows)]
    )
    texts = {"train": text}
    for layout in ("csv", "folder"):
        assert _found(listing, layout, texts) == _found(plain, layout, texts)


def _found(listing, layout: str, texts: dict[str, str]):
    """What discovery makes of the listing, or the error it raises (its type and message)."""
    try:
        return discover(listing, root="/data", layout=layout, csv_texts=texts)
    except Exception as exc:  # noqa: BLE001 - the same error either way is the point
        return type(exc), str(exc)


def test_a_local_listing_is_what_list_gives(tmp_path):
    """Files, a file link, a dangling link, a looping link and a FIFO: the columns and the
    entries held whole come out as list() gives them, in its order."""
    (tmp_path / "train" / "img").mkdir(parents=True)
    for name in ("a.png", "b.png", "img/c.png"):
        (tmp_path / "train" / name).write_bytes(b"x" * len(name))
    (tmp_path / "train.csv").write_text("image,control,prompt\n")
    os.symlink(tmp_path / "train" / "a.png", tmp_path / "train" / "link.png")
    os.symlink(tmp_path / "nowhere", tmp_path / "train" / "dangling.png")
    os.symlink(tmp_path / "train" / "loop", tmp_path / "train" / "loop")
    os.mkfifo(tmp_path / "train" / "fifo.png")
    storage = LocalStorage(str(tmp_path))
    listed = list(storage.list(report_unlisted=True))
    assert any(lf.size == UNLISTED for lf in listed)
    assert storage.listing(report_unlisted=True) == listed
    assert list(storage.listing()) == list(storage.list())


@settings(max_examples=200, deadline=None)
@given(entries)
def test_names_left_out_leave_a_listing_held_as_columns(drawn):
    """A listing with a name the gate refuses (not UTF-8, `..`, an unlisted entry) keeps the rest
    as columns: one such name among a million files made the whole listing a ListedFile each again
    (the 450 MB the columns save), for all of discovery."""
    from hubpress.sources.discovery import _split_undecodable_names

    listing, plain = _both(drawn)
    kept, problems = _split_undecodable_names(listing)
    kept_plain, problems_plain = _split_undecodable_names(plain)
    assert isinstance(kept, Listing)
    assert list(kept) == list(kept_plain) and problems == problems_plain
    assert pickle.loads(pickle.dumps(kept)) == kept_plain


edge_stats = st.builds(
    SimpleNamespace,
    st_size=st.integers(0, 2**63 - 1) | st.integers(2**63, 2**64) | st.just(0),
    st_mtime_ns=st.integers(-(2**63), 2**63 - 1) | st.sampled_from([-(2**63), -(2**63) + 1, 2**63]),
    st_ctime_ns=st.integers(-(2**63), 2**63 - 1) | st.sampled_from([-(2**63), 2**64]),
    st_ino=st.integers(0, 2**63 - 1) | st.integers(2**63, 2**64 - 1),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(from_stat | given_whole, max_size=4),
    folders,
    st.lists(st.tuples(names, edge_stats), max_size=8),
)
def test_files_added_a_folder_at_a_time_are_held_as_files_added_one_by_one(drawn, folder, files):
    """extend_stats (the listing's few thousand files at a time) holds what append_stat holds
    for each file in turn: the same entries, columns, entries held whole, pickles."""
    at_once, one_by_one = _both(drawn)[0], _both(drawn)[0]
    at_once.extend_stats(folder, [name for name, _ in files], [st_ for _, st_ in files])
    for name, st_ in files:
        one_by_one.append_stat(folder + name, st_)
    assert list(at_once) == list(one_by_one)
    assert at_once.columns() == one_by_one.columns()
    assert at_once.held_whole_at() == one_by_one.held_whole_at()
    assert pickle.loads(pickle.dumps(at_once)) == one_by_one


# Mostly what a stat gives (numbers >= 0), with every edge of the columns' range now and then.
_stat_number = st.integers(0, 2**62)
int64 = st.one_of(
    _stat_number,
    _stat_number,
    _stat_number,
    st.sampled_from([-(2**63), -(2**63) + 1, -1, 0, 2**63 - 1]),
    st.integers(-(2**63), -1),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(from_stat | given_whole, max_size=4),
    folders,
    st.lists(st.tuples(names, int64, int64, int64, int64), max_size=8),
)
def test_files_added_as_columns_are_held_as_files_added_one_by_one(drawn, folder, files):
    """extend_columns (the columns the listing's second process sends) holds what append_stat
    holds for each file in turn, for any int64 in any column."""
    as_columns, one_by_one = _both(drawn)[0], _both(drawn)[0]
    as_columns.extend_columns(
        folder,
        [name for name, *_ in files],
        *(array("q", [numbers[k] for _, *numbers in files]) for k in range(4)),
    )
    for name, size, mtime, ctime, inode in files:
        one_by_one.append_stat(
            folder + name, SimpleNamespace(st_size=size, st_mtime_ns=mtime, st_ctime_ns=ctime, st_ino=inode)
        )
    assert list(as_columns) == list(one_by_one)
    assert as_columns.columns() == one_by_one.columns()
    assert as_columns.held_whole_at() == one_by_one.held_whole_at()
    assert pickle.loads(pickle.dumps(as_columns)) == one_by_one
