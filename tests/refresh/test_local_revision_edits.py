"""A local backend's "revision" follows the one version rule of every local listing and cache key
(hubpress.storage.hashcache.local_version: size, mtime, ctime and inode). A same-size edit that
puts the old modification time back (`cp -p` from a backup, `rsync -t`, `touch -d`, os.utime)
still moves the ctime, which user space cannot set, and a file replaced by another has another
inode: either is a new revision, so the refresh reads the folder again instead of saying
"nothing changed" over the old caption or image."""

from __future__ import annotations

import io
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from hubpress.refresh.config import parse_refresh_config
from hubpress.refresh.lineage import local_folder_revision


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _folder(root, count: int = 3):
    root.mkdir(parents=True)
    for i in range(count):
        (root / f"img{i}.png").write_bytes(_png(i))
        (root / f"img{i}.txt").write_text(f"a cat {i}\n")
    return root


def _edit_keeping_mtime(path, data: bytes) -> None:
    """What `cp -p` does: new bytes of the same size, then the old times put back."""
    before = os.stat(path)
    assert len(data) == before.st_size
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns


def _backend(folder):
    (backend,) = parse_refresh_config(
        {"id": "studio", "type": "local", "instance_data_dir": str(folder)}
    ).backends
    return backend


def test_a_same_size_edit_with_its_old_mtime_is_a_new_revision(tmp_path):
    folder = _folder(tmp_path / "studio")
    before = local_folder_revision(_backend(folder))
    _edit_keeping_mtime(folder / "img1.txt", b"a dog 1\n")
    assert local_folder_revision(_backend(folder)) != before


def test_a_file_replaced_by_another_with_the_same_size_and_times_is_a_new_revision(tmp_path):
    folder = _folder(tmp_path / "studio")
    stat = os.stat(folder / "img2.txt")
    before = local_folder_revision(_backend(folder))
    (tmp_path / "new.txt").write_bytes(b"a dog 2\n")
    os.utime(tmp_path / "new.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(tmp_path / "new.txt", folder / "img2.txt")  # an atomic save: another inode
    assert local_folder_revision(_backend(folder)) != before


def test_an_untouched_folder_keeps_its_revision(tmp_path):
    folder = _folder(tmp_path / "studio")
    assert local_folder_revision(_backend(folder)) == local_folder_revision(_backend(folder))


@pytest.mark.usefixtures("prefect_harness")
def test_a_refresh_publishes_a_caption_edited_with_its_old_mtime(tmp_path, monkeypatch):
    """The refresh itself, offline (a local folder into a local directory): on the old revision
    rule the second run said "nothing changed upstream" and kept publishing `a cat 1`."""
    from hubpress.api import refresh_dataset

    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    folder = _folder(tmp_path / "studio")
    config = [{"id": "studio", "type": "local", "instance_data_dir": str(folder)}]
    out = tmp_path / "out"
    first = refresh_dataset(config, out)
    assert first["commit"] and not first["nothing_changed"]

    _edit_keeping_mtime(folder / "img1.txt", b"a dog 1\n")
    second = refresh_dataset(config, out)
    assert not second["nothing_changed"], second["message"]
    captions = [
        row["caption"]
        for path in sorted(out.glob("data/*.parquet"))
        for row in pq.read_table(path, columns=["caption"]).to_pylist()
    ]
    assert sorted(captions) == ["a cat 0", "a cat 2", "a dog 1"], captions
