"""The repo's manifest.json is not trusted for deletions: a publish deletes only files hubpress can
prove it wrote (its own shard names, whose content in the repo is the sha256 its manifest
recorded). A collaborator's files listed in the manifest survive; `../` and absolute names in the
manifest or in the repo's listing are refused in one line, and the repo stays publishable.

Through the CLI against the test Hub; the hostile listing is a commit written straight into the
test Hub's store (as a Hub with a hostile proxy in front would answer it)."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from hubpress.targets.ownership import owned_files
from hubpress.targets.plan import RemoteFile
from hubpress.testdata.synth import write_dataset
from tests.conftest import HUB_URL, WRITE_TOKEN, run_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")

HOSTILE_NAMES = [
    "../outside.txt",
    "../../etc/hostname",
    "/etc/hostname",
    "data/../../outside.parquet",
    "data/%2e%2e/%2e%2e/x.parquet",
    "data\\..\\x.parquet",
    "data//x.parquet",
    "./data/x.parquet",
    "C:/x.parquet",
    "file:///etc/hostname",
]


def _commit_files(repo: str, files: dict[str, bytes], message: str) -> str:
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=HUB_URL, token=WRITE_TOKEN)
    ops = [CommitOperationAdd(path, data) for path, data in files.items()]
    return api.create_commit(repo, ops, commit_message=message, repo_type="dataset").oid


def _manifest(hub, repo: str) -> dict:
    return json.loads(hub.read_file("dataset", repo, "manifest.json"))


def _with_files(manifest: dict, extra: dict[str, bytes]) -> bytes:
    files = dict(manifest["files"])
    for path, data in extra.items():
        files[path] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    return json.dumps({**manifest, "files": files}, indent=2).encode()


def _published(tmp_path, name: str, samples: int, seed: int) -> tuple[str, str]:
    """A dataset published by the CLI to a new repo: (its source folder, the repo id)."""
    src = tmp_path / "src"
    write_dataset(src, samples=samples, image_size=16, seed=seed)
    repo = f"alice/{name}-{uuid.uuid4().hex[:8]}"
    code, _, err = run_cli("publish-dataset", str(src), repo)
    assert code == 0, err
    return str(src), repo


def _hostile_listing_commit(hub, repo: str, names: dict[str, bytes], manifest: bytes) -> None:
    """A commit on main whose tree also holds `names` (which no Hub API call would accept)."""
    from tests.hubserver.gitobjects import MODE_FILE, Commit, TreeEntry, build_trees, decode_tree, encode_tree

    store = hub.store.get("dataset", repo)
    head = hub.head("dataset", repo)
    files = dict(store.snapshot(head).files)
    files["manifest.json"] = store.write_object("blob", manifest)
    odd = {n: store.write_object("blob", d) for n, d in names.items()}
    nested = {n: oid for n, oid in odd.items() if not n.startswith("/") and "//" not in n}
    root, trees = build_trees({**files, **nested})
    for body in trees.values():
        store.write_object("tree", body)
    flat = [n for n in odd if n not in nested]  # names no nesting can spell: one root entry each
    if flat:
        entries = decode_tree(store.read_object(root)[1]) + [TreeEntry(MODE_FILE, n, odd[n]) for n in flat]
        root = store.write_object("tree", encode_tree(entries))
    commit = Commit(tree=root, parents=(head,), author="bob", timestamp=1, title="odd names", message="")
    store.write_ref("refs/heads/main", store.write_object("commit", commit.encode()))


USERS_OWN_PARQUET = ["data/train-00000-of-00001.parquet", "data/mine.parquet", "data/train/3/x.parquet"]
LFS_PARQUET = {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}


@pytest.mark.parametrize(
    "theirs",
    [
        {**LFS_PARQUET, "notes/keep.md": b"keep\n"},
        # A manifest entry with the right sha256 and size proves nothing about a file hubpress did
        # not name: the user's own parquet files (the name `datasets` gives, any other) survive.
        {**LFS_PARQUET, **{name: f"PAR1 the user's own rows: {name}".encode() for name in USERS_OWN_PARQUET}},
    ],
    ids=["notes", "users-parquet"],
)
def test_a_collaborators_files_in_the_manifest_survive_an_unchanged_publish(
    hub, write_token, tmp_path, theirs
):
    src, repo = _published(tmp_path, "owned", samples=4, seed=5)
    manifest = _with_files(_manifest(hub, repo), theirs)
    _commit_files(repo, {**theirs, "manifest.json": manifest}, "a collaborator's notes")

    code, out, err = run_cli("publish-dataset", src, repo, "--json")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["deleted_files"] == [] and result["plan"]["deleted"] == []
    for path, data in theirs.items():
        assert hub.read_file("dataset", repo, path) == data


@pytest.mark.parametrize("dry_run", [True, False])
def test_hostile_names_in_the_manifest_and_the_listing_are_refused_in_one_line(
    hub, write_token, tmp_path, dry_run
):
    src, repo = _published(tmp_path, "hostile-listing", samples=4, seed=6)
    odd = {name: f"not ours: {name}\n".encode() for name in HOSTILE_NAMES}
    _hostile_listing_commit(hub, repo, odd, _with_files(_manifest(hub, repo), odd))
    head = hub.head("dataset", repo)

    args = ["publish-dataset", src, repo, *(["--dry-run"] if dry_run else [])]
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    assert "Traceback" not in err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["plan"]["deleted"] == []
    refused = "\n".join(result["refused_names"])
    assert all("\n" not in line for line in result["refused_names"])
    for name in HOSTILE_NAMES:
        assert repr(name) in refused, name
    if dry_run:
        assert hub.head("dataset", repo) == head
    # Nothing of the odd names was deleted, and the repo takes the next publish. (The test Hub
    # rebuilds a commit's trees from paths, which cannot hold an absolute one: it drops those.)
    assert result["deleted_files"] == []
    files = hub.commit_history("dataset", repo)[0]["files"]
    assert {n for n in HOSTILE_NAMES if not n.startswith("/")} <= set(files)
    code, out, err = run_cli("publish-dataset", src, repo)
    assert code == 0, err
    if dry_run:  # a real publish follows the dry run: the refusals are warnings, one line each
        warnings = [line for line in err.splitlines() if line.startswith("warning:")]
        assert any("'../outside.txt'" in line for line in warnings)
    else:  # the real run recorded its publish: unchanged since, nothing to do
        assert "up to date" in out or "unchanged" in out


def test_only_own_names_with_the_recorded_content_are_deletable():
    sha = "a" * 64
    manifest = json.dumps(
        {
            "files": {
                "data/train-0123456789abcdef.parquet": {"sha256": sha},  # ours, unchanged: deletable
                "data/train-edited.parquet": {"sha256": sha},  # content changed since: kept
                "data/train-gone.parquet": {"sha256": sha},  # not in the repo any more
                "notes/keep.md": {"sha256": sha},  # not of our naming: kept
                ".gitattributes": {"sha256": sha},
                "data/small.parquet": {"sha256": sha},  # no sha256 in the listing: unproven
                "../outside.parquet": {"sha256": sha},
            }
        }
    )
    remote = {
        "data/train-0123456789abcdef.parquet": RemoteFile("data/train-0123456789abcdef.parquet", 1, sha),
        "data/train-edited.parquet": RemoteFile("data/train-edited.parquet", 1, "b" * 64),
        "notes/keep.md": RemoteFile("notes/keep.md", 1, sha),
        ".gitattributes": RemoteFile(".gitattributes", 1, sha),
        "data/small.parquet": RemoteFile("data/small.parquet", 1, None, git_oid="c" * 40),
    }
    ownership = owned_files(manifest, remote)
    assert ownership.deletable == {"data/train-0123456789abcdef.parquet"}
    assert len(ownership.refused) == 1 and "'../outside.parquet'" in ownership.refused[0]
    assert owned_files("not json", remote).deletable == frozenset()
    assert owned_files(json.dumps({"files": "x"}), remote).deletable == frozenset()


def test_a_small_file_read_from_the_hub_must_have_the_listed_blob_id(hub, write_token, tmp_path):
    """manifest.json and README.md are read by blob id: bytes that are not what the listing names
    are refused in one line and not kept for later runs."""
    from hubpress.errors import PublishError
    from hubpress.settings import get_settings
    from hubpress.targets.publish import open_target

    repo = f"alice/blob-check-{uuid.uuid4().hex[:8]}"
    _commit_files_new(repo, {"manifest.json": b'{"files": {}}\n'})
    target = open_target(repo, "dataset", get_settings({"cache_dir": str(tmp_path / "cache")}))
    state = target.state("main")
    listed = state.files["manifest.json"].git_oid
    assert target.read_text("manifest.json", state.head, git_oid=listed) == '{"files": {}}\n'
    with pytest.raises(PublishError, match="git blob id") as info:
        target.read_text("manifest.json", state.head, git_oid="0" * 40)
    assert "\n" not in str(info.value)


def _commit_files_new(repo: str, files: dict[str, bytes]) -> None:
    from huggingface_hub import HfApi

    HfApi(endpoint=HUB_URL, token=WRITE_TOKEN).create_repo(repo, repo_type="dataset")
    _commit_files(repo, files, "first")


def test_a_manifest_key_on_a_file_of_another_name_holds_no_shard():
    """Reuse needs the same proof: a manifest naming a user's parquet with a shard's key, sha256 and
    size would have had that file published as the shard's rows."""
    from hubpress.shards.reuse import target_holdings

    key, sha = "ab" * 32, "cd" * 32
    facts = {"key": key, "sha256": sha, "size": 5, "split": "train", "num_rows": 1, "num_bytes": 5}
    for path in [
        *USERS_OWN_PARQUET,
        "data/train-0123456789abcdef.parquet",
        "data/../train-abababababababab.parquet",
    ]:
        assert target_holdings({"files": {path: facts}}, {path: RemoteFile(path, 5, sha)}) == {}, path
    ours = f"data/train-{key[:16]}.parquet"
    assert set(target_holdings({"files": {ours: facts}}, {ours: RemoteFile(ours, 5, sha)})) == {key}
    ownership = owned_files(json.dumps({"files": {ours: facts}}), {ours: RemoteFile(ours, 6, sha)})
    assert ownership.deletable == frozenset()  # another size than the recorded one: unproven


def test_refused_names_are_said_at_the_terminal_when_the_publish_then_fails(hub, write_token, tmp_path):
    """The refusals are logged once the plan is made, and the console leaves that record out for
    the command's own `warning:` lines, which come from the result. A publish that fails after the
    plan (here: its --tag names another commit) has no result: the refusals were said nowhere at
    the terminal."""
    from huggingface_hub import HfApi

    src, repo = _published(tmp_path, "refused-then-fails", samples=2, seed=8)
    HfApi(endpoint=HUB_URL, token=WRITE_TOKEN).create_tag(repo, tag="v1", repo_type="dataset")
    odd = {"../outside.txt": b"not ours\n"}
    _hostile_listing_commit(hub, repo, odd, _with_files(_manifest(hub, repo), odd))

    code, _, err = run_cli("publish-dataset", src, repo, "--tag", "v1")
    assert code != 0 and "v1" in err and "Traceback" not in err
    assert any("'../outside.txt'" in line for line in err.splitlines()), err
