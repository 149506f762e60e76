"""The Hub's limits, checked and respected: entries per folder (a split with more shards than fit
goes into subfolders, and the card's data_files follow), files per repo and file size refused
before anything is built or uploaded, and the dataset viewer's limits on what the writer makes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import uuid

import pytest

from hubpress.api import load_editing_dataset
from hubpress.shards.shards import ShardPlan, in_folders
from hubpress.targets.limits import entries_per_folder
from hubpress.testdata.synth import write_dataset
from tests.conftest import WRITE_TOKEN
from tests.hubserver.viewer import parquet_problems, viewer_problems

pytestmark = pytest.mark.usefixtures("prefect_harness")


def plan(split: str, n: int) -> ShardPlan:
    key = hashlib.sha256(f"{split}{n}".encode()).hexdigest()
    return ShardPlan(split=split, samples=(), estimated_size=1, key=key)


def test_shards_stay_in_data_while_they_fit_and_the_largest_split_moves_to_subfolders():
    few = [plan("train", i) for i in range(6)] + [plan("test", i) for i in range(3)]
    assert [p.path_in_repo for p in in_folders(few, 10)] == [p.path_in_repo for p in few]
    assert all(p.folder == "data" for p in in_folders(few, 10))

    many = [plan("train", i) for i in range(40)] + [plan("test", i) for i in range(3)]
    placed = in_folders(many, 10)
    assert in_folders(many, 10) == placed  # a shard's folder depends only on its content
    assert {p.folder for p in placed if p.split == "test"} == {"data"}
    assert all(p.folder == f"data/train/{int(p.key[:8], 16) % 10:x}" for p in placed if p.split == "train")
    assert max(entries_per_folder(p.path_in_repo for p in placed).values()) <= 10
    assert sorted(p.name for p in placed) == sorted(p.name for p in many)  # names unchanged


def test_a_split_of_more_than_eight_folders_worth_fans_out_over_more_buckets():
    placed = in_folders([plan("train", i) for i in range(4000)], 300)
    assert len({p.folder for p in placed}) == 256
    assert max(entries_per_folder(p.path_in_repo for p in placed).values()) <= 300
    placed = in_folders([plan("train", i) for i in range(300)], 40)  # 16 buckets, about 19 shards each
    assert len({p.folder for p in placed}) == 16
    assert max(entries_per_folder(p.path_in_repo for p in placed).values()) <= 40


def cli(*args, tmp_path, **env):
    from prefect.settings import PREFECT_API_URL

    return subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **os.environ,
            "HF_TOKEN": WRITE_TOKEN,
            "HUBPRESS_STAGING": str(tmp_path / "staging"),
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            **env,
        },
        timeout=600,
    )


@pytest.fixture
def small_folders(hub):
    saved = hub.limits.files_per_folder
    hub.limits.files_per_folder = 10
    yield hub
    hub.limits.files_per_folder = saved


def test_a_split_with_more_shards_than_a_folder_takes_is_published_in_subfolders(small_folders, tmp_path):
    hub = small_folders
    src = tmp_path / "src"
    write_dataset(src, samples=30, image_size=32, seed=8)
    name = f"alice/lim-{uuid.uuid4().hex[:8]}"
    out = cli(
        "publish-dataset", str(src), name, "--max-shard-size", "12KB", "--json",
        tmp_path=tmp_path, HUBPRESS_HUB_FILES_PER_FOLDER="10",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    files = hub.commit_history("dataset", name)[0]["files"]
    shards = [p for p in files if p.endswith(".parquet")]
    assert len(shards) > 10  # more than data/ could take: the test Hub would refuse them there
    assert all(p.startswith("data/train/") for p in shards)
    assert max(entries_per_folder(files).values()) <= 10
    card = hub.read_file("dataset", name, "README.md").decode()
    assert all(p in card for p in shards)  # data_files name the subfolders
    dsd = load_editing_dataset(name, revision=result["commit"], token=WRITE_TOKEN)
    assert len(dsd["train"]) == 30 and dsd["train"]["id"] == sorted(dsd["train"]["id"])
    assert viewer_problems(hub, "dataset", name) == []


def test_the_test_hub_refuses_a_commit_over_its_limits(small_folders):
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    hub = small_folders
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    name = f"alice/lim-{uuid.uuid4().hex[:8]}"
    api.create_repo(name, repo_type="dataset")
    head = hub.head("dataset", name)
    ops = [CommitOperationAdd(f"d/{i}.txt", b"x") for i in range(11)]
    with pytest.raises(HfHubHTTPError, match="at most 10 per folder") as refused:
        api.create_commit(name, ops, commit_message="m", repo_type="dataset")
    assert refused.value.response.status_code == 400 and hub.head("dataset", name) == head
    saved = hub.limits.file_bytes
    hub.limits.file_bytes = 10
    try:
        with pytest.raises(HfHubHTTPError, match="over 10 bytes"):
            api.create_commit(
                name, [CommitOperationAdd("big.txt", b"y" * 11)], commit_message="m", repo_type="dataset"
            )
    finally:
        hub.limits.file_bytes = saved
    assert hub.head("dataset", name) == head


UPLOADS = {"preupload", "lfs_batch", "lfs_upload", "xet_write_token", "commit"}  # the test Hub's endpoints

# hubpress's setting -> the test Hub's limit of the same name: a test lowers both to one value.
SERVER_LIMIT = {
    "HUBPRESS_HUB_FILES_PER_REPO": "files_per_repo",
    "HUBPRESS_HUB_MAX_FILE_BYTES": "file_bytes",
    "HUBPRESS_HUB_LFS_FILES_PER_COMMIT": "lfs_files_per_commit",
    "HUBPRESS_HUB_REGULAR_BYTES_PER_COMMIT": "regular_bytes_per_commit",
}


@contextlib.contextmanager
def server_limits(hub, **values: int):
    """The test Hub's limits lowered for one test, restored afterwards."""
    saved = {key: getattr(hub.limits, key) for key in values}
    for key, value in values.items():
        setattr(hub.limits, key, value)
    try:
        yield hub
    finally:
        for key, value in saved.items():
            setattr(hub.limits, key, value)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"HUBPRESS_HUB_FILES_PER_REPO": "5"}, "under 5 files per repo"),
        ({"HUBPRESS_HUB_MAX_FILE_BYTES": "1000"}, "files over 1,000 bytes"),
        ({"HUBPRESS_HUB_LFS_FILES_PER_COMMIT": "3"}, "at most 3 LFS files per commit"),
    ],
    ids=["files-per-repo", "file-size", "lfs-files-per-commit"],
)
def test_a_dataset_over_a_repo_limit_is_refused_before_anything_is_built_or_uploaded(
    hub, tmp_path, env, words
):
    src = tmp_path / "src"
    write_dataset(src, samples=30, image_size=32, seed=8)
    name = f"alice/lim-{uuid.uuid4().hex[:8]}"
    lowered = {SERVER_LIMIT[key]: int(value) for key, value in env.items()}  # the Hub's limits, the same
    with server_limits(hub, **lowered):
        out = cli("publish-dataset", str(src), name, "--max-shard-size", "12KB", tmp_path=tmp_path, **env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith("Prefect: ")]
    assert len(lines) == 1 and words in lines[0] and "Nothing was built or uploaded" in lines[0], out.stderr
    assert not list((tmp_path / "staging").rglob("*.parquet"))
    assert not UPLOADS & set(hub.stats.requests)
    assert hub.head("dataset", name) is None  # no empty repo left behind


