"""Deferred decoding (#15), from an independent review: a TIFF whose Orientation tag turns it a quarter. Pillow already reports such a TIFF's
size as turned at open (and transposes it in load()), so the header-only check turns it a second
time: intake's deferred verdict disagrees with full validation on its size and orientation."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.settings import get_settings
from hubpress.sources.intake import run_intake
from hubpress.sources.validation import check_image_bytes
from hubpress.testdata.synth import write_dataset
from tests.shard_helpers import shard_digests

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _tiff_oriented(w: int, h: int, orientation: int = 6) -> bytes:
    arr = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[274] = orientation
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "TIFF", tiffinfo=info)
    return buf.getvalue()


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (w, h), 255).save(buf, "PNG")
    return buf.getvalue()


def test_header_check_agrees_with_full_validation_on_tiff_orientation():
    data = _tiff_oriented(64, 48, 6)
    head = check_image_bytes(data, decode=False)
    full = check_image_bytes(data, decode=True)
    assert (head.width, head.height, head.orientation) == (full.width, full.height, full.orientation)


def test_deferred_publish_equals_full_validation_with_an_oriented_tiff_and_its_mask(tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_dataset(src, samples=4, seed=3, masks=True, image_format="tiff", test_fraction=0)
    ctl = src / "train" / "control_images"
    # Stored 64x48, Orientation 6: a trainer (and full validation) sees 48x64.
    (ctl / "s000000.tiff").write_bytes(_tiff_oriented(64, 48, 6))
    (ctl / "s000000_mask.png").write_bytes(_png(48, 64))

    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache-full"))
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging-full"))
    full = run_intake(str(src), settings=get_settings(), workers=1)
    full_skipped = {s.id for m in full.splits.values() for s in m.skipped}
    validated = tmp_path / "validated"
    publish_dataset(PublishDatasetParams(source=str(src), target=str(validated)))

    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    deferred = tmp_path / "deferred"
    publish_dataset(PublishDatasetParams(source=str(src), target=str(deferred)))
    skipped = {s["id"] for s in json.loads((deferred / "manifest.json").read_text())["skipped"]}

    assert skipped == full_skipped, (skipped, full_skipped)
    assert shard_digests(deferred) == shard_digests(validated)


def test_after_a_deferred_publish_scan_still_agrees_with_a_cold_scan(tmp_path, monkeypatch):
    """The reverse case: the mask matches the header check's (wrong) size, so the deferred publish
    keeps the sample, the build marks the TIFF decoded with those facts, and a later full
    validation (scan) trusts them instead of finding the mismatch a cold scan finds."""
    src = tmp_path / "src"
    write_dataset(src, samples=4, seed=3, masks=True, image_format="tiff", test_fraction=0)
    ctl = src / "train" / "control_images"
    (ctl / "s000000.tiff").write_bytes(_tiff_oriented(64, 48, 6))
    (ctl / "s000000_mask.png").write_bytes(_png(64, 48))  # not what a trainer sees (48x64)

    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache-cold"))
    cold = run_intake(str(src), settings=get_settings(), workers=1)
    cold_skipped = {s.id for m in cold.splits.values() for s in m.skipped}

    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    deferred = tmp_path / "deferred"
    publish_dataset(PublishDatasetParams(source=str(src), target=str(deferred)))
    published_skips = {s["id"] for s in json.loads((deferred / "manifest.json").read_text())["skipped"]}
    warm = run_intake(str(src), settings=get_settings(), workers=1)
    warm_skipped = {s.id for m in warm.splits.values() for s in m.skipped}

    assert cold_skipped == {"s000000"}
    assert (published_skips, warm_skipped) == (cold_skipped, cold_skipped)
