"""An upstream parquet file a refresh downloads whole through Xet, whose resolve answer names the
Xet hash of another file of the same size (a Hub, or a proxy in its place, that lies): hf_xet
rebuilds the other file without an error. The refresh is held to the sha256 the upstream lists:
one line naming the dataset and the file, exit 1, nothing published, and nothing of those bytes
kept in the upstream cache (before, the other file's rows were published as the upstream's, and
the cache kept them for every later run)."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import HUB_URL, WRITE_TOKEN, requires_xet, run_cli

pytestmark = [requires_xet, pytest.mark.usefixtures("prefect_harness")]

DATA = "data/train-00000-of-00001.parquet"


def _parquet(caption: str) -> bytes:
    """Rows of one caption; two captions of one length give files of one size."""
    buf = io.BytesIO()
    pq.write_table(pa.table({"caption": [caption] * 3, "image": [b"x" * 100] * 3}), buf, compression="none")
    return buf.getvalue()


def test_an_upstream_file_rebuilt_from_another_xet_hash_is_refused_and_not_kept(
    hub, write_token, tmp_path, monkeypatch
):
    from huggingface_hub import CommitOperationAdd, HfApi

    import tests.hubserver.app as hub_app

    listed, other = _parquet("the upstream row"), _parquet("the stranger row")
    assert len(listed) == len(other) and listed != other
    api = HfApi(endpoint=HUB_URL, token=WRITE_TOKEN)
    repo = f"alice/xet-upstream-{uuid.uuid4().hex[:8]}"
    api.create_repo(repo, repo_type="dataset")
    ops = [CommitOperationAdd(DATA, listed), CommitOperationAdd("notes/other.bin", other)]
    sha = api.create_commit(repo, ops, commit_message="rows", repo_type="dataset").oid
    monkeypatch.setattr(hub.app.xet, "serve_reads", True)
    listed_sha = hashlib.sha256(listed).hexdigest()
    other_hash = hub.app.xet.find(hashlib.sha256(other).hexdigest()).xet_hash
    honest = hub_app.read_headers

    def lying(cas, base_url, token_path, sha256):
        headers = honest(cas, base_url, token_path, sha256)
        return {**headers, "X-Xet-Hash": other_hash} if sha256 == listed_sha else headers

    monkeypatch.setattr(hub_app, "read_headers", lying)
    cache = tmp_path / "cache"
    backend = {"id": "up", "type": "huggingface", "dataset_name": repo, "revision": sha}
    backend |= {"caption_column": "caption", "streaming": False, "cache_dir": str(cache)}
    config = tmp_path / "multidatabackend.json"
    config.write_text(json.dumps([backend]))
    out = tmp_path / "out"
    hub.reset_stats()

    code, stdout, stderr = run_cli("refresh", str(config), str(out))

    assert hub.stats.requests["xet_read_token"] >= 1, "the file was not read through Xet"
    assert code == 1, (stdout, stderr)
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and repo in errors[0] and DATA in errors[0] and "sha256" in errors[0], stderr
    assert not out.exists() or not any(out.rglob("*.parquet"))
    kept = [p for p in Path(cache).rglob("*") if p.is_file() and p.read_bytes() == other]
    assert kept == []
