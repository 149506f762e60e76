"""Discovery of plain CSV rows over a Listing's columns (csv_layout._CsvRows._read_plain_columns,
one loop with no call per row but the FileRefs' and the Sample's) finds what the checked path
finds over the same files as a list, row for row, problem for problem: any columns (control_N,
id, mask), short rows, cells that are not plain or not listed, files held whole."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.sources import csv_layout
from hubpress.sources.csv_layout import discover_csv
from hubpress.storage.files import ListedFile
from hubpress.storage.listing import Listing
from tests.sources.test_csv_plain_rows import sources


def _as_columns(listing: list[ListedFile], whole: list[bool]) -> Listing:
    """The listing held as columns, as a local one is; the entries `whole` says held whole."""
    columns = Listing()
    for lf, held_whole in zip(listing, whole, strict=False):
        mtime, _, ctime = lf.version.partition("+")
        if held_whole:
            columns.append(lf)
        else:
            stat = SimpleNamespace(
                st_size=lf.size, st_mtime_ns=int(mtime), st_ctime_ns=int(ctime), st_ino=lf.inode
            )
            columns.append_stat(lf.relpath, stat)
    for lf in listing[len(whole) :]:
        columns.append(lf)
    return columns


def _checked(listing: list[ListedFile], text: str, monkeypatch: pytest.MonkeyPatch):
    with monkeypatch.context() as patch:
        patch.setattr(csv_layout._CsvRows, "plain_sample", lambda self, rowno, row: None)
        return discover_csv(listing, root="/r/", csv_texts={"train": text})


@settings(max_examples=300, deadline=None)
@given(sources(), st.lists(st.booleans(), max_size=8), st.sampled_from(["", "\n", "\n\n", " , ,\n"]))
def test_rows_over_columns_are_found_as_checked_rows_are(source, whole, tail):
    listing, text = source
    text += tail  # blank rows, and a row of blank cells
    with pytest.MonkeyPatch.context() as monkeypatch:
        checked = _checked(listing, text, monkeypatch)
    assert discover_csv(_as_columns(listing, whole), root="/r/", csv_texts={"train": text}) == checked


def test_plain_rows_over_columns_take_the_loop(monkeypatch):
    """No row of a plain CSV over columns is looked at by checked_sample (nor plain_sample)."""
    files = [ListedFile(f"t/{i}.png", 5, "1+2", 10 + i) for i in range(3)]
    files += [ListedFile(f"c/{i}.png", 6, "3+4", 20 + i) for i in range(3)]
    files.append(ListedFile("train.csv", 1, "1+1", 1))
    text = "image,control,control_1,prompt\n" + "".join(f"t/{i}.png,c/{i}.png,,p{i} \n" for i in range(3))
    expected = _checked(files, text, monkeypatch)

    def refused(*args):
        raise AssertionError("a plain row left the loop")

    monkeypatch.setattr(csv_layout._CsvRows, "checked_sample", refused)
    monkeypatch.setattr(csv_layout._CsvRows, "plain_sample", refused)
    found = discover_csv(_as_columns(files, [False] * len(files)), root="/r/", csv_texts={"train": text})
    assert found == expected
    assert [(s.id, s.prompt, s.target.version, s.controls[0].uri) for s in found.samples["train"]] == [
        (f"{i}", f"p{i}", f"1+2:{10 + i}", f"/r/c/{i}.png") for i in range(3)
    ]


def test_names_without_an_image_extension_are_their_own_ids_as_on_the_checked_path(monkeypatch):
    files = [
        ListedFile(rel, 5, "1+2", 10 + n)
        for n, rel in enumerate(["t/f.txt", "t/g", "t/h.tar.PNG", "c/a.png"])
    ]
    files.append(ListedFile("train.csv", 1, "1+1", 1))
    text = "image,control,prompt\nt/f.txt,c/a.png,x\nt/g,c/a.png,y\nt/h.tar.PNG,c/a.png,z\n"
    found = discover_csv(_as_columns(files, [False] * len(files)), root="/r/", csv_texts={"train": text})
    assert found == _checked(files, text, monkeypatch)
    assert [s.id for s in found.samples["train"]] == ["f.txt", "g", "h.tar"]


def test_a_single_control_is_held_in_a_list_of_its_size():
    """A list filled by append keeps room for four: 24 bytes a sample at discovery's and
    validation's peaks (24 MB at a million samples). One control's list is made at its size, as
    the decision's kept sample's is; two controls are kept in their order."""
    import sys

    files = [
        ListedFile(f"{d}/{i}.png", 5, "1+2", 10 + n * 3 + i) for n, d in enumerate("tcd") for i in range(3)
    ]
    files.append(ListedFile("train.csv", 1, "1+1", 1))
    text = (
        "image,control,control_1,prompt\nt/0.png,c/0.png,,p\nt/1.png,c/1.png,d/1.png,q\nt/2.png,,d/2.png,r\n"
    )
    found = discover_csv(_as_columns(files, [False] * len(files)), root="/r/", csv_texts={"train": text})
    samples = found.samples["train"]
    assert [[c.relpath for c in s.controls] for s in samples] == [
        ["c/0.png"],
        ["c/1.png", "d/1.png"],
        ["d/2.png"],
    ]
    for s in (samples[0], samples[2]):
        assert sys.getsizeof(s.controls) == sys.getsizeof([s.controls[0]])


@settings(max_examples=300, deadline=None)
@given(sources(), st.lists(st.booleans(), max_size=8), st.integers(0, 3), st.booleans())
def test_a_listing_in_relpath_order_is_searched_as_the_dict_is(source, whole, searches, repeat):
    """Over a listing in relpath order, each cell is looked for after the file its column named
    last, then by bisection (at most `searches` times), then in the dict of every relpath: the
    samples and problems found are the checked path's, whatever the rows' order."""
    listing, text = source
    listing = sorted(listing, key=lambda lf: lf.relpath)
    if repeat:  # rows again, so that a column's next cell is often its listed file's neighbour
        text += text.partition("\n")[2]
    with pytest.MonkeyPatch.context() as monkeypatch:
        checked = _checked(listing, text, monkeypatch)
        monkeypatch.setattr(csv_layout, "BISECT_AT_MOST", searches)
        found = discover_csv(_as_columns(listing, whole), root="/r/", csv_texts={"train": text})
    assert found == checked


def test_a_csv_in_the_listing_order_needs_no_dict_of_every_relpath(monkeypatch):
    """The dict of every relpath was about 100 bytes a sample at discovery's peak: a CSV naming
    a listing in order (new rows out of order at its end, a file not listed, an odd cell) is read
    without it."""
    files = [ListedFile(f"train/{d}/{i:03d}.png", 5, "1+2", 10 + i) for d in ("c", "t") for i in range(200)]
    files.insert(0, ListedFile("train.csv", 1, "1+1", 1))
    rows = [f"train/t/{i:03d}.png,train/c/{i:03d}.png,p{i}\n" for i in range(3, 200)]
    rows += [f"train/t/{i:03d}.png,train/c/{i:03d}.png,p{i}\n" for i in range(3)]  # appended
    rows += ["train/t/404.png,train/c/000.png,gone\n", " train/t/001.png,train/c/001.png,odd\n"]
    text = "image,control,prompt\n" + "".join(rows)
    expected = _checked(files, text, monkeypatch)

    def refused(self):
        raise AssertionError("a dict of every relpath was made")

    monkeypatch.setattr(Listing, "positions", refused)
    found = discover_csv(_as_columns(files, [False] * len(files)), root="/r/", csv_texts={"train": text})
    assert found == expected
    assert len(found.samples["train"]) == 202 and found.problems
