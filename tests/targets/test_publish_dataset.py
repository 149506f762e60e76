"""publish-dataset end to end: generated trees -> the real flow -> the Hub-protocol server, moto S3
and local targets, read back with the real datasets client."""

import io
import json
import os
import shutil
import uuid
from pathlib import Path

import boto3
import pytest
from huggingface_hub import HfApi
from PIL import Image

from hubpress.api import load_editing_dataset, upload_editing_dataset, upload_editing_dataset_from_csv
from hubpress.errors import ValidationFailed
from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.testdata.synth import write_dataset
from tests.conftest import WRITE_TOKEN

pytestmark = pytest.mark.usefixtures("prefect_harness")


def repo():
    return f"alice/ds-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def staging(tmp_path, monkeypatch):
    path = tmp_path / "staging"
    monkeypatch.setenv("HUBPRESS_STAGING", str(path))
    return path


def source_rows(root: Path, split: str) -> dict[str, tuple[str, bytes]]:
    """id -> (prompt, bytes of the main control) straight from a folder-layout source."""
    rows = {}
    controls = {p.stem: p for p in (root / split / "control_images").iterdir()}
    for prompt in (root / split / "training_images").glob("*.txt"):
        rows[prompt.stem] = (prompt.read_text(encoding="utf-8"), controls[prompt.stem].read_bytes())
    return rows


@pytest.mark.lfs
def test_first_publish_loads_back_equal_and_unchanged_republish_sends_nothing(
    hub, tmp_path, staging, write_token
):
    src = tmp_path / "src"
    write_dataset(src, samples=24, test_fraction=0.25, extra_controls=1, masks=True, image_size=32, seed=1)
    name = repo()
    result = publish_dataset(PublishDatasetParams(source=str(src), target=name, max_shard_size="40KB"))
    assert result["commit"] and hub.head("dataset", name) == result["commit"]
    assert result["samples"] == {"train": 18, "test": 6}
    assert HfApi(token=WRITE_TOKEN).dataset_info(name).private is True
    shards = [p for p in result["uploaded_files"] if p.startswith("data/")]
    assert len(shards) > 2 and all(p.endswith(".parquet") for p in shards)

    dsd = load_editing_dataset(name, revision=result["commit"], token=WRITE_TOKEN)
    assert set(dsd) == {"train", "test"}
    expected = source_rows(src, "train")
    assert dsd["train"]["id"] == sorted(expected)  # rows in id order across shards
    got = {row["id"]: row for row in dsd["train"]}
    assert set(got) == set(expected)
    for sample_id, (prompt, control_bytes) in expected.items():
        row = got[sample_id]
        assert row["prompt"] == prompt
        assert len(row["control_images"]) == 2 and row["control_mask"] is not None
        assert row["control_images"][0].tobytes() == Image.open(io.BytesIO(control_bytes)).tobytes()

    card = hub.read_file("dataset", name, "README.md").decode()
    assert "task_categories" in card and "image-to-image" in card and "load_editing_dataset" in card
    manifest = json.loads(hub.read_file("dataset", name, "manifest.json"))
    assert manifest["splits"]["train"]["num_examples"] == 18 and "token" not in json.dumps(manifest).lower()

    # The same listing and the same head: one round trip (the head), nothing read or staged.
    hub.reset_stats()
    again = publish_dataset(PublishDatasetParams(source=str(src), target=name, max_shard_size="40KB"))
    assert again["commit"] is None and again["listing_unchanged"] is True
    assert sum(hub.stats.requests.values()) == 1 and hub.stats.requests["repo_info"] == 1

    # A file that is no part of any sample changes the listing, not the data: the full path
    # reuses the stage and finds nothing to send.
    (src / "NOTES.txt").write_text("not a sample\n")
    hub.reset_stats()
    again = publish_dataset(PublishDatasetParams(source=str(src), target=name, max_shard_size="40KB"))
    assert again["commit"] is None and again["stage_reused"] is True and again["listing_unchanged"] is False
    assert again["changes"] == {"added": 0, "changed": 0, "removed": 0}
    assert hub.stats.commits == 0 and hub.stats.upload_bytes == 0
    assert hub.stats.requests["lfs_batch"] == 0 and hub.stats.requests["preupload"] == 0
    # The card and manifest it committed are known by their blob ids: nothing is downloaded.
    assert hub.stats.requests["resolve"] == 0 and hub.stats.download_bytes == 0


