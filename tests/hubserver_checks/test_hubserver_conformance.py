"""The project's Hub-protocol server against the real clients: huggingface_hub and datasets.

Every call goes over HTTP to tests.hubserver (HF_ENDPOINT is set by conftest); nothing is patched.
If these pass, the server answers the way the Hub does for everything hubpress relies on.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import select
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfApi,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.conftest import ORG, OTHER_WRITE_TOKEN, READ_TOKEN, WRITE_TOKEN, XET
from tests.hubserver import HubServer
from tests.hubserver.gitobjects import blob_id

REPO_ROOT = Path(__file__).resolve().parents[2]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def binary(size: int, seed: int = 0) -> bytes:
    """Incompressible, reproducible bytes with a NUL byte up front (so the Hub routes them to LFS)."""
    out = bytearray(b"\0")
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:size])


@pytest.fixture
def api(hub) -> HfApi:
    return HfApi(endpoint=hub.url, token=WRITE_TOKEN)


@pytest.fixture
def repo_name() -> str:
    return f"alice/conf-{uuid.uuid4().hex[:10]}"


def http(
    url: str, method: str = "GET", token: str | None = None, headers: dict | None = None
) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, method=method, headers=dict(headers or {}))
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# ---- repos ------------------------------------------------------------------------------------
def test_create_repo_model_dataset_private_and_exist_ok(api, hub, repo_name):
    url = api.create_repo(repo_name)
    assert url.repo_id == repo_name and url.repo_type == "model"
    again = api.create_repo(repo_name, exist_ok=True)
    assert again.repo_id == repo_name
    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_repo(repo_name)
    assert conflict.value.response.status_code == 409

    dataset = api.create_repo(repo_name, repo_type="dataset", private=True)
    assert dataset.repo_type == "dataset"
    info = api.dataset_info(repo_name)
    assert info.private is True and info.sha == hub.head("dataset", repo_name)
    assert [s.rfilename for s in info.siblings] == [".gitattributes"]
    assert api.model_info(repo_name).private is False
    history = hub.commit_history("model", repo_name)
    assert [c["title"] for c in history] == ["initial commit"]


# ---- uploads ----------------------------------------------------------------------------------
def test_upload_small_regular_file(api, hub, repo_name):
    api.create_repo(repo_name)
    content = b"name: demo\nrows: 3\n"
    info = api.upload_file(path_or_fileobj=content, path_in_repo="config.yaml", repo_id=repo_name)
    assert info.oid == hub.head("model", repo_name)
    assert not hub.is_lfs("model", repo_name, "config.yaml")
    assert hub.read_file("model", repo_name, "config.yaml") == content
    assert hub.stats.requests["lfs_batch"] == 0 and hub.stats.commits == 1
    assert hub.stats.upload_bytes == len(content)
    [entry] = api.get_paths_info(repo_name, ["config.yaml"])
    assert entry.lfs is None and entry.blob_id == blob_id(content) and entry.size == len(content)
    # a small text file still goes through LFS when .gitattributes routes its name there
    api.upload_file(path_or_fileobj=b"not really weights", path_in_repo="w.safetensors", repo_id=repo_name)
    assert hub.is_lfs("model", repo_name, "w.safetensors")


@pytest.mark.lfs_only
def test_upload_12mb_file_goes_through_lfs(api, hub, repo_name, tmp_path):
    api.create_repo(repo_name)
    # text, not binary: only its size (> 10 MB) sends it through LFS
    content = (b"0123456789abcdef" * 65536) * 12
    local = tmp_path / "big.txt"
    local.write_bytes(content)
    api.upload_file(path_or_fileobj=str(local), path_in_repo="big.txt", repo_id=repo_name)
    stats = hub.stats
    assert stats.requests["lfs_batch"] == 1 and stats.requests["lfs_upload"] == 1
    assert stats.upload_bytes == len(content)
    assert hub.is_lfs("model", repo_name, "big.txt")
    [entry] = api.get_paths_info(repo_name, ["big.txt"])
    assert entry.lfs.sha256 == sha256(content) and entry.size == len(content)
    path = hf_hub_download(repo_name, "big.txt", cache_dir=tmp_path / "cache", token=WRITE_TOKEN)
    assert sha256(Path(path).read_bytes()) == sha256(content)


@pytest.mark.lfs_only
def test_multipart_lfs_upload(api, hub, repo_name, tmp_path):
    api.create_repo(repo_name)
    content = binary(2_500_000, seed=7)
    saved = hub.multipart_threshold, hub.multipart_chunk_size
    hub.multipart_threshold, hub.multipart_chunk_size = 1_000_000, 1_000_000
    try:
        api.upload_file(path_or_fileobj=content, path_in_repo="weights.bin", repo_id=repo_name)
    finally:
        hub.multipart_threshold, hub.multipart_chunk_size = saved
    stats = hub.stats
    assert stats.requests["lfs_upload"] == 3  # three numbered parts
    assert stats.requests["lfs_complete"] == 1
    assert hub.read_file("model", repo_name, "weights.bin") == content
    path = hf_hub_download(repo_name, "weights.bin", cache_dir=tmp_path, token=WRITE_TOKEN)
    assert Path(path).read_bytes() == content


def test_upload_folder(api, hub, repo_name, tmp_path):
    api.create_repo(repo_name, repo_type="dataset")
    folder = tmp_path / "folder"
    (folder / "images").mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# Demo\n")
    (folder / "images" / "a.png").write_bytes(binary(2048, seed=1))
    (folder / "images" / "b.png").write_bytes(binary(4096, seed=2))
    (folder / "meta.jsonl").write_text('{"file": "images/a.png"}\n{"file": "images/b.png"}\n')
    api.upload_folder(folder_path=folder, repo_id=repo_name, repo_type="dataset")
    assert hub.stats.commits == 1
    files = sorted(api.list_repo_files(repo_name, repo_type="dataset"))
    assert files == [".gitattributes", "README.md", "images/a.png", "images/b.png", "meta.jsonl"]
    assert hub.is_lfs("dataset", repo_name, "images/a.png")
    assert not hub.is_lfs("dataset", repo_name, "meta.jsonl")


def test_create_commit_additions_deletions_and_parent_commit(api, hub, repo_name):
    api.create_repo(repo_name)
    first = api.create_commit(
        repo_name,
        operations=[
            CommitOperationAdd("keep.txt", b"keep"),
            CommitOperationAdd("old/one.txt", b"one"),
            CommitOperationAdd("old/two.bin", binary(1000, seed=3)),
        ],
        commit_message="Add files",
        commit_description="first batch",
    )
    second = api.create_commit(
        repo_name,
        operations=[
            CommitOperationDelete("old/"),
            CommitOperationAdd("new.txt", b"new"),
            CommitOperationCopy("keep.txt", "copy-of-keep.txt"),
        ],
        commit_message="Replace old",
        parent_commit=first.oid,
    )
    assert sorted(api.list_repo_files(repo_name)) == [
        ".gitattributes",
        "copy-of-keep.txt",
        "keep.txt",
        "new.txt",
    ]
    history = hub.commit_history("model", repo_name)
    assert [c["id"] for c in history[:2]] == [second.oid, first.oid]
    assert history[0]["parents"] == [first.oid]
    assert history[1]["message"] == "first batch"

    with pytest.raises(HfHubHTTPError) as stale:
        api.create_commit(
            repo_name,
            operations=[CommitOperationAdd("late.txt", b"late")],
            commit_message="Based on a stale head",
            parent_commit=first.oid,
        )
    assert stale.value.response.status_code == 412
    assert hub.head("model", repo_name) == second.oid

    with pytest.raises(EntryNotFoundError):
        api.create_commit(
            repo_name, operations=[CommitOperationDelete("missing.txt")], commit_message="Delete nothing"
        )
    with pytest.raises(RevisionNotFoundError):
        api.upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_name, revision="no-such-branch"
        )


def test_reupload_of_identical_content_makes_no_commit(api, hub, repo_name, tmp_path):
    api.create_repo(repo_name)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("same text\n")
    (folder / "blob.bin").write_bytes(binary(5000, seed=4))
    api.upload_folder(folder_path=folder, repo_id=repo_name)
    head = hub.head("model", repo_name)
    hub.reset_stats()

    info = api.upload_folder(folder_path=folder, repo_id=repo_name)
    stats = hub.stats
    assert stats.commits == 0 and stats.requests["commit"] == 0
    assert stats.requests["lfs_upload"] == 0
    # LFS: nothing is sent. Xet: the client chunks the file again and finds every chunk stored:
    # only a small shard naming them crosses the wire, never the 5000 bytes of content.
    assert stats.upload_bytes == 0 if not XET else stats.upload_bytes < 5000
    assert info.oid == head == hub.head("model", repo_name)


def test_paths_info_and_tree_report_lfs_sha256(api, hub, repo_name):
    api.create_repo(repo_name)
    lfs_content, text = binary(3000, seed=5), b"plain text\n"
    api.create_commit(
        repo_name,
        operations=[
            CommitOperationAdd("dir/model.bin", lfs_content),
            CommitOperationAdd("dir/readme.txt", text),
        ],
        commit_message="Add",
    )
    by_path = {
        e.path: e for e in api.get_paths_info(repo_name, ["dir/model.bin", "dir/readme.txt", "dir", "nope"])
    }
    assert set(by_path) == {"dir/model.bin", "dir/readme.txt", "dir"}
    lfs_entry = by_path["dir/model.bin"]
    assert lfs_entry.lfs.sha256 == sha256(lfs_content) and lfs_entry.size == len(lfs_content)
    pointer = (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256(lfs_content)}\nsize 3000\n".encode()
    )
    assert lfs_entry.blob_id == blob_id(pointer) and lfs_entry.lfs.pointer_size == len(pointer)
    assert by_path["dir/readme.txt"].lfs is None and by_path["dir/readme.txt"].blob_id == blob_id(text)

    siblings = {s.rfilename: s for s in api.model_info(repo_name, files_metadata=True).siblings}
    assert siblings["dir/model.bin"].lfs.sha256 == sha256(lfs_content)
    assert siblings["dir/readme.txt"].blob_id == blob_id(text) and siblings["dir/readme.txt"].lfs is None

    tree = {e.path: e for e in api.list_repo_tree(repo_name, recursive=True)}
    assert tree["dir/model.bin"].lfs.sha256 == sha256(lfs_content)
    assert type(tree["dir"]).__name__ == "RepoFolder"
    assert [e.path for e in api.list_repo_tree(repo_name, path_in_repo="dir")] == [
        "dir/model.bin",
        "dir/readme.txt",
    ]
    expanded = list(api.list_repo_tree(repo_name, path_in_repo="dir", expand=True))
    assert all(e.last_commit is not None and e.last_commit.title == "Add" for e in expanded)

    # pagination: a small page size forces Link-header pages, the client follows them
    saved = hub.transfer.tree_page_size
    hub.transfer.tree_page_size = 2
    hub.reset_stats()
    try:
        paged = [e.path for e in api.list_repo_tree(repo_name, recursive=True)]
    finally:
        hub.transfer.tree_page_size = saved
    assert paged == sorted(tree) and hub.stats.requests["tree"] == 2


def test_downloads_at_branch_tag_and_commit(api, hub, repo_name, tmp_path):
    api.create_repo(repo_name)
    v1 = api.upload_file(path_or_fileobj=b"version 1", path_in_repo="file.txt", repo_id=repo_name)
    api.upload_file(path_or_fileobj=binary(2000, seed=6), path_in_repo="w.bin", repo_id=repo_name)
    api.create_tag(repo_name, tag="v1", revision=v1.oid)
    api.create_branch(repo_name, branch="dev", revision=v1.oid)
    api.upload_file(path_or_fileobj=b"version 2", path_in_repo="file.txt", repo_id=repo_name)
    api.upload_file(path_or_fileobj=b"dev only", path_in_repo="file.txt", repo_id=repo_name, revision="dev")

    def read(revision: str) -> bytes:
        return Path(
            hf_hub_download(repo_name, "file.txt", revision=revision, cache_dir=tmp_path)
        ).read_bytes()

    assert read("main") == b"version 2"
    assert read("v1") == b"version 1"
    assert read(v1.oid) == b"version 1"
    assert read("dev") == b"dev only"

    at_tag = Path(snapshot_download(repo_name, revision="v1", cache_dir=tmp_path))
    assert sorted(p.name for p in at_tag.iterdir()) == [".gitattributes", "file.txt"]
    at_main = Path(snapshot_download(repo_name, revision="main", cache_dir=tmp_path))
    assert (at_main / "w.bin").read_bytes() == binary(2000, seed=6)
    at_sha = Path(snapshot_download(repo_name, revision=v1.oid, local_dir=tmp_path / "local"))
    assert (at_sha / "file.txt").read_bytes() == b"version 1"

    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_name, "missing.txt", cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_name, "file.txt", revision="no-such-rev", cache_dir=tmp_path)


def test_resolve_headers_and_ranges(api, hub, repo_name):
    api.create_repo(repo_name)
    content = binary(5000, seed=8)
    api.upload_file(path_or_fileobj=content, path_in_repo="data.bin", repo_id=repo_name)
    api.upload_file(path_or_fileobj=b"hello world", path_in_repo="a b.txt", repo_id=repo_name)
    url = f"{hub.url}/{repo_name}/resolve/main/data.bin"
    status, headers, _ = http(url, method="HEAD")
    assert status == 200
    assert headers["X-Repo-Commit"] == hub.head("model", repo_name)
    assert headers["ETag"] == headers["X-Linked-Etag"] == f'"{sha256(content)}"'
    assert headers["X-Linked-Size"] == headers["Content-Length"] == "5000"
    assert headers["Accept-Ranges"] == "bytes" and "X-Xet-Hash" not in headers

    status, headers, body = http(url, headers={"Range": "bytes=100-199"})
    assert status == 206 and body == content[100:200] and headers["Content-Range"] == "bytes 100-199/5000"
    status, _, body = http(url, headers={"Range": "bytes=-10"})
    assert status == 206 and body == content[-10:]
    status, _, _ = http(url, headers={"Range": "bytes=9000-"})
    assert status == 416

    status, headers, body = http(f"{hub.url}/{repo_name}/resolve/main/a%20b.txt")
    assert status == 200 and body == b"hello world" and headers["ETag"] == f'"{blob_id(b"hello world")}"'
    status, headers, _ = http(f"{hub.url}/{repo_name}/resolve/main/none.txt")
    assert status == 404 and headers["X-Error-Code"] == "EntryNotFound"


def test_branches_tags_refs_commits_and_pull_requests(api, hub, repo_name):
    api.create_repo(repo_name)
    first = api.upload_file(
        path_or_fileobj=b"1", path_in_repo="n.txt", repo_id=repo_name, commit_message="one"
    )
    api.create_branch(repo_name, branch="feature/x")
    api.create_branch(repo_name, branch="feature/x", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as exists:
        api.create_branch(repo_name, branch="feature/x")
    assert exists.value.response.status_code == 409
    second = api.upload_file(
        path_or_fileobj=b"2",
        path_in_repo="n.txt",
        repo_id=repo_name,
        revision="feature/x",
        commit_message="two",
    )
    api.create_tag(repo_name, tag="v1.0", revision="feature/x", tag_message="first release")

    refs = api.list_repo_refs(repo_name)
    branches = {b.name: b.target_commit for b in refs.branches}
    assert branches == {"main": first.oid, "feature/x": second.oid}
    assert [(t.name, t.ref, t.target_commit) for t in refs.tags] == [("v1.0", "refs/tags/v1.0", second.oid)]

    commits = api.list_repo_commits(repo_name, revision="feature/x")
    assert [c.title for c in commits] == ["two", "one", "initial commit"]
    assert commits[0].commit_id == second.oid and commits[0].authors == ["alice"]
    assert commits[0].created_at.tzinfo is not None

    pr = api.create_commit(
        repo_name,
        operations=[CommitOperationAdd("n.txt", b"3")],
        commit_message="proposal",
        commit_description="why",
        create_pr=True,
    )
    assert pr.pr_num == 1 and pr.pr_revision == "refs/pr/1"
    refs = api.list_repo_refs(repo_name, include_pull_requests=True)
    assert [(p.ref, p.target_commit) for p in refs.pull_requests] == [("refs/pr/1", pr.oid)]
    # What hubpress reads to recognise a pull request whose answer was lost: its head's history.
    proposal = api.list_repo_commits(repo_name, revision=pr.oid)
    assert [(c.commit_id, c.title, c.message) for c in proposal[:2]] == [
        (pr.oid, "proposal", "why"),
        (first.oid, "one", ""),
    ]
    assert hub.head("model", repo_name) == first.oid  # main untouched
    assert hub.read_file("model", repo_name, "n.txt", revision="refs/pr/1") == b"3"

    api.delete_tag(repo_name, tag="v1.0")
    api.delete_branch(repo_name, branch="feature/x")
    refs = api.list_repo_refs(repo_name)
    assert [b.name for b in refs.branches] == ["main"] and refs.tags == []
    with pytest.raises(RevisionNotFoundError):
        api.list_repo_commits(repo_name, revision="feature/x")


def test_concurrent_commits_are_serialised(api, hub, repo_name):
    api.create_repo(repo_name)
    base = hub.head("model", repo_name)

    def upload(i: int) -> str:
        return api.upload_file(
            path_or_fileobj=f"file {i}".encode(), path_in_repo=f"f{i}.txt", repo_id=repo_name
        ).oid

    with ThreadPoolExecutor(max_workers=6) as pool:
        oids = list(pool.map(upload, range(6)))
    history = hub.commit_history("model", repo_name)
    assert len(history) == 7 and sorted(c["id"] for c in history[:6]) == sorted(oids)
    assert sorted(history[0]["files"]) == [".gitattributes", *(f"f{i}.txt" for i in range(6))]

    def stale(i: int) -> int:
        try:
            api.create_commit(
                repo_name, operations=[CommitOperationAdd(f"g{i}.txt", b"g")], commit_message="race",
                parent_commit=history[0]["id"],
            )  # fmt: skip
            return 200
        except HfHubHTTPError as error:
            return error.response.status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(stale, range(4)))
    assert statuses == [200, 412, 412, 412]  # one writer wins, the others are told their parent is stale
    assert base != hub.head("model", repo_name)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_repos_are_real_git_repositories(api, hub, repo_name):
    api.create_repo(repo_name)
    content = binary(1500, seed=11)
    api.upload_file(path_or_fileobj=content, path_in_repo="d/w.bin", repo_id=repo_name)
    api.upload_file(path_or_fileobj=b"hi\n", path_in_repo="d/hi.txt", repo_id=repo_name)
    git_dir = hub.data_dir / "models" / repo_name
    subprocess.run(["git", "--git-dir", str(git_dir), "fsck", "--strict"], check=True, capture_output=True)
    show = subprocess.run(
        ["git", "--git-dir", str(git_dir), "show", "main:d/w.bin"], check=True, capture_output=True, text=True
    ).stdout
    assert f"oid sha256:{sha256(content)}" in show
    log = subprocess.run(
        ["git", "--git-dir", str(git_dir), "log", "--format=%H %s"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert [line.split(" ", 1)[0] for line in log] == [
        c["id"] for c in hub.commit_history("model", repo_name)
    ]


def test_chunked_request_bodies_are_read(api, hub, repo_name):
    """Clients that stream bodies without a Content-Length (chunked transfer encoding) work too."""
    api.create_repo(repo_name)
    lines = [
        {"key": "header", "value": {"summary": "chunked commit", "description": ""}},
        {
            "key": "file",
            "value": {
                "path": "c.txt",
                "content": base64.b64encode(b"chunked").decode(),
                "encoding": "base64",
            },
        },
    ]
    body = (json.dumps(line).encode() + b"\n" for line in lines)
    connection = HTTPConnection("127.0.0.1", hub.port, timeout=30)
    connection.request(
        "POST", f"/api/models/{repo_name}/commit/main", body=body, encode_chunked=True,
        headers={"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/x-ndjson"},
    )  # fmt: skip
    response = connection.getresponse()
    assert response.status == 200, response.read()
    assert json.loads(response.read())["commitOid"] == hub.head("model", repo_name)
    connection.close()
    assert hub.read_file("model", repo_name, "c.txt") == b"chunked"


# ---- access -----------------------------------------------------------------------------------
def test_auth_errors_and_private_repos(api, hub, repo_name):
    anonymous = HfApi(endpoint=hub.url, token=False)
    reader = HfApi(endpoint=hub.url, token=READ_TOKEN)
    other = HfApi(endpoint=hub.url, token=OTHER_WRITE_TOKEN)
    assert reader.whoami()["auth"]["accessToken"]["role"] == "read"

    with pytest.raises(HfHubHTTPError) as unauthenticated:
        anonymous.create_repo(repo_name)
    assert unauthenticated.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as read_only:
        reader.create_repo(repo_name)
    assert read_only.value.response.status_code == 403

    api.create_repo(repo_name, private=True)
    api.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id=repo_name)
    assert reader.model_info(repo_name).private is True  # the owner's read token sees it
    for outsider in (anonymous, other):
        with pytest.raises(RepositoryNotFoundError):
            outsider.model_info(repo_name)
        with pytest.raises(RepositoryNotFoundError):
            outsider.list_repo_refs(repo_name)
    status, headers, _ = http(f"{hub.url}/{repo_name}/resolve/main/s.txt", token=OTHER_WRITE_TOKEN)
    assert status == 404 and headers["X-Error-Code"] == "RepoNotFound"
    with pytest.raises(HfHubHTTPError) as read_write:
        reader.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_name)
    assert read_write.value.response.status_code == 403

    api.update_repo_settings(repo_name, private=False)
    assert anonymous.model_info(repo_name).private is False
    with pytest.raises(HfHubHTTPError) as not_owner:
        other.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_name)
    assert not_owner.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as bad_token:
        HfApi(endpoint=hub.url, token="hf_not_a_token").model_info(repo_name)
    assert bad_token.value.response.status_code == 401

    api.delete_repo(repo_name)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(repo_name)
    api.delete_repo(repo_name, missing_ok=True)


def status_of(call) -> int:
    with pytest.raises(HfHubHTTPError) as refused:
        call()
    return refused.value.response.status_code


def test_namespaces_a_token_writes_only_to_its_user_and_its_orgs(api, hub):
    """As on the Hub: creating or writing a repo outside the token user's namespace and orgs is 403."""
    other = HfApi(endpoint=hub.url, token=OTHER_WRITE_TOKEN)
    suffix = uuid.uuid4().hex[:8]
    assert status_of(lambda: other.create_repo(f"alice/ns-{suffix}")) == 403
    assert status_of(lambda: other.create_repo(f"{ORG}/ns-{suffix}", repo_type="dataset")) == 403
    assert hub.head("model", f"alice/ns-{suffix}") is None

    api.create_repo(f"{ORG}/ns-{suffix}", repo_type="dataset", private=False)  # alice is in the org
    api.upload_file(
        path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"{ORG}/ns-{suffix}", repo_type="dataset"
    )
    assert [o["name"] for o in api.whoami()["orgs"]] == [ORG]
    assert (
        status_of(
            lambda: other.upload_file(
                path_or_fileobj=b"y", path_in_repo="y.txt", repo_id=f"{ORG}/ns-{suffix}", repo_type="dataset"
            )
        )
        == 403
    )
    assert status_of(lambda: other.create_tag(f"{ORG}/ns-{suffix}", tag="v1", repo_type="dataset")) == 403
    assert (
        status_of(lambda: other.create_branch(f"{ORG}/ns-{suffix}", branch="b", repo_type="dataset")) == 403
    )
    assert status_of(lambda: other.delete_repo(f"{ORG}/ns-{suffix}", repo_type="dataset")) == 403
    assert api.list_repo_files(f"{ORG}/ns-{suffix}", repo_type="dataset") == [".gitattributes", "x.txt"]


