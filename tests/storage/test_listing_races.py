"""The local listing against a tree that changes under it: a folder swapped for a symbolic link
to a folder outside the source, or deleted, between its parent's scan and its own. Reported as
unlisted, never read, never a traceback; and no descriptor left open."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from hubpress.storage import files
from hubpress.storage.files import UNLISTED, LocalStorage

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    """root/a/{g.png, fifo, b/f.png} and outside/secret.txt. The FIFO is a's one unlisted entry:
    with report_unlisted it comes out after a's scan and before b is opened (the stack pops b
    next), which is the moment a test changes b."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("not the source's")
    (root / "a" / "g.png").write_bytes(b"g")
    (root / "a" / "b" / "f.png").write_bytes(b"f")
    os.mkfifo(root / "a" / "fifo")
    return root, outside


def _listing(root: Path, change: Callable[[], None]) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for listed in LocalStorage(root).list(report_unlisted=True):
        out[listed.relpath] = (listed.size, listed.version)
        if listed.relpath == "a/fifo":
            change()
    return out


def test_a_folder_swapped_for_a_link_outside_during_the_listing_is_not_read(tmp_path):
    root, outside = _tree(tmp_path)

    def swap() -> None:
        shutil.rmtree(root / "a" / "b")
        os.symlink(outside, root / "a" / "b")

    listing = _listing(root, swap)
    assert "a/b/secret.txt" not in listing
    size, why = listing["a/b"]
    assert size == UNLISTED and "replaced while the source was listed" in why
    assert listing["a/g.png"][0] == 1


def test_a_folder_deleted_during_the_listing_is_reported_not_raised(tmp_path):
    root, _ = _tree(tmp_path)
    listing = _listing(root, lambda: shutil.rmtree(root / "a" / "b"))
    size, why = listing["a/b"]
    assert size == UNLISTED and "cannot be read" in why
    assert listing["a/g.png"][0] == 1


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_no_descriptor_is_left_open_by_a_full_or_an_abandoned_listing(tmp_path):
    root, outside = _tree(tmp_path)
    os.symlink(outside, root / "out")
    os.symlink("nowhere", root / "dangling")
    before = len(os.listdir("/proc/self/fd"))
    assert len(list(LocalStorage(root).list(report_unlisted=True))) == 5
    assert len(os.listdir("/proc/self/fd")) == before
    listing = LocalStorage(root).list()
    next(listing)
    listing.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_the_listing_by_path_where_folders_have_no_descriptors_finds_the_same(tmp_path, monkeypatch):
    """Windows scans folders by path (files._SCAN_BY_FD is False there): same files, same reports."""
    root, outside = _tree(tmp_path)
    os.symlink(outside, root / "out")
    os.symlink(root / "a" / "b", root / "inside")
    os.symlink("loop", root / "loop")
    by_fd = sorted(LocalStorage(root).list(report_unlisted=True), key=lambda lf: lf.relpath)
    monkeypatch.setattr(files, "_SCAN_BY_FD", False)
    by_path = sorted(LocalStorage(root).list(report_unlisted=True), key=lambda lf: lf.relpath)
    assert by_path == by_fd
    assert [lf.relpath for lf in by_fd] == ["a/b/f.png", "a/fifo", "a/g.png", "inside/f.png", "loop", "out"]
