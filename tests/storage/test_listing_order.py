"""A local listing comes in name order, whatever order the file system keeps a folder in: a
folder's files by name, its unlisted entries after them by name, then its sub-folders by name.
A listing is then nearly in relpath order, the order the listing digest hashes it in and a CSV
of sorted ids names its files in (docs/performance.md, "Planning (fourteenth session)")."""

from __future__ import annotations

import os
import random

import pytest

from hubpress.storage import files
from hubpress.storage.files import UNLISTED, LocalStorage

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")


def test_a_tree_is_listed_in_name_order_whatever_order_its_files_were_made_in(tmp_path):
    names = [f"m{i:04d}.png" for i in range(300)] + ["a b.png", "Z.png", "_.png", "é.png"]
    random.Random(7).shuffle(names)
    (tmp_path / "train" / "target").mkdir(parents=True)
    (tmp_path / "train" / "control").mkdir()
    for name in names:
        (tmp_path / "train" / "target" / name).write_bytes(b"t")
        (tmp_path / "train" / "control" / name).write_bytes(b"c")
    (tmp_path / "train.csv").write_text("image,control,prompt\n")
    os.mkfifo(tmp_path / "train" / "control" / "fifo")
    os.symlink(tmp_path / "nowhere", tmp_path / "train" / "control" / "dangling.png")
    os.symlink(tmp_path / "train" / "target" / "Z.png", tmp_path / "train" / "control" / "n-link.png")
    storage = LocalStorage(tmp_path)

    listed = list(storage.list(report_unlisted=True))

    control = sorted([*names, "n-link.png"])
    expected = [
        "train.csv",
        *(f"train/control/{name}" for name in control),
        "train/control/dangling.png",  # the unlisted, after the folder's files, by name
        "train/control/fifo",
        *(f"train/target/{name}" for name in sorted(names)),
    ]
    assert [lf.relpath for lf in listed] == expected
    assert [lf.relpath for lf in listed if lf.size == UNLISTED] == expected[-len(names) - 2 : -len(names)]
    assert storage.listing(report_unlisted=True) == listed
    assert list(storage.listing()) == list(storage.list()) == [lf for lf in listed if lf.size != UNLISTED]


@pytest.mark.parametrize("by_descriptor", [True, False])
def test_a_file_gone_between_the_scan_and_its_stat_is_unlisted_and_the_others_listed(tmp_path, by_descriptor):
    for name in ("a.png", "c.png"):
        (tmp_path / name).write_bytes(b"x" * len(name))
    folder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY) if by_descriptor else None
    unlisted: list[tuple[str, str]] = []
    try:
        found = list(files._stats_of(folder, str(tmp_path), "t/", ["a.png", "b.png", "c.png"], unlisted))
    finally:
        if folder is not None:
            os.close(folder)
    assert [(pre, names, [st.st_size for st in stats]) for pre, names, stats in found] == [
        ("t/", ["a.png", "c.png"], [5, 5])
    ]
    assert unlisted == [("t/b.png", "cannot be followed (No such file or directory)")]


def test_a_big_folder_is_stat_ed_a_few_thousand_files_at_a_time_in_name_order(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_STATS_AT_ONCE", 3)
    names = [f"{i:02d}.png" for i in range(10)]
    for name in reversed(names):
        (tmp_path / name).write_bytes(b"x")
    folder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        chunks = [found for _, found, _ in files._stats_of(folder, str(tmp_path), "", names, [])]
    finally:
        os.close(folder)
    assert chunks == [names[0:3], names[3:6], names[6:9], names[9:]]
    assert [lf.relpath for lf in LocalStorage(tmp_path).list()] == names
