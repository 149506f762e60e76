"""The shared publish step against the Hub-protocol server, through the real huggingface_hub."""

import os
import uuid

import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from hubpress.errors import HubAccessError, MissingTokenError
from hubpress.settings import Settings
from hubpress.targets.publish import open_target, publish_files
from tests.conftest import OTHER_WRITE_TOKEN, READ_TOKEN, WRITE_TOKEN
from tests.shard_helpers import staged_file, staged_manifest

stage = staged_file
manifest = staged_manifest
# Shards of hubpress's naming (<split>-<16 hex>.parquet): the only files a publish deletes.
A, B, C = (
    "data/train-00000000000000aa.parquet",
    "data/train-00000000000000bb.parquet",
    "data/train-00000000000000cc.parquet",
)


def repo_name():
    return f"alice/pub-{uuid.uuid4().hex[:8]}"


@pytest.mark.lfs
def test_publish_republish_and_delete_against_the_hub(hub, tmp_path, write_token):
    repo = repo_name()
    target = open_target(repo, "dataset", Settings())
    files = [
        stage(tmp_path, A, os.urandom(2000)),
        stage(tmp_path, B, os.urandom(3000)),
    ]
    files.append(manifest(tmp_path, [A, B]))
    out = publish_files(target, files, target_name=repo, message="first", card=lambda old: "card\n")
    assert out.created_repo and out.commit
    assert hub.head("dataset", repo) == out.commit
    info = HfApi(token=WRITE_TOKEN).dataset_info(repo)
    assert info.private is True  # private unless asked

    hub.reset_stats()
    again = publish_files(target, files, target_name=repo, message="again", card=lambda old: "card\n")
    assert again.commit is None
    assert hub.stats.commits == 0 and hub.stats.upload_bytes == 0

    files2 = [files[0], manifest(tmp_path, [A])]
    out3 = publish_files(target, files2, target_name=repo, message="drop b", card=lambda old: "card\n")
    assert out3.plan.summary()["deleted"] == [B]
    paths = {
        f.path for f in HfApi(token=WRITE_TOKEN).list_repo_tree(repo, repo_type="dataset", recursive=True)
    }
    assert B not in paths and A in paths


def test_someone_elses_commit_between_plan_and_commit_is_kept(hub, tmp_path, write_token):
    repo = repo_name()
    target = open_target(repo, "dataset", Settings())
    publish_files(target, [stage(tmp_path, "a.bin", b"1" * 100)], target_name=repo, message="base")
    other = HfApi(token=WRITE_TOKEN)
    interfered = []

    def interfere(plan):
        if not interfered:  # exactly once, after the first plan is made
            interfered.append(plan.parent_commit)
            other.create_commit(
                repo,
                [CommitOperationAdd("theirs.txt", b"their work")],
                commit_message="someone else",
                repo_type="dataset",
            )

    out = publish_files(
        target, [stage(tmp_path, "a.bin", b"2" * 100)], target_name=repo, message="ours", on_plan=interfere
    )
    assert out.attempts == 2 and out.commit
    history = [c["title"] for c in hub.commit_history("dataset", repo)]
    assert history[:2] == ["ours", "someone else"]
    assert hub.read_file("dataset", repo, "theirs.txt") == b"their work"


def test_a_commits_tree_is_listed_once_and_a_moved_head_is_listed_again(hub, tmp_path, write_token):
    """The publish step plans against the head the plan step listed: a commit never changes, so
    only the head is asked for again, and a head that moved is listed afresh."""
    repo = repo_name()
    target = open_target(repo, "dataset", Settings())
    publish_files(target, [stage(tmp_path, "a.bin", b"1" * 100)], target_name=repo, message="base")
    hub.reset_stats()
    planned = target.state("main")  # as the plan step reads it
    out = publish_files(target, [stage(tmp_path, "a.bin", b"2" * 100)], target_name=repo, message="next")
    assert out.commit and out.plan.parent_commit == planned.head
    assert hub.stats.requests["tree"] == 1
    after = target.state("main")
    assert after.head == out.commit and after.files["a.bin"].sha256 != planned.files["a.bin"].sha256
    assert hub.stats.requests["tree"] == 2