@pytest.mark.lfs
def test_adding_samples_uploads_only_the_shards_they_land_in(hub, tmp_path, staging, write_token):
    src = tmp_path / "src"
    write_dataset(src, samples=200, image_size=16, seed=2)
    name = repo()
    first = publish_dataset(PublishDatasetParams(source=str(src), target=name, max_shard_size="30KB"))
    total_shards = len([p for p in first["uploaded_files"] if p.startswith("data/")])
    assert total_shards >= 8

    # 1% more samples, with ids that sort among the existing ones.
    extra = tmp_path / "extra"
    write_dataset(extra, samples=2, image_size=16, seed=99)
    for sub in ("control_images", "training_images"):
        for f in (extra / "train" / sub).iterdir():
            shutil.copy(f, src / "train" / sub / f"zz_{f.name}")
    hub.reset_stats()
    second = publish_dataset(PublishDatasetParams(source=str(src), target=name, max_shard_size="30KB"))
    new_shards = [p for p in second["uploaded_files"] if p.startswith("data/")]
    assert second["samples"]["train"] == 202
    assert 1 <= len(new_shards) <= 2 and len(new_shards) < total_shards / 3
    # Each replaced shard is deleted, nothing else. An added sample can itself be a boundary, so
    # one old shard may come back as two new ones.
    assert set(second["deleted_files"]) <= set(first["uploaded_files"])
    assert 1 <= len(second["deleted_files"]) <= len(new_shards)
    assert hub.stats.commits == 1

    # Deleting samples works the same way, and the dataset loads with the right rows.
    for f in (src / "train" / "training_images").glob("zz_*"):
        f.unlink()
    third = publish_dataset(PublishDatasetParams(source=str(src), target=name, max_shard_size="30KB"))
    assert third["samples"]["train"] == 200
    assert len(load_editing_dataset(name, split="train", revision=third["commit"], token=WRITE_TOKEN)) == 200


def test_user_card_edits_survive_and_others_files_are_left_alone(hub, tmp_path, staging, write_token):
    src = tmp_path / "src"
    write_dataset(src, samples=6, seed=3)
    name = repo()
    publish_dataset(PublishDatasetParams(source=str(src), target=name))
    api = HfApi(token=WRITE_TOKEN)
    card = hub.read_file("dataset", name, "README.md").decode()
    card = card.replace("license:", "my_team: vision\nlicense:", 1) + "\n## Notes from the team\nKeep this.\n"
    from huggingface_hub import CommitOperationAdd

    api.create_commit(
        name,
        [CommitOperationAdd("README.md", card.encode()), CommitOperationAdd("extra/notes.txt", b"ours")],
        commit_message="team edits",
        repo_type="dataset",
    )
    (src / "train" / "training_images").glob("*.txt").__next__().write_text(
        "a brand new prompt", encoding="utf-8"
    )
    out = publish_dataset(PublishDatasetParams(source=str(src), target=name))
    assert out["commit"]
    new_card = hub.read_file("dataset", name, "README.md").decode()
    assert "my_team: vision" in new_card and "Keep this." in new_card and "a brand new prompt" not in card
    assert hub.read_file("dataset", name, "extra/notes.txt") == b"ours"


def test_defective_tree_publishes_the_rest_and_reports_skips(hub, tmp_path, staging, write_token):
    src = tmp_path / "src"
    summary = write_dataset(
        src, samples=20, seed=4, defects=("truncated", "empty_prompt", "ext_mismatch"), defect_count=1
    )
    name = repo()
    out = publish_dataset(PublishDatasetParams(source=str(src), target=name))
    kept = sum(len(v) for v in summary.expected.values())
    assert out["samples"]["train"] == kept and out["skipped"]["train"] == len(summary.skipped["train"])
    manifest = json.loads(hub.read_file("dataset", name, "manifest.json"))
    assert {s["id"] for s in manifest["skipped"]} == set(summary.skipped["train"])
    assert any(c["kind"] == "extension_mismatch" for c in manifest["corrections"])

    hub.reset_stats()
    with pytest.raises(ValidationFailed):
        publish_dataset(PublishDatasetParams(source=str(src), target=repo(), on_error="fail"))
    assert hub.stats.upload_bytes == 0 and hub.stats.commits == 0