def test_refusals_hubpress_relies_on(api, hub, repo_name):
    """An existing tag is a 409 (not moved), a stale parent is a 412, a bad ref name is a 400."""
    api.create_repo(repo_name)
    first = api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id=repo_name).oid
    api.create_tag(repo_name, tag="v1", revision=first)
    second = api.upload_file(path_or_fileobj=b"2", path_in_repo="a.txt", repo_id=repo_name).oid
    assert status_of(lambda: api.create_tag(repo_name, tag="v1", revision=second)) == 409
    assert {t.name: t.target_commit for t in api.list_repo_refs(repo_name).tags} == {"v1": first}
    stale = lambda: api.create_commit(  # noqa: E731
        repo_name, [CommitOperationAdd("b.txt", b"b")], commit_message="m", parent_commit=first
    )
    assert status_of(stale) == 412
    assert status_of(lambda: api.create_tag(repo_name, tag="a..b", revision=second)) == 400


# ---- faults -----------------------------------------------------------------------------------
def test_rate_limit_is_waited_on_then_succeeds(api, hub, repo_name):
    api.create_repo(repo_name)
    hub.arm_fault("preupload", "429", retry_after=1)
    api.upload_file(path_or_fileobj=b"after the wait", path_in_repo="f.txt", repo_id=repo_name)
    stats = hub.stats
    assert [f.kind for f in stats.faults] == ["429"]
    assert stats.requests["preupload"] == 2 and stats.commits == 1
    assert hub.read_file("model", repo_name, "f.txt") == b"after the wait"


