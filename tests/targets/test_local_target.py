import os
from pathlib import Path

import pytest

from hubpress.errors import PublishError
from hubpress.targets.base import CommitConflict
from hubpress.targets.local import LocalDir
from hubpress.targets.plan import make_plan
from hubpress.targets.publish import publish_files
from tests.shard_helpers import staged_file, staged_manifest

stage = staged_file
manifest = staged_manifest
# Shards of hubpress's naming (<split>-<16 hex>.parquet): the only files a publish deletes.
A, B, C = (
    "data/train-00000000000000aa.parquet",
    "data/train-00000000000000bb.parquet",
    "data/train-00000000000000cc.parquet",
)


def test_publish_then_republish_is_a_noop_and_owned_files_are_deleted(tmp_path):
    target = LocalDir(tmp_path / "out")
    first = [stage(tmp_path, A, b"A"), stage(tmp_path, B, b"B")]
    first.append(manifest(tmp_path, [A, B]))
    out = publish_files(target, first, target_name="out", message="first", card=lambda old: "# card\n")
    assert out.commit and sorted(out.uploaded_files) == [
        "README.md",
        A,
        B,
        "manifest.json",
    ]
    assert (tmp_path / "out").is_symlink()
    assert (tmp_path / "out" / A).read_bytes() == b"A"

    # A file the user put there is not hubpress's: it must survive every later publish.
    user_version = Path(os.path.realpath(tmp_path / "out"))
    again = publish_files(target, first, target_name="out", message="again", card=lambda old: "# card\n")
    assert again.commit is None and again.uploaded_bytes == 0

    second = [stage(tmp_path, A, b"A"), stage(tmp_path, C, b"C")]
    second.append(manifest(tmp_path, [A, C]))
    out2 = publish_files(target, second, target_name="out", message="second", card=lambda old: "# card\n")
    assert out2.plan.summary()["deleted"] == [B]
    assert sorted(out2.uploaded_files) == [C, "manifest.json"]
    assert not (tmp_path / "out" / B).exists()
    assert user_version != Path(os.path.realpath(tmp_path / "out"))


def test_user_files_and_card_edits_survive(tmp_path):
    target = LocalDir(tmp_path / "out")
    files = [stage(tmp_path, "w.bin", b"W"), manifest(tmp_path, ["w.bin"])]
    publish_files(target, files, target_name="out", message="m", card=lambda old: (old or "") + "gen\n")
    # The user adds a file by publishing it through another tool: emulate with a plan of our own.
    extra = stage(tmp_path, "notes.txt", b"mine")
    plan = make_plan("out", "main", target.state("main").head, [extra], target.state("main").files, set())
    target.commit(plan, {"notes.txt": extra}, {"notes.txt": extra.source}, "user")
    files2 = [stage(tmp_path, "w.bin", b"W2"), manifest(tmp_path, ["w.bin"])]
    out = publish_files(target, files2, target_name="out", message="m2", card=lambda old: "gen\n")
    assert "notes.txt" not in out.plan.summary()["deleted"]
    assert (tmp_path / "out" / "notes.txt").read_bytes() == b"mine"


def test_stale_parent_is_refused(tmp_path):
    target = LocalDir(tmp_path / "out")
    f = stage(tmp_path, "a.txt", b"1")
    plan = make_plan("out", "main", None, [f], {}, set())
    target.commit(plan, {"a.txt": f}, {"a.txt": f.source}, "first")
    stale = make_plan("out", "main", None, [stage(tmp_path, "a.txt", b"2")], {}, set())
    with pytest.raises(CommitConflict):
        target.commit(stale, {}, {}, "second")


def test_plain_directory_is_adopted_without_losing_its_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    target = LocalDir(out)
    publish_files(target, [stage(tmp_path, "x.bin", b"X")], target_name="out", message="m")
    assert out.is_symlink()
    assert (out / "keep.txt").read_text() == "user data" and (out / "x.bin").read_bytes() == b"X"


def test_local_target_refuses_pull_requests(tmp_path):
    with pytest.raises(PublishError, match="pull requests"):
        publish_files(
            LocalDir(tmp_path / "o"),
            [stage(tmp_path, "a", b"a")],
            target_name="o",
            message="m",
            create_pr=True,
        )


def test_tags_never_move(tmp_path):
    target = LocalDir(tmp_path / "out")
    out = publish_files(target, [stage(tmp_path, "a", b"1")], target_name="out", message="m", tag="v1")
    assert out.tag_created
    with pytest.raises(PublishError, match="already exists"):
        publish_files(target, [stage(tmp_path, "a", b"2")], target_name="out", message="m", tag="v1")


def test_publishing_leaves_no_scratch_directory_behind(tmp_path, monkeypatch):
    # The merged card is written to a scratch directory; it must go when the publish ends,
    # whether it committed, found nothing to do, or failed.
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    target = LocalDir(tmp_path / "out")
    files = [stage(tmp_path, "data/a.parquet", b"A"), manifest(tmp_path, ["data/a.parquet"])]
    card = lambda old: "# card\n"  # noqa: E731
    publish_files(target, files, target_name="out", message="first", card=card, tag="v1")
    publish_files(target, files, target_name="out", message="again", card=card, tag="v1")
    changed = [stage(tmp_path, "data/a.parquet", b"A2"), manifest(tmp_path, ["data/a.parquet"])]
    with pytest.raises(PublishError, match="Tag 'v1' already exists"):  # tags never move
        publish_files(target, changed, target_name="out", message="third", card=card, tag="v1")
    assert list((tmp_path / "tmp").iterdir()) == []
