import pytest

from hubpress.errors import HubLimitError
from hubpress.targets.limits import Limits, check_limits
from hubpress.targets.plan import RemoteFile, StagedFile, git_blob_oid, make_plan


def staged(path, sha, size=10, text=None):
    oid = git_blob_oid(text.encode()) if text is not None else None
    return StagedFile(path=path, sha256=sha, size=size, source=f"/tmp/{path}", git_oid=oid)


def test_git_blob_oid_matches_git():
    # `printf 'hello\n' | git hash-object --stdin`
    assert git_blob_oid(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_plan_classifies_added_changed_unchanged_and_deletes_only_owned():
    remote = {
        "data/train-a.parquet": RemoteFile("data/train-a.parquet", 10, "aaa"),
        "data/train-old.parquet": RemoteFile("data/train-old.parquet", 7, "old"),
        "notes/user-file.txt": RemoteFile("notes/user-file.txt", 3, None, "x"),
        "README.md": RemoteFile("README.md", 5, None, git_blob_oid(b"card")),
    }
    files = [
        staged("data/train-a.parquet", "aaa"),
        staged("data/train-b.parquet", "bbb", 20),
        staged("README.md", "c", 4, text="card"),
        staged("manifest.json", "m", 2, text="{}"),
    ]
    owned = {"data/train-a.parquet", "data/train-old.parquet", "manifest.json"}
    plan = make_plan("org/ds", "main", "head1", files, remote, owned)
    assert plan.summary() == {
        "added": ["data/train-b.parquet", "manifest.json"],
        "changed": [],
        "unchanged": ["README.md", "data/train-a.parquet"],
        "deleted": ["data/train-old.parquet"],
    }
    assert plan.upload_bytes == 22
    assert not plan.is_noop


def test_plan_is_noop_when_everything_matches():
    remote = {"w.safetensors": RemoteFile("w.safetensors", 10, "abc")}
    plan = make_plan("org/m", "main", "h", [staged("w.safetensors", "abc")], remote, set())
    assert plan.is_noop and plan.upload_bytes == 0


def test_changed_lfs_file_detected_by_sha256():
    remote = {"w.safetensors": RemoteFile("w.safetensors", 10, "abc")}
    plan = make_plan("org/m", "main", "h", [staged("w.safetensors", "def")], remote, set())
    assert [c.kind for c in plan.changes] == ["changed"]


def test_limits_folder_count_names_the_limit_and_fix():
    files = [staged(f"data/train-{i:05d}.parquet", str(i)) for i in range(11)]
    plan = make_plan("org/ds", "main", None, files, {}, set())
    with pytest.raises(HubLimitError, match=r"'data' would hold 11 files.*--max-shard-size"):
        check_limits(plan, set(), Limits(files_per_folder=10))


def test_limits_count_files_that_stay_in_the_folder():
    plan = make_plan("org/ds", "main", "h", [staged("data/new.parquet", "n")], {}, set())
    existing = {f"data/{i}.parquet" for i in range(10)}
    with pytest.raises(HubLimitError):
        check_limits(plan, existing, Limits(files_per_folder=10))
    check_limits(plan, existing, Limits(files_per_folder=11))


def test_limits_lfs_files_and_regular_payload_per_commit():
    many = [staged(f"d{i}/x.parquet", str(i)) for i in range(4)]
    with pytest.raises(HubLimitError, match="LFS files"):
        check_limits(make_plan("r", "main", None, many, {}, set()), set(), Limits(lfs_files_per_commit=3))
    text = [staged("a.json", "1", 600), staged("b.json", "2", 600)]
    with pytest.raises(HubLimitError, match="regular"):
        check_limits(
            make_plan("r", "main", None, text, {}, set()), set(), Limits(regular_bytes_per_commit=1000)
        )
    with pytest.raises(HubLimitError, match="refuses files over"):
        check_limits(
            make_plan("r", "main", None, [staged("big.bin", "1", 101)], {}, set()),
            set(),
            Limits(file_bytes=100),
        )
