"""Discovery's fast path for plain CSV rows (csv_layout._CsvRows.plain_sample) finds what the
checked path finds, row for row, problem for problem, on random small sources."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.sources import csv_layout
from hubpress.sources.csv_layout import discover_csv
from hubpress.storage.files import ListedFile

# t/f.txt and t/g: listed files whose names have no image extension (a sample id is then the
# whole name)
FILES = ["t/a.png", "t/b.png", "c/a.png", "c/b.jpg", "c/b_mask.png", "t/d.PNG", "x y/e.png", "t/f.txt", "t/g"]
CELLS = [
    "t/a.png",
    "t/b.png",
    "c/a.png",
    "c/b.jpg",
    "./c/a.png",
    "c\\a.png",
    "t/zz.png",
    "c/b.png",
    "",
    " t/a.png ",
    " ",
    "t/a.png\t",
    "t/a.png\xa0",  # NBSP and other unicode spaces: str.strip takes them off, PLAIN_PATH refuses them
    "\u2003c/a.png",
    "../t/a.png",
    "t/../t/a.png",
    "T/A.png",  # a case difference
    "t/A.png",
    "t/f.txt",
    "t/g",
]


@st.composite
def sources(draw):
    listed = [f for f in FILES if draw(st.booleans())] or ["t/a.png"]
    if "c/b_mask.png" in listed and draw(st.booleans()):
        listed.remove("c/b_mask.png")
    listing = [ListedFile(rel, 10 + n, f"{n}+{n}", 100 + n) for n, rel in enumerate(listed)]
    listing.append(ListedFile("train.csv", 1, "1+1", 1))
    columns = ["image", "control", "prompt"]
    for extra in ("control_1", "id", "mask"):
        if draw(st.booleans()):
            columns.append(extra)
    rows = []
    for _ in range(draw(st.integers(1, 6))):
        row = []
        for col in columns:
            if col == "prompt":
                row.append(draw(st.sampled_from(["red", " blue ", ""])))
            elif col == "id":
                row.append(draw(st.sampled_from(["", "s1", "s2", "S1", " s1\xa0"])))
            else:
                row.append(draw(st.sampled_from(CELLS)))
        if draw(st.integers(0, 5)) == 0:
            row = row[:-1]  # a short row
        rows.append(",".join(f'"{cell}"' for cell in row))
    text = ",".join(columns) + "\n" + "\n".join(rows) + "\n"
    return listing, text


@settings(max_examples=200, deadline=None)
@given(sources())
def test_plain_rows_are_found_as_checked_rows_are(source):
    listing, text = source
    fast = discover_csv(listing, root="/r/", csv_texts={"train": text})
    original = csv_layout._CsvRows.plain_sample
    try:
        csv_layout._CsvRows.plain_sample = lambda self, rowno, row: None
        checked = discover_csv(listing, root="/r/", csv_texts={"train": text})
    finally:
        csv_layout._CsvRows.plain_sample = original
    assert fast == checked


def test_a_plain_row_takes_the_fast_path():
    listing = [ListedFile("t/a.png", 5, "1+2", 3), ListedFile("c/a.png", 6, "1+2", 4)]
    rows = csv_layout._CsvRows(
        "train",
        "train.csv",
        csv_layout._Index({lf.relpath: lf for lf in listing}),
        "/r",
        {"image": 0, "control": 1, "prompt": 2},
        ["control"],
    )
    sample = rows.plain_sample(1, ["t/a.png", "c/a.png", " red "])
    assert sample is not None and (sample.id, sample.prompt, sample.target.uri) == ("a", "red", "/r/t/a.png")
    assert sample.controls[0].version == "1+2:4"
