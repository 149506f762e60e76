"""The test Hub's Xet path against the real clients: tokens, uploads through hf_xet into DATA/xet,
pointers carrying the sha256, and the bytes served back to clients that do not speak Xet.

The tests marked `lfs` run in both lanes (conftest.py): the same uploads and reads, through hf_xet
by default and through the LFS batch API against a --no-xet Hub in the LFS lane.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

from tests.conftest import OTHER_WRITE_TOKEN, READ_TOKEN, WRITE_TOKEN, XET, requires_xet
from tests.hubserver import HubServer
from tests.hubserver.xet import read_shard

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKENS = {WRITE_TOKEN: ("alice", "write"), READ_TOKEN: ("alice", "read"), OTHER_WRITE_TOKEN: ("bob", "write")}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content(size: int, seed: int) -> bytes:
    """Incompressible, reproducible bytes with a NUL up front (the Hub routes them to LFS/Xet)."""
    out = bytearray(b"\0")
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def get(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def repo_name() -> str:
    return f"alice/xet-{uuid.uuid4().hex[:10]}"


def test_token_endpoints_answer_the_cas_and_check_access(tmp_path):
    with HubServer(tmp_path / "hub", tokens=TOKENS) as server:
        api = HfApi(endpoint=server.url, token=WRITE_TOKEN)
        api.create_repo("alice/pub", repo_type="dataset")
        api.create_repo("alice/priv", repo_type="dataset", private=True)
        write_url = f"{server.url}/api/datasets/alice/pub/xet-write-token/main"

        status, headers, body = get(write_url, WRITE_TOKEN)
        assert status == 200
        answer = json.loads(body)
        assert answer["casUrl"] == f"local://{tmp_path / 'hub' / 'xet'}"
        assert answer["accessToken"] and answer["exp"] > time.time() + 600
        assert headers["X-Xet-Cas-Url"] == answer["casUrl"]
        assert headers["X-Xet-Access-Token"] == answer["accessToken"]
        assert headers["X-Xet-Token-Expiration"] == str(answer["exp"])
        assert WRITE_TOKEN not in body.decode()  # the Hub token never comes back

        # Writing needs the owner's write token, as every write does; a pull request needs sight only.
        assert get(write_url)[0] == 401
        assert get(write_url, READ_TOKEN)[0] == 403
        assert get(write_url, OTHER_WRITE_TOKEN)[0] == 403
        assert get(write_url + "?create_pr=1", OTHER_WRITE_TOKEN)[0] == 200
        assert get(write_url, "hf_unknown_000")[0] == 401
        # Reading: anyone for a public repo, the owner only for a private one.
        assert get(f"{server.url}/api/datasets/alice/pub/xet-read-token/main")[0] == 200
        assert get(f"{server.url}/api/datasets/alice/priv/xet-read-token/main", OTHER_WRITE_TOKEN)[0] == 404
        assert get(f"{server.url}/api/datasets/alice/priv/xet-read-token/main", READ_TOKEN)[0] == 200

    with HubServer(tmp_path / "lfs-only", tokens=TOKENS, xet=False) as server:
        HfApi(endpoint=server.url, token=WRITE_TOKEN).create_repo("alice/pub", repo_type="dataset")
        assert get(f"{server.url}/api/datasets/alice/pub/xet-write-token/main", WRITE_TOKEN)[0] == 404


@pytest.mark.lfs
def test_upload_reads_back_through_resolve_and_hf_hub_download(hub, repo_name, tmp_path):
    """Upload with the real client (hf_xet, or LFS in the LFS lane), then read back as a client
    that does not speak Xet: a raw resolve, and hf_hub_download."""
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.create_repo(repo_name, repo_type="dataset")
    data = content(700_000, seed=1)
    (tmp_path / "w.bin").write_bytes(data)
    api.upload_file(
        path_or_fileobj=str(tmp_path / "w.bin"),
        path_in_repo="d/w.bin",
        repo_id=repo_name,
        repo_type="dataset",
    )
    stats = hub.stats
    if XET:
        assert stats.requests["xet_write_token"] >= 1 and stats.requests["lfs_batch"] == 0
        assert len(data) <= stats.xet_bytes < len(data) * 1.05  # chunks and a shard, into DATA/xet
        assert stats.xet_files == 1
        assert list((hub.data_dir / "xet").rglob("*.mdb"))
    else:
        assert stats.requests["lfs_batch"] == 1 and stats.requests["xet_write_token"] == 0
        assert stats.upload_bytes == len(data) and stats.xet_bytes == 0

    # The git tree holds an LFS pointer with the file's sha256, as on the Hub.
    assert hub.is_lfs("dataset", repo_name, "d/w.bin")
    [entry] = api.get_paths_info(repo_name, ["d/w.bin"], repo_type="dataset")
    assert entry.lfs.sha256 == sha256(data) and entry.size == len(data)

    status, headers, body = get(f"{hub.url}/datasets/{repo_name}/resolve/main/d/w.bin")
    assert status == 200 and body == data
    assert headers["ETag"] == f'"{sha256(data)}"' and headers["X-Linked-Size"] == str(len(data))
    assert "X-Xet-Hash" not in headers  # served as plain bytes: no Xet needed to read
    path = hf_hub_download(
        repo_name, "d/w.bin", repo_type="dataset", cache_dir=tmp_path / "c", token=WRITE_TOKEN
    )
    assert Path(path).read_bytes() == data


@pytest.mark.lfs
def test_preupload_and_commit_skip_unchanged_files(hub, repo_name):
    """The preupload answer carries the remote sha256, so the client drops an unchanged file and
    makes no commit; a changed file is sent, and on Xet only its new chunks cross the wire."""
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.create_repo(repo_name)
    first = content(400_000, seed=2)
    api.create_commit(repo_name, [CommitOperationAdd("m.bin", first)], commit_message="first")
    head = hub.head("model", repo_name)

    status, _, body = get_preupload(hub.url, repo_name, "m.bin", first)
    assert status == 200 and body["files"][0]["oid"] == sha256(first)
    assert body["files"][0]["uploadMode"] == "lfs"

    hub.reset_stats()
    info = api.create_commit(repo_name, [CommitOperationAdd("m.bin", first)], commit_message="again")
    assert hub.stats.commits == 0 and info.oid == head == hub.head("model", repo_name)

    hub.reset_stats()
    changed = first + content(5_000, seed=3)
    api.create_commit(repo_name, [CommitOperationAdd("m.bin", changed)], commit_message="grown")
    stats = hub.stats
    assert stats.commits == 1 and hub.read_file("model", repo_name, "m.bin") == changed
    if XET:  # the first 400 kB are stored already: far less than the file is sent
        assert 0 < stats.xet_bytes < len(changed) // 4
    else:
        assert stats.upload_bytes == len(changed)


def get_preupload(url: str, repo_name: str, path: str, data: bytes) -> tuple[int, dict, dict]:
    import base64

    payload = {"files": [{"path": path, "size": len(data), "sample": base64.b64encode(data[:512]).decode()}]}
    request = urllib.request.Request(
        f"{url}/api/models/{repo_name}/preupload/main",
        data=json.dumps(payload).encode(),
        headers={"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers), json.loads(response.read())


@requires_xet
def test_cas_shards_map_sha256_to_xet_hash_and_unknown_content_is_refused(hub, repo_name):
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.create_repo(repo_name)
    data = content(200_000, seed=4)
    api.create_commit(repo_name, [CommitOperationAdd("a.bin", data)], commit_message="a")
    index: dict = {}
    for shard in (hub.data_dir / "xet").rglob("xorbs/shards/*.mdb"):
        index.update(read_shard(shard.read_bytes()))
    assert index[sha256(data)].size == len(data) and len(index[sha256(data)].xet_hash) == 64

    # A pointer to content neither the LFS store nor the CAS holds is refused; nothing is committed.
    missing = sha256(b"never uploaded")
    lines = [
        {"key": "header", "value": {"summary": "dangling"}},
        {"key": "lfsFile", "value": {"path": "x.bin", "algo": "sha256", "oid": missing, "size": 14}},
    ]
    request = urllib.request.Request(
        f"{hub.url}/api/models/{repo_name}/commit/main",
        data="\n".join(json.dumps(line) for line in lines).encode(),
        headers={"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/x-ndjson"},
        method="POST",
    )
    head = hub.head("model", repo_name)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 422 and hub.head("model", repo_name) == head


def test_standalone_no_xet_serves_the_lfs_path_only(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.hubserver", "--port", "0", "--data", str(tmp_path), "--no-xet",
         "--token", f"carol={WRITE_TOKEN}:write"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the server printed nothing within 30 s"
        url = process.stdout.readline().strip().split(" ", 1)[1]
        HfApi(endpoint=url, token=WRITE_TOKEN).create_repo("carol/r")
        assert get(f"{url}/api/models/carol/r/xet-write-token/main", WRITE_TOKEN)[0] == 404
        assert not (tmp_path / "xet").exists()
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


@requires_xet
def test_a_commit_rebuilds_its_xet_files_at_once_each_once(hub, repo_name, monkeypatch):
    """The Hub answers a commit without rebuilding its files; this server rebuilds each into its
    LFS store first, so a commit of many large files waited on one rebuild after another (a 1 GB
    publish's commit: 5 s on one core of two). They are rebuilt at once, a file named twice once."""
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.create_repo(repo_name)
    files = {f"{n}.bin": content(300_000, seed=10 + n) for n in range(3)}
    files["copy.bin"] = files["0.bin"]
    rebuild = hub.xet.rebuild
    met = threading.Barrier(2, timeout=20)  # the first two rebuilds meet only if both run at once
    lock, calls, in_flight, most = threading.Lock(), [], [0], [0]

    def counted(sha: str, directory: Path) -> Path | None:
        with lock:
            calls.append(sha)
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            first_two = len(calls) <= 2
        try:
            if first_two:
                met.wait()
            return rebuild(sha, directory)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(hub.xet, "rebuild", counted)
    operations = [CommitOperationAdd(path, data) for path, data in files.items()]
    api.create_commit(repo_name, operations, commit_message="three files, one twice")

    assert most[0] >= 2
    assert sorted(calls) == sorted({sha256(data) for data in files.values()})
    for path, data in files.items():
        assert hub.read_file("model", repo_name, path) == data