@pytest.mark.lfs_only
def test_lfs_upload_reset_mid_body_and_5xx_are_retried(api, hub, repo_name):
    api.create_repo(repo_name)
    content = binary(300_000, seed=9)
    hub.arm_fault("lfs_batch", "503", retry_after=0)
    hub.arm_fault(r"^PUT /_lfs/", "reset_mid_body")
    api.upload_file(path_or_fileobj=content, path_in_repo="w.bin", repo_id=repo_name)
    stats = hub.stats
    assert [f.kind for f in stats.faults] == ["503", "reset_mid_body"]
    assert stats.requests["lfs_batch"] == 2 and stats.requests["lfs_upload"] == 2
    assert len(content) < stats.upload_bytes < 2 * len(content)  # half a body, then the whole one
    assert hub.read_file("model", repo_name, "w.bin") == content


def test_commit_reset_surfaces_and_stall_delays(api, hub, repo_name):
    api.create_repo(repo_name)
    hub.arm_fault("commit", "reset")
    with pytest.raises(Exception) as reset:  # the commit call is not retried by the client
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_name)
    assert "HfHubHTTPError" not in type(reset.value).__name__
    assert hub.stats.commits == 0
    hub.arm_fault("repo_info", "stall", stall_seconds=0.2)
    assert api.model_info(repo_name).sha == hub.head("model", repo_name)
    assert [f.kind for f in hub.stats.faults] == ["reset", "stall"]