def test_the_test_hub_takes_the_per_commit_limits_hubpress_checks(hub):
    """The test Hub's per-commit limits default to the figures hubpress checks against, and a raw
    commit over one is refused with the Hub's status and an error body huggingface_hub reads."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from hubpress.settings import Settings
    from hubpress.targets.limits import Limits
    from tests.hubserver.limits import HubLimits

    defaults, ours = HubLimits(), Limits.from_settings(Settings())
    figures = (defaults.lfs_files_per_commit, defaults.regular_bytes_per_commit)
    assert figures == (ours.lfs_files_per_commit, ours.regular_bytes_per_commit) == (25_000, 1_000_000_000)
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    name = f"alice/lim-{uuid.uuid4().hex[:8]}"
    api.create_repo(name, repo_type="dataset")
    head = hub.head("dataset", name)
    binary = [CommitOperationAdd(f"b{i}.bin", b"\0" + os.urandom(100)) for i in range(3)]
    with server_limits(hub, lfs_files_per_commit=2, regular_bytes_per_commit=100):
        with pytest.raises(HfHubHTTPError, match="adds 3 LFS files: at most 2 are allowed") as lfs:
            api.create_commit(name, binary, commit_message="m", repo_type="dataset")
        with pytest.raises(HfHubHTTPError, match="101 bytes of regular files: at most 100") as regular:
            api.create_commit(
                name, [CommitOperationAdd("notes.txt", b"n" * 101)], commit_message="m", repo_type="dataset"
            )
        api.create_commit(name, binary[:2], commit_message="at the limit", repo_type="dataset")
    assert (lfs.value.response.status_code, regular.value.response.status_code) == (400, 413)
    assert "Bad request for commit endpoint" in str(lfs.value)  # the message huggingface_hub shows
    assert [c["title"] for c in hub.commit_history("dataset", name)][:2] == ["at the limit", "initial commit"]
    assert hub.head("dataset", name) != head


def _staged(tmp_path, count: int):
    import hashlib

    from hubpress.targets.plan import StagedFile, git_blob_oid

    staged = []
    for i in range(count):
        data = b"\0" + os.urandom(200)
        (tmp_path / f"w{i}.bin").write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        staged.append(
            StagedFile(f"w{i}.bin", sha, len(data), str(tmp_path / f"w{i}.bin"), git_blob_oid(data))
        )
    return staged


@pytest.mark.parametrize("ours", [3, 25_000], ids=["same-limits", "hubpress-unaware"])
def test_a_commit_over_the_hubs_per_commit_limit_is_refused_by_hubpress_before_any_upload(
    hub, tmp_path, monkeypatch, ours
):
    """With its limit equal to the Hub's, hubpress refuses before any upload, with the numbers and the
    way out; a hubpress that believed the Hub takes more is refused by the Hub at the same count."""
    from hubpress.errors import HubLimitError, PublishError
    from hubpress.settings import Settings
    from hubpress.targets.publish import open_target, publish_files

    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    name = f"alice/lim-{uuid.uuid4().hex[:8]}"
    target = open_target(name, "model", Settings(hub_lfs_files_per_commit=ours))
    with server_limits(hub, lfs_files_per_commit=3):
        if ours == 3:  # refused before the repo is created: no empty repo left behind
            with pytest.raises(HubLimitError):
                publish_files(target, _staged(tmp_path, 4), target_name=name, message="four")
            assert hub.head("model", name) is None and "repo_create" not in hub.stats.requests
        done = publish_files(target, _staged(tmp_path, 3), target_name=name, message="three")
        assert done.commit == hub.head("model", name)  # at the limit: both take it
        hub.reset_stats()
        expected = HubLimitError if ours == 3 else PublishError
        with pytest.raises(expected) as refused:
            publish_files(target, _staged(tmp_path, 4), target_name=name, message="four")
    if ours == 3:
        assert str(refused.value).startswith("The commit would add 4 LFS files; the Hub allows 3 per commit.")
        assert "--max-shard-size" in str(refused.value)
        assert not UPLOADS & set(hub.stats.requests)
    else:
        message = str(refused.value)
        assert "HTTP 400" in message and "adds 4 LFS files: at most 3 are allowed" in message
    assert hub.head("model", name) == done.commit


def test_the_shard_writer_keeps_to_the_viewers_limits(tmp_path):
    """What the writer makes: at most 100 rows of images per row group, row groups far under 286
    MiB, a page index on every column; and the check itself can fail."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hubpress.shards.shards import plan_shards, write_shard
    from tests.shard_helpers import make_sample

    samples = [make_sample(tmp_path / "src", f"s{i:04d}") for i in range(230)]
    plans = plan_shards("train", samples, "500MB")
    built = [write_shard(p, tmp_path / "out") for p in plans]
    meta = pq.ParquetFile(built[0].local_path).metadata
    assert (
        sum(b.num_rows for b in built) == 230
        and max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 100
    )
    assert [problem for b in built for problem in parquet_problems(b.path_in_repo, b.local_path)] == []
    bad = tmp_path / "bad.parquet"
    images = pa.array(
        [{"bytes": b"x", "path": None}] * 150, pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    )
    pq.write_table(pa.table({"image": images}), bad, row_group_size=150)
    problems = parquet_problems("bad.parquet", bad)
    assert any("150 rows of images" in p for p in problems) and any("no page index" in p for p in problems)


def test_shards_in_subfolders_are_hubpress_own_and_may_be_deleted_when_no_longer_wanted():
    from hubpress.targets.ownership import owned_files
    from hubpress.targets.plan import RemoteFile

    sha = "ab" * 32
    names = ["data/train/3/train-0123456789abcdef.parquet", "data/train-0123456789abcdef.parquet"]
    others = ["data/train/notes/x.parquet", "data/train/3/../../x.parquet", "notes/train/3/x.parquet"]
    remote = {p: RemoteFile(p, 1, sha) for p in names + others}
    manifest = json.dumps({"files": {p: {"sha256": sha} for p in names + others}})
    assert owned_files(manifest, remote).deletable == frozenset(names)
