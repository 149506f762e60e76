"""publish-dataset decodes each new image once, in the build that reads it (#15), and still
publishes exactly what a full validation would have let through.

Intake reads and hashes a new image and checks its header; the build decodes its pixels as it
copies them into a shard. An image that does not decode there sends the publish through intake
again, which then reports it and leaves its sample out."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from hubpress.errors import ValidationFailed
from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.settings import get_settings
from hubpress.sources.intake import run_intake
from hubpress.testdata.synth import write_dataset
from tests.shard_helpers import corrupt_png_pixels, shard_digests

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def fresh_dirs(tmp_path, monkeypatch):
    """A cold facts cache and an empty staging dir: every image is new to this test."""
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    return tmp_path


def _defective(root: Path) -> set[str]:
    """Two broken samples: a truncated main control (its chunks end early: intake's header walk
    finds it) and one whose pixel data is damaged behind intact chunks (only a decode finds it)."""
    summary = write_dataset(root, samples=12, seed=21, defects=("truncated",), defect_count=1)
    (truncated,) = summary.skipped["train"]
    damaged = next(
        p for p in sorted((root / "train" / "control_images").glob("*.png")) if p.stem != truncated
    )
    damaged.write_bytes(corrupt_png_pixels(damaged.read_bytes()))
    return {truncated, damaged.stem}


def test_an_image_that_fails_in_the_build_is_reported_and_left_out_as_full_validation_would(
    fresh_dirs, monkeypatch, caplog
):
    src = fresh_dirs / "src"
    skipped = _defective(src)
    assert len(skipped) == 2

    deferred = fresh_dirs / "deferred"
    out = publish_dataset(PublishDatasetParams(source=str(src), target=str(deferred)))
    # Intake let the broken images through by their headers; the build found them.
    assert any("taking the intake again" in r.getMessage() for r in caplog.records)
    manifest = json.loads((deferred / "manifest.json").read_text())
    assert {s["id"] for s in manifest["skipped"]} == skipped
    assert all("undecodable_image" in json.dumps(s["reasons"]) for s in manifest["skipped"])
    assert out["skipped"]["train"] == 2 and out["samples"]["train"] == 10
    # No shard built with the broken samples in it was sealed, and the target holds the others:
    # staging keeps no shard at all.
    assert not list((fresh_dirs / "staging").rglob("*.parquet"))

    # The same source published after a full validation (every image decoded at intake, as
    # `hubpress scan` does) gives the same shards, byte for byte.
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(fresh_dirs / "cache-full"))
    monkeypatch.setenv("HUBPRESS_STAGING", str(fresh_dirs / "staging-full"))
    full = run_intake(str(src), settings=get_settings(), workers=1)
    assert {s.id for m in full.splits.values() for s in m.skipped} == skipped
    validated = fresh_dirs / "validated"
    publish_dataset(PublishDatasetParams(source=str(src), target=str(validated)))
    assert shard_digests(deferred) == shard_digests(validated) and shard_digests(deferred)


def test_each_new_image_is_decoded_once_and_scan_then_trusts_it(fresh_dirs):
    src = fresh_dirs / "src"
    write_dataset(src, samples=8, seed=22, extra_controls=1, masks=True)
    images = sum(1 for p in src.rglob("*") if p.suffix in {".png", ".jpg", ".jpeg", ".webp"})

    publish_dataset(PublishDatasetParams(source=str(src), target=str(fresh_dirs / "out")))
    # The build decoded every image and recorded it: a full validation now reads and decodes none.
    scan = run_intake(str(src), settings=get_settings(), workers=1)
    assert scan.stats["cache_hits"] == scan.stats["files"] >= images
    assert (scan.stats["files_read"], scan.stats["images_decoded"]) == (0, 0)


def test_on_error_fail_decodes_at_intake_so_nothing_is_sent(fresh_dirs, hub, write_token):
    """`--on-error fail` promises that nothing is built or uploaded when the data has problems:
    it decodes every image before building, whatever the cache knows."""
    src = fresh_dirs / "src"
    _defective(src)
    with pytest.raises(ValidationFailed, match="undecodable_image"):
        publish_dataset(
            PublishDatasetParams(
                source=str(src), target=f"alice/fail-{uuid.uuid4().hex[:8]}", on_error="fail"
            )
        )
    assert hub.stats.upload_bytes == 0 and hub.stats.commits == 0
    assert not list((fresh_dirs / "staging").rglob("*.parquet"))
