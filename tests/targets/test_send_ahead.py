"""Files staged on S3 reach the Hub one local copy at a time (hubpress.targets.send_ahead): the
temporary folder never holds more copies than there are upload workers, each copy goes as soon
as the Hub has it, and the commit still holds every file, once."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from pathlib import Path

import pytest

from hubpress.settings import Settings
from hubpress.targets.plan import StagedFile, git_blob_oid
from hubpress.targets.publish import open_target, publish_files


class Copies:
    """A materialiser as the S3 staging one works (a copy per file into a scratch folder), counting
    how many copies are alive at once."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.lock = threading.Lock()
        self.alive: set[str] = set()
        self.most = 0
        self.discarded: list[str] = []

    def materialise(self, staged: StagedFile) -> str:
        dest = self.scratch / staged.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(staged.source, dest)
        with self.lock:
            self.alive.add(str(dest))
            # Large files only: small ones travel inside the commit and keep their copy for it.
            self.most = max(self.most, sum(p.endswith(".parquet") for p in self.alive))
        return str(dest)

    def discard(self, path: str) -> None:
        os.unlink(path)
        with self.lock:
            self.alive.discard(path)
            self.discarded.append(path)


def _stage(tmp: Path, path: str, data: bytes) -> StagedFile:
    src = tmp / "staged" / path.replace("/", "__")
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(data)
    return StagedFile(path, hashlib.sha256(data).hexdigest(), len(data), str(src), git_blob_oid(data))


@pytest.mark.lfs  # and on the LFS path (HF_HUB_DISABLE_XET=1, a Hub without Xet)
def test_copies_from_s3_staging_are_sent_and_removed_two_at_a_time(hub, tmp_path, write_token):
    name = f"alice/ahead-{uuid.uuid4().hex[:8]}"
    target = open_target(name, "dataset", Settings(hub_max_concurrency=2))
    shards = [_stage(tmp_path, f"data/train-{i:02d}.parquet", os.urandom(120_000)) for i in range(7)]
    card = _stage(tmp_path, "README.md", b"---\nlicense: mit\n---\n# ours\n")
    copies = Copies(tmp_path / "scratch")

    out = publish_files(
        target,
        [*shards, card],
        target_name=name,
        message="ours",
        materialise=copies.materialise,
        discard=copies.discard,
    )

    assert out.commit and hub.head("dataset", name) == out.commit
    for f in [*shards, card]:
        assert hashlib.sha256(hub.read_file("dataset", name, f.path)).hexdigest() == f.sha256
    # Never more shard copies than upload workers; each went once the Hub had it.
    assert 1 <= copies.most <= 2, copies.most
    assert sorted(Path(p).name for p in copies.discarded) == sorted(Path(f.path).name for f in shards)
    # The card travels inside the commit (a regular file): its copy is kept for it, not discarded.
    assert copies.alive == {str(copies.scratch / "README.md")}
    assert out.to_dict()["uploaded_bytes"] == sum(f.size for f in [*shards, card])
    assert [c["title"] for c in hub.commit_history("dataset", name)] == ["ours", "initial commit"]


def test_without_discard_every_upload_is_materialised_as_before(hub, tmp_path, write_token):
    """Local staging and weights on disk: the files are where they are, nothing is removed."""
    name = f"alice/ahead-{uuid.uuid4().hex[:8]}"
    target = open_target(name, "dataset", Settings(hub_max_concurrency=2))
    shards = [_stage(tmp_path, f"data/train-{i:02d}.parquet", os.urandom(60_000)) for i in range(4)]
    copies = Copies(tmp_path / "scratch")
    out = publish_files(target, shards, target_name=name, message="ours", materialise=copies.materialise)
    assert out.commit and copies.most == 4 and not copies.discarded
    assert all(Path(f.source).exists() for f in shards)


def test_a_copy_that_fails_stops_the_copies_not_begun(hub, tmp_path, write_token):
    """One staged file that cannot be copied (a damaged stage, S3 down) ends the publish: the
    files after it are neither copied from staging nor sent (a first publish's terabyte is not
    moved for a commit that cannot happen), and nothing is committed."""
    from hubpress.errors import SourceError

    name = f"alice/ahead-{uuid.uuid4().hex[:8]}"
    target = open_target(name, "dataset", Settings(hub_max_concurrency=1))
    shards = [_stage(tmp_path, f"data/train-{i:02d}.parquet", os.urandom(60_000)) for i in range(6)]
    copies = Copies(tmp_path / "scratch")
    asked: list[str] = []

    def materialise(staged: StagedFile) -> str:
        asked.append(staged.path)
        if staged.path == shards[1].path:
            raise SourceError(f"{staged.path} does not match its recorded sha256")
        return copies.materialise(staged)

    with pytest.raises(SourceError, match="train-01"):
        publish_files(
            target, shards, target_name=name, message="ours", materialise=materialise, discard=copies.discard
        )
    assert asked == [shards[0].path, shards[1].path]
    assert [c["title"] for c in hub.commit_history("dataset", name)] == ["initial commit"]


def test_an_upload_that_fails_stops_the_uploads_not_begun():
    """The commit's own upload step (files not sent ahead) ends at its first failed file too: the
    files queued behind it are not sent for a commit that will not be made."""
    from huggingface_hub import CommitOperationAdd

    from hubpress.targets.hub_upload import upload_all

    ops = [CommitOperationAdd(f"data/train-{i:02d}.parquet", os.urandom(1000)) for i in range(6)]
    sent: list[str] = []

    def send(op) -> None:
        sent.append(op.path_in_repo)
        if op is ops[1]:
            raise RuntimeError("the Hub refused data/train-01.parquet")

    with pytest.raises(RuntimeError, match="train-01"):
        upload_all(send, ops, workers=1)
    assert sent == [ops[0].path_in_repo, ops[1].path_in_repo]


def test_a_local_directory_target_holds_one_copy_from_s3_staging_at_a_time(tmp_path):
    """A local directory target copies each file into its new version itself: from S3 staging,
    each copy is made when the commit comes to it and removed when it comes to the next, so the
    temporary folder never holds the whole dataset beside the target."""
    target = open_target(str(tmp_path / "out"), "dataset", Settings(hub_max_concurrency=2))
    shards = [_stage(tmp_path, f"data/train-{i:02d}.parquet", os.urandom(30_000)) for i in range(7)]
    card = _stage(tmp_path, "README.md", b"---\nlicense: mit\n---\n# ours\n")
    copies = Copies(tmp_path / "scratch")

    out = publish_files(
        target,
        [*shards, card],
        target_name=str(tmp_path / "out"),
        message="ours",
        materialise=copies.materialise,
        discard=copies.discard,
    )

    assert out.commit
    for f in [*shards, card]:
        assert hashlib.sha256((tmp_path / "out" / f.path).read_bytes()).hexdigest() == f.sha256
    assert copies.most == 1, copies.most
    assert copies.alive == set()  # the last one too, once the commit is done with it
