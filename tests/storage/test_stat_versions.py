"""A same-size edit that puts the old modification time back is still an edit: the stat key holds
the inode change time (ctime), which user space cannot restore, as git's index does. Through the
hash cache, and through `publish-dataset` twice (the second run must publish the edit)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from hubpress.storage.hashcache import HashCache
from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _edit_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    st = os.stat(path)
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == st.st_mtime_ns and os.stat(path).st_size == st.st_size


@pytest.mark.parametrize("how", ["rewrite", "rename_over"])
def test_the_hash_cache_sees_a_same_size_edit_with_the_mtime_restored(tmp_path, how):
    cache = HashCache(tmp_path / "hashes.sqlite")
    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 4096)
    assert cache.sha256_local(path) == hashlib.sha256(b"a" * 4096).hexdigest()
    if how == "rewrite":
        _edit_keeping_size_and_mtime(path, b"b" * 4096)
    else:  # a new file renamed over the old one, its times copied (cp -p, rsync -t)
        st = os.stat(path)
        other = tmp_path / "new.bin"
        other.write_bytes(b"b" * 4096)
        os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(other, path)
    assert cache.sha256_local(path) == hashlib.sha256(b"b" * 4096).hexdigest()


def test_publish_dataset_publishes_a_same_size_edit_with_the_mtime_restored(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    write_dataset(src, samples=3, image_size=16, seed=9, test_fraction=0)
    code, _, err = run_cli("publish-dataset", str(src), str(out))
    assert code == 0, err
    first = json.loads((out / "manifest.json").read_text())["files"]

    prompt = sorted((src / "train" / "training_images").glob("*.txt"))[0]
    text = prompt.read_bytes()
    _edit_keeping_size_and_mtime(prompt, text[:-1] + (b"X" if text[-1:] != b"X" else b"Y"))

    code, stdout, err = run_cli("publish-dataset", str(src), str(out), "--json")
    assert code == 0, err
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["commit"] is not None and result["uploaded_files"], result
    assert json.loads((out / "manifest.json").read_text())["files"] != first
