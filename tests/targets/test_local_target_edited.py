"""A local directory target's current version edited in place (a published shard deleted through
the link): its id no longer names its files, so the next publish repairs it instead of finding
"nothing to do" and leaving a dataset that does not load."""

from __future__ import annotations

import pytest

from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.testdata.synth import write_dataset

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_a_shard_deleted_in_place_is_restored_by_the_next_publish(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    write_dataset(tmp_path / "src", samples=3, image_size=16, seed=5)
    out = tmp_path / "out"
    params = PublishDatasetParams(source=str(tmp_path / "src"), target=str(out))
    assert publish_dataset(params)["commit"]
    [shard] = sorted((out / "data").glob("*.parquet"))
    shard.unlink()

    again = publish_dataset(params)
    assert again["commit"] and not again["listing_unchanged"]
    assert shard.is_file()

    from hubpress.api import load_editing_dataset

    assert load_editing_dataset(str(out), split="train").num_rows == 3


def test_the_same_version_edited_twice_in_one_process_is_repaired_twice(tmp_path, monkeypatch):
    """Each repair moves the edited folder aside under a new name: named by the pid, the second
    repair in one process (or a re-run whose pid came round again) found the first one's folder
    there and the rename failed."""
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    write_dataset(tmp_path / "src", samples=2, image_size=16, seed=6)
    out = tmp_path / "out"
    params = PublishDatasetParams(source=str(tmp_path / "src"), target=str(out))
    first = publish_dataset(params)["commit"]
    for _ in range(2):
        [shard] = sorted((out / "data").glob("*.parquet"))
        shard.unlink()
        assert publish_dataset(params)["commit"] == first
        assert shard.is_file()
    versions = out.parent / ".out.hubpress" / "versions"
    assert sorted(p.name for p in versions.iterdir() if p.name.startswith("edited-"))  # kept aside
