"""The staging policy on S3 staging. On main a shard object whose seal was never written (its run
died between the upload and the seal) had no age on S3, so the policy's "unsealed, after an hour"
never took it: only `staging clean --all` did. Its age is now the object's LastModified; and a
release stage on S3 is listed and swept like a local one."""

from __future__ import annotations

import json
import time

from hubpress.settings import Settings
from hubpress.shards.release_stages import release_stages
from hubpress.shards.runs import StagingPolicy, plan_sweep, read_leases
from hubpress.shards.shard_store import ShardStore, parquet_relpath
from hubpress.shards.staging import Staging
from tests.conftest import run_cli


def test_an_unsealed_shard_and_a_release_stage_on_s3_age_and_are_swept(s3, tmp_path, monkeypatch):
    endpoint, bucket = s3
    uri = f"s3://{bucket}/stage"
    monkeypatch.setenv("HUBPRESS_STAGING", uri)
    staging = Staging(uri, Settings())
    key = "ab" + "0" * 62
    staging.storage.write_bytes(parquet_relpath(key), b"half a shard, never sealed")
    release = "release-" + "e" * 32
    staging.storage.write_bytes(f"{release}/pytorch_lora_weights.safetensors", b"w" * 100)

    code, out, err = run_cli("staging", "list", "--json")
    assert code == 0, err
    listing = json.loads(out)
    [shard] = listing["shards"]
    assert shard["key"] == key and not shard["sealed"] and shard["age_seconds"] is not None
    assert [(s["stage"], s["sealed"], s["size"]) for s in listing["release_stages"]] == [
        (release, False, 100)
    ]

    # Two hours on, the policy takes both: an unsealed shard and an unsealed release stage.
    entries = [*ShardStore(staging).entries(), *release_stages(staging)]
    plan = plan_sweep(entries, read_leases(staging), StagingPolicy(), time.time() + 2 * 3600)
    assert sorted(s.key for s in plan.shards) == sorted([key, release])
    # Now, neither is an hour old: the policy keeps them; --all does not.
    code, out, err = run_cli("staging", "clean", "--json")
    assert code == 0 and json.loads(out)["removed_shards"] == 0, err
    code, out, err = run_cli("staging", "clean", "--all", "--json")
    removed = json.loads(out)
    assert code == 0 and removed["removed_shards"] == 1 and removed["removed_release_stages"] == [release]
    assert list(staging.storage.list("")) == []