def test_write_without_token_fails_before_any_request(hub, monkeypatch):
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(MissingTokenError):
        open_target(repo_name(), "dataset", Settings())
    assert sum(hub.stats.requests.values()) == 0


def test_read_token_gets_a_clear_403_naming_its_source(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", READ_TOKEN)
    with pytest.raises(HubAccessError) as info:  # refused when the target is opened, before any work
        target = open_target(repo_name(), "dataset", Settings())
        publish_files(target, [stage(tmp_path, "a", b"a")], target_name="x", message="m")
    assert "HF_TOKEN" in str(info.value) and READ_TOKEN not in str(info.value)


def test_bad_token_is_401_without_retries(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    with pytest.raises(HubAccessError) as info:  # refused when the target is opened, before any work
        target = open_target(repo_name(), "dataset", Settings())
        publish_files(target, [stage(tmp_path, "a", b"a")], target_name="x", message="m")
    assert "401" in str(info.value) and "hf_not_a_real_token_123" not in str(info.value)


def test_other_users_private_repo_is_not_found(hub, tmp_path, write_token):
    repo = repo_name()
    publish_files(
        open_target(repo, "dataset", Settings()), [stage(tmp_path, "a", b"a")], target_name=repo, message="m"
    )
    # (now refused when the target is opened: bob's token cannot write in alice's namespace)
    with pytest.raises(HubAccessError, match=r"cannot write dataset repo .*HTTP 403.*'bob' cannot write"):
        # bob cannot see alice's private repo (404 to him), and creating it in alice's namespace is
        # refused as on the Hub (403): hubpress reports the refusal, never bob's write to alice's repo
        publish_files(
            open_target(repo, "dataset", Settings(), token=OTHER_WRITE_TOKEN),
            [stage(tmp_path, "b", b"b")],
            target_name=repo,
            message="m",
        )


def test_rate_limit_is_waited_on_and_reported(hub, tmp_path, write_token):
    repo = repo_name()
    target = open_target(repo, "dataset", Settings())
    hub.arm_fault("commit", "429", count=1, retry_after=1)
    out = publish_files(target, [stage(tmp_path, "a.bin", b"x" * 10)], target_name=repo, message="m")
    assert out.commit and hub.head("dataset", repo) == out.commit
    assert any("rate-limited" in m for m in target.retry_messages)
    assert len(hub.commit_history("dataset", repo)) == 2  # initial commit + ours, no duplicate


def test_tag_and_branch(hub, tmp_path, write_token):
    repo = repo_name()
    target = open_target(repo, "dataset", Settings())
    out = publish_files(
        target, [stage(tmp_path, "a.bin", b"x")], target_name=repo, message="m", revision="dev", tag="v1"
    )
    refs = HfApi(token=WRITE_TOKEN).list_repo_refs(repo, repo_type="dataset")
    assert {b.name for b in refs.branches} >= {"main", "dev"}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", out.commit)]


@pytest.mark.lfs
def test_create_pr_opens_a_pull_request_and_leaves_main_alone(hub, tmp_path, write_token):
    repo = repo_name()
    target = open_target(repo, "dataset", Settings())
    first = publish_files(target, [stage(tmp_path, "a.bin", b"1" * 64)], target_name=repo, message="base")
    out = publish_files(
        target, [stage(tmp_path, "a.bin", b"2" * 64)], target_name=repo, message="proposal", create_pr=True
    )
    assert out.pr_url and "/discussions/" in out.pr_url
    assert hub.head("dataset", repo) == first.commit  # main did not move
    refs = HfApi(token=WRITE_TOKEN).list_repo_refs(repo, repo_type="dataset", include_pull_requests=True)
    assert [p.ref for p in refs.pull_requests] == ["refs/pr/1"]
    assert hub.read_file("dataset", repo, "a.bin", revision="refs/pr/1") == b"2" * 64
