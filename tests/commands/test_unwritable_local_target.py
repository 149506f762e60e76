"""A local target in a folder that cannot be written is one line before any work.

A publish to a local directory writes its versions beside the target (`.NAME.hubpress/`) and
swaps the target for a link to the new one, all in the target's parent folder. When that folder
could not be written (a read-only mount, another user's directory), the publish built and sealed
every shard (hours, for a large dataset) and failed at the commit, saying "free space there" of a
disk that had room. The target's folder is now asked first, as the Hub is asked whether a token
may write a repo: one line, exit 1, nothing staged or built, from the CLI and from a run no CLI
checked (the Python API, a served run).

The unwritable folder is sysfs's root: nobody may create a file there, root included, so the test
means the same whoever runs it.
"""

from __future__ import annotations

import tempfile

import pytest

from hubpress.errors import DiskError
from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import run_cli

UNWRITABLE = "/sys"
TARGET = f"{UNWRITABLE}/hubpress-test-target"


def _refusal() -> str:
    """What this machine's sysfs answers a new file (Permission denied; Read-only file system where
    a container mounts it read-only)."""
    try:
        tempfile.mkstemp(dir=UNWRITABLE)
    except OSError as exc:
        return exc.strerror
    raise AssertionError(f"{UNWRITABLE} took a new file: the test needs a folder that refuses them")


EXPECTED = (
    f"the local target {TARGET} cannot be written: its folder {UNWRITABLE} refuses new files ({_refusal()}). "
    "Choose a target directory in a folder you can write, then run again; nothing was built or sent."
)

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def staging(tmp_path, monkeypatch):
    path = tmp_path / "staging"
    monkeypatch.setenv("HUBPRESS_STAGING", str(path))
    return path


def staged_files(staging) -> list[str]:
    return sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())


def test_publish_dataset_refuses_it_before_building(tmp_cwd, staging):
    write_dataset(tmp_cwd / "src", samples=3, image_size=16)
    code, out, err = run_cli("publish-dataset", "src", TARGET)
    assert (code, out) == (1, "")
    assert err.splitlines() == [f"error: {EXPECTED}"]  # before Prefect: no run was created
    assert staged_files(staging) == []


def test_release_refuses_it_before_staging(tmp_cwd, staging):
    write_lora(tmp_cwd / "run" / "checkpoint-10" / "pytorch_lora_weights.safetensors", seed=1)
    code, out, err = run_cli("release", "run", "--repo", TARGET)
    assert (code, out) == (1, "")
    assert err.splitlines() == [f"error: {EXPECTED}"]  # before Prefect: no run was created
    assert staged_files(staging) == []


def test_a_run_no_cli_checked_refuses_it_too(tmp_path, staging):
    from hubpress.api import upload_editing_dataset

    write_dataset(tmp_path / "src", samples=3, image_size=16)
    with pytest.raises(DiskError) as refused:
        upload_editing_dataset(str(tmp_path / "src"), TARGET)
    assert str(refused.value) == EXPECTED
    assert staged_files(staging) == []


def test_a_versions_store_that_refuses_files_is_refused_before_building(tmp_cwd, staging):
    """The versions (and the target's lock) go in `.NAME.hubpress/`, which another user, or an
    earlier run as another user, may have made: a writable parent folder is not enough. Here it
    is a link to sysfs, which nobody may write."""
    write_dataset(tmp_cwd / "src", samples=3, image_size=16)
    (tmp_cwd / "out").mkdir()
    (tmp_cwd / "out" / ".target.hubpress").symlink_to(UNWRITABLE)
    code, out, err = run_cli("publish-dataset", "src", "./out/target")
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"error: the local target {tmp_cwd / 'out' / 'target'} cannot be written: its folder "
        f"{tmp_cwd / 'out' / '.target.hubpress'} refuses new files ({_refusal()}). Choose a target "
        "directory in a folder you can write, then run again; nothing was built or sent."
    ]
    assert staged_files(staging) == []
