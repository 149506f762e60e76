"""Concurrent uploads of one object succeed, as on the Hub (it stores LFS objects by content): each
LFS batch answer names its own multipart upload, so two uploaders' parts never mix."""

from __future__ import annotations

import hashlib
import threading
import uuid

from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.lfs import post_lfs_batch_info
from huggingface_hub.utils import get_session

from tests.conftest import WRITE_TOKEN


def incompressible(size: int, seed: int) -> bytes:
    out = bytearray(b"\0")
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def test_two_interleaved_multipart_uploads_of_one_object_both_complete(hub):
    repo = f"alice/race-{uuid.uuid4().hex[:8]}"
    HfApi(endpoint=hub.url, token=WRITE_TOKEN).create_repo(repo, repo_type="dataset")
    content = incompressible(250_000, seed=3)
    saved = hub.multipart_threshold, hub.multipart_chunk_size
    hub.multipart_threshold, hub.multipart_chunk_size = 100_000, 100_000
    try:
        # Both uploaders ask before either has sent a byte: both are told to upload, in 3 parts.
        answers = []
        for _ in range(2):
            op = CommitOperationAdd("a.bin", content)
            [action], errors, transfer = post_lfs_batch_info(
                [op.upload_info],
                WRITE_TOKEN,
                "dataset",
                repo,
                endpoint=hub.url,
                transfers=["basic", "multipart"],
            )
            assert transfer == "multipart" and not errors
            answers.append(action["actions"]["upload"])
        session = get_session()
        etags: list[list[str]] = [[], []]
        for number in range(1, 4):  # their parts interleave: A1 B1 A2 B2 A3 B3
            for who, upload in enumerate(answers):
                part = content[(number - 1) * 100_000 : number * 100_000]
                response = session.put(upload["header"][str(number)], content=part)
                assert response.status_code == 200
                etags[who].append(response.headers["etag"])
        for who, upload in enumerate(answers):
            parts = [{"partNumber": n + 1, "etag": etag} for n, etag in enumerate(etags[who])]
            done = session.post(
                upload["href"], json={"oid": hashlib.sha256(content).hexdigest(), "parts": parts}
            )
            assert done.status_code == 200, done.text
    finally:
        hub.multipart_threshold, hub.multipart_chunk_size = saved
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.create_commit(repo, [CommitOperationAdd("a.bin", content)], commit_message="m", repo_type="dataset")
    assert hub.read_file("dataset", repo, "a.bin") == content


def test_two_clients_uploading_the_same_file_at_once_both_commit(hub):
    repo = f"alice/race-{uuid.uuid4().hex[:8]}"
    HfApi(endpoint=hub.url, token=WRITE_TOKEN).create_repo(repo, repo_type="dataset")
    content = incompressible(450_000, seed=4)
    saved = hub.multipart_threshold, hub.multipart_chunk_size
    hub.multipart_threshold, hub.multipart_chunk_size = 50_000, 50_000
    barrier, errors = threading.Barrier(2), []

    def upload(path: str) -> None:
        try:
            barrier.wait()
            HfApi(endpoint=hub.url, token=WRITE_TOKEN).upload_file(
                path_or_fileobj=content, path_in_repo=path, repo_id=repo, repo_type="dataset"
            )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=upload, args=(p,)) for p in ("a.bin", "b.bin")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        hub.multipart_threshold, hub.multipart_chunk_size = saved
    assert not errors, errors
    assert hub.read_file("dataset", repo, "a.bin") == hub.read_file("dataset", repo, "b.bin") == content
