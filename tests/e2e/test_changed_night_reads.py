"""What a changed night reads back from the Hub to verify its commit (#21's +1% night).

A night whose parent is the head this machine published and verified checks every shard of the
new revision: the shards the commit kept from that parent by their sha256 and size at the new
commit (one paths-info request), whose footers were checked at the parent; the others by their
footers, read again. So a night reads the footers of the shards it sent (and of the first shard,
for its first row), not of every shard of the dataset."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest

from hubpress.errors import PublishError
from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.settings import get_settings
from hubpress.shards import editing_format
from hubpress.shards.published import PublishedRecords
from hubpress.shards.verify import verify_changed_revision
from hubpress.targets.publish import open_target
from hubpress.testdata.synth import write_dataset

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_a_changed_night_reads_the_footers_of_the_shards_it_sent(hub, tmp_path, write_token, monkeypatch):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    cache = tmp_path / "cache"
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(cache))
    src, extra = tmp_path / "src", tmp_path / "extra"
    write_dataset(src, samples=40, image_size=16, seed=11)
    write_dataset(extra, samples=1, image_size=16, seed=110)
    repo = f"alice/night-reads-{uuid.uuid4().hex[:8]}"
    params = PublishDatasetParams(source=str(src), target=repo, max_shard_size="6KB")
    first = publish_dataset(params)
    assert first["commit"] and first["shards"] >= 8

    for f in extra.glob("train/*/s000000*"):  # one sample sorting after every other
        shutil.copy(f, src / "train" / f.parent.name / f"zz_{f.name}")
    hub.reset_stats()
    night = publish_dataset(params)
    assert night["commit"] and 1 <= night["shards_sent"] <= 2
    record = PublishedRecords(cache).get(repo, "main")
    assert record.head == night["commit"] and record.opened_shape  # verified without datasets
    # Footers of the sent shards and of the first shard (its first row), and the committed card
    # (and at most one more small file); the kept shards' facts come from one paths-info request
    # at the new commit (the other checks the sent files after the commit). Before: every footer.
    assert hub.stats.requests["resolve"] <= night["shards_sent"] + 3 < night["shards"], hub.stats.requests
    assert hub.stats.requests["paths_info"] == 2

    # The check still refuses a kept shard that is not at the new commit as the parent held it,
    # and reads the footer of a shard it was told of under another sha256.
    target = open_target(repo, "dataset", get_settings(), write=False)
    commit = night["commit"]
    files = json.loads(hub.read_file("dataset", repo, "manifest.json", commit))["files"]
    shards = sorted(p for p, f in files.items() if "num_rows" in f)
    features, columns, shape = editing_format.FEATURES_DICT, ["id", "prompt"], record.opened_shape
    kept = {p: files[p]["sha256"] for p in shards[1:]}
    rows = verify_changed_revision(repo, target, commit, files, features, columns, shape, kept)
    assert sum(rows.values()) == 41
    other = "0" * 64
    wrong_sha = {p: {**f, "sha256": other} if p == shards[-1] else f for p, f in files.items()}
    with pytest.raises(PublishError, match="sha256"):
        verify_changed_revision(
            repo, target, commit, wrong_sha, features, columns, shape, {shards[-1]: other}
        )
    wrong_rows = {p: {**f, "num_rows": f["num_rows"] + 1} if p == shards[-1] else f for p, f in files.items()}
    with pytest.raises(PublishError, match="rows"):
        # told of under another sha256 than the manifest's: not taken as checked, its footer is read
        verify_changed_revision(
            repo, target, commit, wrong_rows, features, columns, shape, {shards[-1]: other}
        )