# ---- datasets ---------------------------------------------------------------------------------
def _image_rows(count: int, seed: int) -> list[dict]:
    from PIL import Image as PILImage

    rows = []
    for i in range(count):
        images = []
        for j in range(1 + i % 3):
            buffer = io.BytesIO()
            color = ((seed * 40 + i * 17) % 256, (j * 90) % 256, (i * 31) % 256)
            PILImage.new("RGB", (8 + i, 6 + j), color).save(buffer, format="PNG")
            images.append({"bytes": buffer.getvalue(), "path": None})
        rows.append({"id": f"{seed}-{i}", "images": images, "caption": f"row {i} of split {seed}"})
    return rows


def _as_plain(row: dict) -> dict:
    import numpy as np

    return {**row, "images": [np.asarray(img.convert("RGB")).tolist() for img in row["images"]]}


def test_datasets_push_to_hub_and_load_dataset(hub, repo_name, write_token):
    import datasets
    from datasets import Dataset, DatasetDict, Features, Image, List, Value

    features = Features({"id": Value("string"), "images": List(Image()), "caption": Value("string")})
    source = DatasetDict(
        {
            "train": Dataset.from_list(_image_rows(5, seed=1), features=features),
            "test": Dataset.from_list(_image_rows(3, seed=2), features=features),
        }
    )
    info = source.push_to_hub(repo_name, token=write_token)
    sha = info.oid
    assert sha == hub.head("dataset", repo_name)
    files = HfApi(endpoint=hub.url).list_repo_files(repo_name, repo_type="dataset", revision=sha)
    assert "README.md" in files and any(f.startswith("data/train-") and f.endswith(".parquet") for f in files)

    loaded = datasets.load_dataset(repo_name, revision=sha)
    assert sorted(loaded) == ["test", "train"]
    for split in ("train", "test"):
        assert loaded[split].features == features
        assert [_as_plain(r) for r in loaded[split]] == [_as_plain(r) for r in source[split]]

    streamed = datasets.load_dataset(repo_name, revision=sha, streaming=True)
    assert [_as_plain(r) for r in streamed["train"]] == [_as_plain(r) for r in source["train"]]


