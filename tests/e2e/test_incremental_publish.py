"""A publish costs what changed: through the CLI and the flow, which shards were built, which source
bytes read and which shards sent, for +1% samples and for one changed image, checked against the
test Hub's own request log and the shards it holds."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from hubpress.flows.params import PublishDatasetParams
from hubpress.testdata.synth import write_dataset
from tests.conftest import WRITE_TOKEN, XET, sent_phrase

pytestmark = pytest.mark.usefixtures("prefect_harness")

SHARD_SIZE = "30KB"


def files_received(hub) -> int:
    """Files whose content the test Hub received: Xet file records, or LFS uploads (the LFS lane)."""
    return hub.stats.xet_files if XET else hub.stats.requests["lfs_upload"]


def hubpress_cli(*args: str, staging: Path, cache: Path) -> subprocess.CompletedProcess:
    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        "HF_TOKEN": WRITE_TOKEN,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "HUBPRESS_STAGING": str(staging),
        "HUBPRESS_CACHE_DIR": str(cache),
    }
    out = subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return out


def ids_in(hub, repo: str, path: str) -> list[str]:
    return pq.read_table(io.BytesIO(hub.read_file("dataset", repo, path)), columns=["id"])["id"].to_pylist()


def sample_files(src: Path, sample_id: str) -> list[Path]:
    return sorted(p for p in src.glob(f"train/*/{sample_id}*") if p.is_file())


def image_bytes(src: Path, ids) -> int:
    return sum(p.stat().st_size for i in ids for p in sample_files(src, i) if p.suffix != ".txt")


def data_shards(paths) -> set[str]:
    return {p for p in paths if p.startswith("data/")}


def test_a_night_of_changes_builds_reads_and_sends_only_the_changed_shards(hub, tmp_path):
    src = tmp_path / "src"
    write_dataset(src, samples=200, image_size=16, seed=2)
    repo = f"alice/incr-{uuid.uuid4().hex[:8]}"
    where = {"staging": tmp_path / "staging", "cache": tmp_path / "cache"}
    publish = ("publish-dataset", str(src), repo, "--max-shard-size", SHARD_SIZE)

    first = json.loads(hubpress_cli(*publish, "--json", **where).stdout)
    total = first["shards"]
    assert total >= 8 and first["shards_built"] == total and first["shards_sent"] == total
    assert first["shards_reused"] == 0 and first["source_bytes_read"] >= first["source_bytes"] > 0
    # The target holds every shard now: staging keeps no second copy of the data.
    assert not list(where["staging"].rglob("*.parquet"))

    # +1%: two new samples, one sorting before every id and one after.
    extra = tmp_path / "extra"
    write_dataset(extra, samples=2, image_size=16, seed=99)
    new_ids = []
    for prefix, sample in (("aa_", "s000000"), ("zz_", "s000001")):
        for f in extra.glob(f"train/*/{sample}*"):
            shutil.copy(f, src / "train" / f.parent.name / f"{prefix}{f.name}")
        new_ids.append(f"{prefix}{sample}")
    hub.reset_stats()
    second = json.loads(hubpress_cli(*publish, "--json", **where).stdout)
    sent = data_shards(second["uploaded_files"])
    assert second["changes"] == {"added": 2, "changed": 0, "removed": 0}
    assert 1 <= second["shards_built"] <= 4 and second["shards_built"] == len(sent) == second["shards_sent"]
    assert second["shards_reused"] == second["shards"] - second["shards_built"]
    # What was sent is exactly the built shards (and the card's preview when its first samples
    # changed, as ids before every other do): the files the Hub received (through Xet or LFS).
    assert files_received(hub) == len(sent) + ("preview.webp" in second["uploaded_files"])
    assert sum(len(hub.read_file("dataset", repo, p)) for p in sent) <= hub.stats.upload_bytes
    # What was read: the images of the built shards' samples, plus the new files intake hashed.
    rebuilt_ids = [i for p in sent for i in ids_in(hub, repo, p)]
    assert set(new_ids) <= set(rebuilt_ids)
    build_read = image_bytes(src, rebuilt_ids)
    new_files = sum(p.stat().st_size for i in new_ids for p in sample_files(src, i))
    assert build_read <= second["source_bytes_read"] <= build_read + new_files
    assert second["source_bytes_read"] < first["source_bytes"] / 3

    # One changed image: its shard is built and sent (and the next one, when the new size moves
    # the boundary after the sample), nothing else.
    changed_id = "s000100"
    control = next(src.glob(f"train/control_images/{changed_id}.*"))
    Image.new("RGB", (16, 16), (250, 10, 10)).save(control, format=Image.open(control).format)
    hub.reset_stats()
    text = hubpress_cli(*publish, **where).stdout
    before = data_shards(second["uploaded_files"]) | set(second["unchanged_files"])
    now = data_shards(hub.commit_history("dataset", repo)[0]["files"])
    sent = now - before
    assert 1 <= len(sent) <= 2 and any(changed_id in ids_in(hub, repo, p) for p in sent)
    newest, previous = (c["files"] for c in hub.commit_history("dataset", repo)[:2])
    preview_sent = newest.get("preview.webp") != previous.get("preview.webp")  # a changed first sample
    assert files_received(hub) == len(sent) + preview_sent
    total = len(now)
    line = f"{len(sent)} of {total} shards rebuilt ({total - len(sent)} reused)"
    assert line in text and f"{len(sent)} shard(s), " in text, text


def test_the_flow_reports_reuse_in_its_result_and_artifact(hub, tmp_path, monkeypatch, write_token):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from hubpress.flows.publish_dataset import publish_dataset

    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    src = tmp_path / "src"
    write_dataset(src, samples=60, image_size=16, seed=5)
    repo = f"alice/incr-flow-{uuid.uuid4().hex[:8]}"
    params = PublishDatasetParams(source=str(src), target=repo, max_shard_size=SHARD_SIZE)
    first = publish_dataset(params)
    control = next(src.glob("train/control_images/s000007.*"))
    Image.new("RGB", (16, 16), (1, 200, 3)).save(control, format=Image.open(control).format)
    hub.reset_stats()
    state = publish_dataset(params, return_state=True)
    result = state.result()
    built = result["shards_built"]
    assert 1 <= built <= 2 and result["shards_sent"] == built
    assert result["shards_reused"] == result["shards"] - built and result["shards"] >= first["shards"] - 1
    assert files_received(hub) == built
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
                key=ArtifactFilterKey(like_="publish-summary-"),
            )
        )
    lines = str(artifact.data).splitlines()
    assert lines[0] == f"0 samples added, 1 changed, 0 removed: {sent_phrase(result)}"
    assert f"{built} of {result['shards']} shards rebuilt ({result['shards'] - built} reused)" in lines[4]