def test_dry_run_plans_without_uploading(hub, tmp_path, staging, write_token):
    src = tmp_path / "src"
    write_dataset(src, samples=5, seed=5)
    name = repo()
    out = publish_dataset(PublishDatasetParams(source=str(src), target=name, dry_run=True))
    assert out["dry_run"] and out["commit"] is None and out["plan"]["added"]
    assert hub.stats.commits == 0 and hub.stats.upload_bytes == 0


def test_s3_source_and_s3_staging_to_a_local_target(s3, tmp_path, monkeypatch):
    endpoint, bucket = s3
    src = tmp_path / "src"
    write_dataset(src, layout="csv", samples=10, test_fraction=0.3, extra_controls=2, seed=6)
    client = boto3.client("s3", endpoint_url=endpoint)
    for path in src.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"datasets/ds1/{path.relative_to(src).as_posix()}")
    monkeypatch.setenv("HUBPRESS_STAGING", f"s3://{bucket}/staging")
    out_dir = tmp_path / "published"
    out = upload_editing_dataset_from_csv(f"s3://{bucket}/datasets/ds1", f"{out_dir}/", private=True)
    assert out["commit"] and out["samples"] == {"train": 7, "test": 3}
    # The shards were sealed in S3 staging as they were built; the target holds them now, so
    # staging keeps no second copy.
    staged = client.list_objects_v2(Bucket=bucket, Prefix="staging/").get("Contents", [])
    assert not [o["Key"] for o in staged if o["Key"].endswith((".parquet", ".json"))]
    dsd = load_editing_dataset(str(out_dir))
    assert len(dsd["train"]) == 7 and len(dsd["test"]) == 3
    assert all(len(r["control_images"]) == 3 for r in dsd["train"])
    assert dsd["test"][0]["target_image"] is None

    again = upload_editing_dataset_from_csv(f"s3://{bucket}/datasets/ds1", f"{out_dir}/")
    assert again["commit"] is None and again["listing_unchanged"]  # keys, sizes and ETags decided


def test_local_target_is_a_complete_dataset_directory(tmp_path, staging):
    src = tmp_path / "src"
    write_dataset(src, samples=8, seed=7)
    out = upload_editing_dataset(str(src), f"{tmp_path}/out")
    assert out["commit"]
    ds = load_editing_dataset(f"{tmp_path}/out", split="train")
    assert sorted(ds["id"]) == sorted(p.stem for p in (src / "train" / "training_images").glob("*.txt"))
    assert os.path.islink(tmp_path / "out")


def test_fan_out_builds_each_split_in_a_subflow_run_with_the_same_files(tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentTaskRunId
    from prefect.client.schemas.sorting import FlowRunSort

    src = tmp_path / "src"
    write_dataset(src, samples=12, test_fraction=0.25, seed=8)
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "stage-a"))
    plain = publish_dataset(
        PublishDatasetParams(source=str(src), target=f"{tmp_path}/a", max_shard_size="20KB")
    )
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "stage-b"))
    fanned = publish_dataset(
        PublishDatasetParams(source=str(src), target=f"{tmp_path}/b", max_shard_size="20KB", fan_out="splits")
    )
    assert fanned["stage_reused"] is False  # really built, in the subflows
    assert sorted(fanned["uploaded_files"]) == sorted(plain["uploaded_files"])
    assert {p.name for p in (tmp_path / "b" / "data").iterdir()} == {
        p.name for p in (tmp_path / "a" / "data").iterdir()
    }

    with get_client(sync_client=True) as client:
        # limit and sort explicit: Prefect 3.8.8's client otherwise sends nulls its server refuses (422).
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_task_run_id=FlowRunFilterParentTaskRunId(is_null_=False)),
            limit=200,
            sort=FlowRunSort.START_TIME_DESC,
        )
    names = {run.name for run in runs}
    assert {"build-train", "build-test"} <= names
