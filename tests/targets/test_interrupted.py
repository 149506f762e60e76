"""After Ctrl-C, only a repo this run created and left as the Hub made it is deleted; every other
repo is kept and its state said (hubpress.targets.interrupted), against the test Hub."""

from __future__ import annotations

import uuid

import pytest
from huggingface_hub import HfApi

from hubpress.settings import get_settings
from hubpress.targets import interrupted
from hubpress.targets.publish import open_target
from tests.conftest import WRITE_TOKEN


@pytest.fixture
def notes():
    interrupted.forget()
    yield
    interrupted.forget()


def _repo(name: str):
    return open_target(f"alice/{name}-{uuid.uuid4().hex[:8]}", "dataset", get_settings(), token=WRITE_TOKEN)


def test_only_an_untouched_repo_this_run_created_is_deleted(hub, notes):
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    fresh, filled, older = _repo("fresh"), _repo("filled"), _repo("older")
    api.create_repo(older.repo_id, repo_type="dataset", private=True)
    for repo in (fresh, filled):
        assert repo.ensure_exists(private=True)  # noted as created by this run
    assert not older.ensure_exists(private=True)
    api.upload_file(
        path_or_fileobj=b"someone's file",
        path_in_repo="notes.txt",
        repo_id=filled.repo_id,
        repo_type="dataset",
    )

    said = interrupted.after_interrupt()

    assert hub.head("dataset", fresh.repo_id) is None
    assert hub.head("dataset", filled.repo_id) is not None
    assert hub.head("dataset", older.repo_id) is not None
    assert said == [
        f"nothing was committed; the empty repo {fresh.repo_id} (dataset) this run had created was deleted",
        f"{filled.repo_id} (dataset), which this run created, holds more than the Hub put there, so it was kept",
        f"nothing was committed to {older.repo_id} (dataset); it is as it was before this run",
    ]


def test_a_repo_a_commit_was_sent_to_is_kept_and_said_so(hub, notes):
    repo = _repo("sent")
    assert repo.ensure_exists(private=True)
    interrupted.commit_sent(repo)  # as hub_commit does just before the request leaves
    (said,) = interrupted.after_interrupt()
    assert hub.head("dataset", repo.repo_id) is not None
    assert said.startswith(f"{repo.repo_id} (dataset) may hold this run's commit")


def test_what_the_hub_creates():
    shape = interrupted.RepoShape
    assert interrupted.holds_only_what_the_hub_creates(
        shape(frozenset({".gitattributes"}), 1, frozenset("a"), 0)
    )
    assert interrupted.holds_only_what_the_hub_creates(shape(frozenset(), 1, frozenset("a"), 0))
    assert not interrupted.holds_only_what_the_hub_creates(
        shape(frozenset({"README.md"}), 1, frozenset("a"), 0)
    )
    assert not interrupted.holds_only_what_the_hub_creates(shape(frozenset(), 2, frozenset("a"), 0))
    assert not interrupted.holds_only_what_the_hub_creates(shape(frozenset(), 1, frozenset("ab"), 0))
    assert not interrupted.holds_only_what_the_hub_creates(shape(frozenset(), 1, frozenset("a"), 1))


def test_a_local_directory_target_is_said_as_it_is(tmp_path, notes):
    """A local target changes in one step: before its commit it is as it was, once the commit began
    it shows one complete version (the old or the new), and after it, this run's."""
    import hashlib

    from hubpress.targets.plan import StagedFile, git_blob_oid
    from hubpress.targets.publish import publish_files

    where = tmp_path / "out"
    target = open_target(str(where), "dataset", get_settings())
    assert interrupted.after_interrupt() == [
        f"nothing was written to local directory {where}; it is as it was before this run"
    ]
    data = b"a shard's bytes"
    (tmp_path / "shard").write_bytes(data)
    staged = StagedFile(
        "data/a.bin", hashlib.sha256(data).hexdigest(), len(data), str(tmp_path / "shard"), git_blob_oid(data)
    )
    assert publish_files(target, [staged], target_name=str(where), message="ours").commit
    assert interrupted.after_interrupt() == [f"local directory {where} holds this run's complete version"]

    interrupted.forget()
    interrupted.opened(target)
    interrupted.commit_sent(target)  # as LocalDir.commit says before it begins to write
    (said,) = interrupted.after_interrupt()
    assert said.startswith(f"local directory {where} shows its previous complete version or this run's")
