"""A refresh decides "nothing changed" from the target's manifest.json, which anyone with write
access can rewrite. A manifest that records the right upstream revisions and configuration but
holds JSON of another shape (splits, upstream or counts that are not what hubpress writes) must
not crash the refresh: it proves nothing, so the refresh runs in full and writes its own."""

from __future__ import annotations

import json
import uuid

import pytest

from hubpress.flows.params import RefreshParams
from hubpress.flows.refresh_dataset import refresh_dataset
from tests.refresh.test_refresh_flow import QUALITY, captioned_rows, hf_backend, push
from tests.targets.test_owned_deletions import _commit_files

pytestmark = pytest.mark.usefixtures("prefect_harness")

RESHAPED = {
    "splits_a_list": lambda m: {**m, "splits": [1]},
    "split_a_string": lambda m: {**m, "splits": {"train": "all"}},
    "upstream_a_list": lambda m: {**m, "upstream": [m["upstream"]]},
    "upstream_extra_entry": lambda m: {**m, "upstream": {**m["upstream"], "extra": "x"}},
}


def test_a_reshaped_manifest_never_crashes_a_refresh(hub, write_token, tmp_path):
    rows, features = captioned_rows(8)
    upstream = push(rows, features)
    repo = f"alice/refreshed-reshaped-{uuid.uuid4().hex[:8]}"
    params = RefreshParams(config=hf_backend(upstream, tmp_path, huggingface=QUALITY), target=repo, seed=3)
    assert refresh_dataset(params)["commit"]
    published = json.loads(hub.read_file("dataset", repo, "manifest.json"))
    shards = {p for p in hub.commit_history("dataset", repo)[0]["files"] if p.endswith(".parquet")}
    for kind, reshape in RESHAPED.items():
        hostile = json.dumps(reshape(published)).encode()
        _commit_files(repo, {"manifest.json": hostile}, f"a collaborator's {kind}")
        result = refresh_dataset(params)
        assert result["samples"] == {"train": 3}, kind
        assert not result["deleted_files"], kind
        assert shards <= set(hub.commit_history("dataset", repo)[0]["files"]), kind
        assert json.loads(hub.read_file("dataset", repo, "manifest.json"))["splits"]["train"], kind
