"""A changed night whose parent is the head this machine last published and verified builds,
stages and verifies without importing `datasets` (nor aiohttp, which datasets loads to stream a
Hub revision): in a fresh process, against the test harness's Prefect server and the test Hub.
The revision it commits still loads with datasets. Without that record (another machine, a fresh
cache), the verification opens the revision with datasets, as a first publish does."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

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
from tests.e2e.fresh_process import run_fresh

pytestmark = pytest.mark.usefixtures("prefect_harness")

WATCHED = ("datasets", "aiohttp", "pandas", "pyarrow.compute")

SCRIPT = """
import json, sys
from hubpress.flows.params import PublishDatasetParams
from hubpress.errors import PublishError
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.settings import get_settings
from hubpress.shards import editing_format
from hubpress.shards.verify import verify_changed_revision
from hubpress.targets.publish import open_target
result = publish_dataset(PublishDatasetParams(source=sys.argv[1], target=sys.argv[2], max_shard_size="20KB"))
loaded = sorted(m for m in sys.argv[3].split(",") if m in sys.modules)
print("RESULT " + json.dumps({"commit": result["commit"], "built": result["shards_built"], "loaded": loaded}))
"""


def _publish_fresh(source: Path, target: str, cache: Path) -> dict:
    return run_fresh(SCRIPT, str(source), target, ",".join(WATCHED), env={"HUBPRESS_CACHE_DIR": str(cache)})


def _add_sample(src: Path, extra: Path, prefix: str) -> None:
    for f in extra.glob("train/*/s000000*"):
        shutil.copy(f, src / "train" / f.parent.name / f"{prefix}{f.name}")


def test_a_changed_night_verifies_without_importing_datasets(hub, tmp_path, write_token, monkeypatch):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    cache = tmp_path / "cache"
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(cache))
    src, extra = tmp_path / "src", tmp_path / "extra"
    write_dataset(src, samples=12, image_size=16, seed=7)
    write_dataset(extra, samples=1, image_size=16, seed=70)
    repo = f"alice/night-{uuid.uuid4().hex[:8]}"
    first = publish_dataset(PublishDatasetParams(source=str(src), target=repo, max_shard_size="20KB"))
    assert first["commit"]
    record = PublishedRecords(cache).get(repo, "main")
    assert record is not None and record.head == first["commit"] and record.opened_shape

    _add_sample(src, extra, "zz_")
    night = _publish_fresh(src, repo, cache)
    assert night["commit"] and night["built"] >= 1
    assert night["loaded"] == []
    # The chain goes on: this night's head may be verified the same way by the next.
    after = PublishedRecords(cache).get(repo, "main")
    assert after.head == night["commit"] and after.opened_shape == record.opened_shape

    # What it committed opens with datasets, the new sample in it.
    import datasets

    from hubpress.targets import hub_http

    hub_http.install()
    ds = datasets.load_dataset(repo, split="train", revision=night["commit"], token=write_token)
    assert len(ds) == 13 and "zz_s000000" in ds["id"]

    # The same check refuses a revision that is not what the manifest and the parent's card say.
    target = open_target(repo, "dataset", get_settings(), write=False)
    commit = night["commit"]
    files = json.loads(hub.read_file("dataset", repo, "manifest.json", commit))["files"]
    features = editing_format.FEATURES_DICT
    shape = record.opened_shape
    assert (
        sum(verify_changed_revision(repo, target, commit, files, features, ["id", "prompt"], shape).values())
        == 13
    )
    wrong_rows = {p: {**f, "num_rows": f["num_rows"] + 1} if "num_rows" in f else f for p, f in files.items()}
    a_shard = next(p for p, f in files.items() if "num_rows" in f)
    for files_, shape_, said in [
        (wrong_rows, shape, "rows"),
        (files, "another shape", "not shaped as the one datasets opened"),
        ({p: f for p, f in files.items() if p != a_shard}, shape, "do not name the committed shards"),
        (files, shape, "features are not the expected"),
    ]:
        expected = features if "features" not in said else {**features, "prompt": {"_type": "Image"}}
        with pytest.raises(PublishError, match=said):
            verify_changed_revision(repo, target, commit, files_, expected, ["id", "prompt"], shape_)

    # Another cache (another machine): no record of the parent, so datasets opens the revision.
    _add_sample(src, extra, "aa_")
    other = _publish_fresh(src, repo, tmp_path / "other-cache")
    assert other["commit"] and "datasets" in other["loaded"]


def test_a_changed_night_to_a_local_directory_is_verified_by_its_footers_and_card(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    src, extra = tmp_path / "src", tmp_path / "extra"
    write_dataset(src, samples=8, image_size=16, seed=8)
    write_dataset(extra, samples=1, image_size=16, seed=80)
    out = tmp_path / "out"
    params = PublishDatasetParams(source=str(src), target=str(out), max_shard_size="20KB")
    with caplog.at_level("INFO", logger="hubpress.dataset"):
        assert publish_dataset(params)["commit"]
        assert "by its footers and card" not in caplog.text  # a first publish opens with datasets
        _add_sample(src, extra, "zz_")
        night = publish_dataset(params)
    assert night["commit"] and "by its footers and card, shaped as the parent's" in caplog.text
    assert sum(night["samples"].values()) == 9
