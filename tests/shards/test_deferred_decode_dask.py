"""Deferred decoding (#15), from an independent review: deferred decoding on a Dask LocalCluster (decodes on threads inside daemonic worker
processes) with a broken image: reported, left out, and the same shards as full validation."""

from __future__ import annotations

import json

import pytest

from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.orchestration.runners import TaskRunnerChoice, with_task_runner
from hubpress.settings import get_settings
from hubpress.sources.intake import run_intake
from hubpress.testdata.synth import write_dataset
from tests.shard_helpers import corrupt_png_pixels, shard_digests

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_dask_deferred_publish_equals_full_validation(tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_dataset(src, samples=12, test_fraction=0.25, image_size=16, seed=13, masks=True)
    bad = {}
    for rel in (
        "train/control_images/s000004.png",
        "test/training_images/t000001.png",
        "train/control_images/s000006_mask.png",
    ):
        p = src / rel
        if p.exists():
            p.write_bytes(corrupt_png_pixels(p.read_bytes()))
            bad[rel] = True
    assert len(bad) >= 2, sorted(str(p.relative_to(src)) for p in src.rglob("*.png"))[:10]

    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    params = PublishDatasetParams(
        source=str(src),
        target=str(tmp_path / "dask"),
        staging=str(tmp_path / "stage-dask"),
        max_shard_size="8KB",
    )
    out = with_task_runner(publish_dataset, TaskRunnerChoice(kind="dask", dask_workers=2))(params)
    manifest = json.loads((tmp_path / "dask" / "manifest.json").read_text())
    skipped = {s["id"] for s in manifest["skipped"]}

    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache-full"))
    full = run_intake(str(src), settings=get_settings(), workers=1)
    full_skipped = {s.id for m in full.splits.values() for s in m.skipped}
    params = PublishDatasetParams(
        source=str(src),
        target=str(tmp_path / "full"),
        staging=str(tmp_path / "stage-full"),
        max_shard_size="8KB",
    )
    publish_dataset(params)
    assert skipped == full_skipped and len(skipped) == len(bad), (skipped, full_skipped, out)
    assert shard_digests(tmp_path / "dask") == shard_digests(tmp_path / "full")
    # No shard with the broken samples was sealed, and the target holds the rest: staging is empty.
    assert not list((tmp_path / "stage-dask").rglob("*.parquet"))
