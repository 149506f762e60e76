"""`cd out/face-seg && hubpress publish-dataset SRC .`: the working directory a process gets there is
the target's current version (`.face-seg.hubpress/versions/ID`, where the symlink leads). The
outsider's publish made that version a target of its own: a store nested in the store, the version
turned into a link, `out/face-seg` a link to a link, and "Published to ." said nothing was wrong.
Now `.` there is the target the person is in; a version dir whose target no longer links to that
store is refused in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hubpress.errors import SourceError
from hubpress.testdata.synth import write_dataset


@pytest.mark.usefixtures("prefect_harness")
def test_publishing_to_dot_inside_a_local_target_publishes_that_target(tmp_path, monkeypatch):
    from hubpress.api import load_editing_dataset, upload_editing_dataset

    write_dataset(tmp_path / "first", samples=2, seed=1)
    write_dataset(tmp_path / "second", samples=3, seed=2)
    target = tmp_path / "out"
    upload_editing_dataset(str(tmp_path / "first"), str(target))

    monkeypatch.chdir(target)  # as `cd out` does: the process's cwd is the version the link names
    assert Path(os.getcwd()).parent.name == "versions"
    result = upload_editing_dataset(str(tmp_path / "second"), ".")
    assert result["commit"]

    store = tmp_path / ".out.hubpress" / "versions"
    assert target.is_symlink() and Path(os.path.realpath(target)).parent == store
    assert not any(p.is_symlink() or p.name.endswith(".hubpress") for p in store.iterdir())
    assert load_editing_dataset(str(target), split="train").num_rows == 3


def test_a_version_dir_of_a_target_that_moved_on_is_refused_in_one_line(tmp_path):
    from hubpress.targets.local import LocalDir

    orphan = tmp_path / ".gone.hubpress" / "versions" / "abc123"
    orphan.mkdir(parents=True)
    with pytest.raises(SourceError, match=r"is a version hubpress keeps for the local target .*gone"):
        LocalDir(orphan)