# ---- lifecycle --------------------------------------------------------------------------------
def test_restart_on_the_same_directory_keeps_repos(tmp_path):
    tokens = {WRITE_TOKEN: ("alice", "write")}
    data = tmp_path / "hub"
    lfs_content = binary(4000, seed=10)
    with HubServer(data_dir=data, tokens=tokens) as first:
        api = HfApi(endpoint=first.url, token=WRITE_TOKEN)
        api.create_repo("alice/kept", repo_type="dataset", private=True)
        api.upload_file(
            path_or_fileobj=b"text", path_in_repo="t.txt", repo_id="alice/kept", repo_type="dataset"
        )
        api.upload_file(
            path_or_fileobj=lfs_content, path_in_repo="l.bin", repo_id="alice/kept", repo_type="dataset"
        )
        api.create_tag("alice/kept", tag="v1", repo_type="dataset")
        head = first.head("dataset", "alice/kept")

    with HubServer(data_dir=data, tokens=tokens) as second:
        api = HfApi(endpoint=second.url, token=WRITE_TOKEN)
        info = api.dataset_info("alice/kept")
        assert info.sha == head and info.private is True
        assert [t.target_commit for t in api.list_repo_refs("alice/kept", repo_type="dataset").tags] == [head]
        path = hf_hub_download(
            "alice/kept", "l.bin", repo_type="dataset", revision="v1", endpoint=second.url,
            token=WRITE_TOKEN, cache_dir=tmp_path / "cache",
        )  # fmt: skip
        assert Path(path).read_bytes() == lfs_content
        with pytest.raises(HfHubHTTPError) as conflict:
            api.create_repo("alice/kept", repo_type="dataset")
        assert conflict.value.response.status_code == 409


def test_standalone_server_prints_ready(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.hubserver", "--port", "0", "--data", str(tmp_path), "--token",
         f"carol={WRITE_TOKEN}:write"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the server printed nothing within 30 s"
        line = process.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:")
        url = line.split(" ", 1)[1]
        assert HfApi(endpoint=url, token=WRITE_TOKEN).whoami()["name"] == "carol"
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0
