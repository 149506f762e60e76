"""Hostile images against deferred decoding (#15), found by an independent review of 0f68cca: each
case states what publishing promises, and each failed before its fix. Full validation (`scan`,
`--on-error fail`) and the deferred publish must agree on every image."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, PngImagePlugin

from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.settings import get_settings
from hubpress.sources.intake import run_intake
from hubpress.sources.validation import check_image_bytes, decode_problem
from hubpress.testdata.synth import write_dataset
from tests.shard_helpers import corrupt_png_pixels as _corrupt_zlib

XMP_ROT90 = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
)


def _png(w, h, mode="RGB", seed=0, pnginfo=None) -> bytes:
    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    b = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(b, "PNG", pnginfo=pnginfo)
    return b.getvalue()


def _undecodable_in_shards(target: Path) -> int:
    bad = 0
    for f in target.rglob("*.parquet"):
        table = pq.read_table(f)
        for col in table.column_names:
            for cell in table.column(col).to_pylist():
                for v in cell if isinstance(cell, list) else [cell]:
                    if isinstance(v, dict) and isinstance(v.get("bytes"), bytes):
                        try:
                            Image.open(io.BytesIO(v["bytes"])).load()
                        except Exception:
                            bad += 1
    return bad


def _skipped(target: Path) -> dict[str, list[str]]:
    return {s["id"]: s["reasons"] for s in json.loads((target / "manifest.json").read_text())["skipped"]}


@pytest.fixture
def fresh_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    return tmp_path


def _use_cache(monkeypatch, tmp_path, name):
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / f"cache-{name}"))
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / f"staging-{name}"))


# -- no Prefect needed ---------------------------------------------------------------------------


def test_full_validation_rejects_a_png_whose_zlib_stream_is_corrupt():
    """Full validation (scan, --on-error fail) must agree with the build's decode. It does not:
    _orientation()'s getexif() loads the PNG, the load error is swallowed, and the following
    im.load() is a no-op, so the image is accepted with decoded=True."""
    data = _corrupt_zlib(_png(16, 16, seed=9))
    assert decode_problem(data, "png") is not None  # really broken
    assert check_image_bytes(data, decode=True).error == "undecodable_image"


def test_the_build_decode_honours_max_pixels_as_full_validation_does():
    b = io.BytesIO()
    Image.new("1", (13500, 13500)).save(b, "PNG")  # 182,250,000 px: > 2x Pillow's default guard
    data = b.getvalue()
    assert check_image_bytes(data, max_pixels=200_000_000, decode=True).error is None
    assert decode_problem(data, "png") is None  # fails: DecompressionBombError, "cannot decode"


def test_header_check_sees_xmp_orientation_as_full_validation_does():
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP_ROT90)
    data = _png(32, 16, pnginfo=info)
    full, header = check_image_bytes(data, decode=True), check_image_bytes(data, decode=False)
    assert (header.width, header.height, header.orientation) == (full.width, full.height, full.orientation)


# -- end to end (flow) ---------------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_harness")
def test_default_publish_never_publishes_a_broken_png_with_exif_after_idat(fresh_dirs):
    src = fresh_dirs / "src"
    write_dataset(src, samples=4, seed=7)
    victim = src / "train/control_images/s000000.png"
    victim.write_bytes(_corrupt_zlib(victim.read_bytes(), exif_after_idat=True))
    out = fresh_dirs / "out"
    publish_dataset(PublishDatasetParams(source=str(src), target=str(out)))
    assert _undecodable_in_shards(out) == 0
    assert "undecodable_image" in _skipped(out).get("s000000", [])


@pytest.mark.usefixtures("prefect_harness")
def test_on_error_fail_never_publishes_a_broken_png(fresh_dirs):
    from hubpress.errors import ValidationFailed

    src = fresh_dirs / "src"
    write_dataset(src, samples=4, seed=7)
    victim = src / "train/control_images/s000000.png"
    victim.write_bytes(_corrupt_zlib(victim.read_bytes()))
    with pytest.raises(ValidationFailed):
        publish_dataset(
            PublishDatasetParams(source=str(src), target=str(fresh_dirs / "out"), on_error="fail")
        )


def _xmp_source(root: Path, mask_size) -> Path:
    write_dataset(root, samples=4, seed=3, masks=True)
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP_ROT90)
    # stored 32x16, a trainer sees it 16x32 (XMP tiff:Orientation=6)
    (root / "train/control_images/s000000.png").write_bytes(_png(32, 16, pnginfo=info, seed=5))
    (root / "train/control_images/s000000_mask.png").write_bytes(_png(*mask_size, mode="L", seed=6))
    return root


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("mask_size", [(16, 32), (32, 16)], ids=["kept-by-full", "skipped-by-full"])
def test_xmp_oriented_png_deferred_publish_equals_full_validation(fresh_dirs, monkeypatch, mask_size):
    src = _xmp_source(fresh_dirs / "src", mask_size)
    publish_dataset(PublishDatasetParams(source=str(src), target=str(fresh_dirs / "deferred")))
    _use_cache(monkeypatch, fresh_dirs, "full")
    run_intake(str(src), settings=get_settings(), workers=1)
    publish_dataset(PublishDatasetParams(source=str(src), target=str(fresh_dirs / "full")))
    assert _skipped(fresh_dirs / "deferred") == _skipped(fresh_dirs / "full")


@pytest.mark.usefixtures("prefect_harness")
def test_on_error_fail_after_a_deferred_publish_still_refuses_what_it_refuses_cold(fresh_dirs, monkeypatch):
    from hubpress.errors import ValidationFailed

    src = _xmp_source(fresh_dirs / "src", (32, 16))  # cold --on-error fail: mask_size_mismatch
    publish_dataset(PublishDatasetParams(source=str(src), target=str(fresh_dirs / "deferred")))
    with pytest.raises(ValidationFailed, match="mask_size_mismatch"):
        publish_dataset(
            PublishDatasetParams(source=str(src), target=str(fresh_dirs / "after"), on_error="fail")
        )


@pytest.mark.usefixtures("prefect_harness")
def test_a_sample_skipped_for_its_mask_still_reports_its_undecodable_control(fresh_dirs, monkeypatch):
    """A sample skipped before the build (its mask has the wrong size) is never built: intake
    decodes its images itself, so its reasons list every problem, as full validation's do."""
    src = fresh_dirs / "src"
    write_dataset(src, samples=4, seed=8, masks=True)
    control = src / "train/control_images/s000001.png"
    control.write_bytes(_corrupt_zlib(control.read_bytes()))
    (src / "train/control_images/s000001_mask.png").write_bytes(_png(7, 5, mode="L", seed=2))
    publish_dataset(PublishDatasetParams(source=str(src), target=str(fresh_dirs / "deferred")))
    reasons = _skipped(fresh_dirs / "deferred")["s000001"]
    assert "undecodable_image" in json.dumps(reasons), reasons

    _use_cache(monkeypatch, fresh_dirs, "full")
    full = run_intake(str(src), settings=get_settings(), workers=1)
    (skipped,) = [s for s in full.splits["train"].skipped if s.id == "s000001"]
    assert sorted(skipped.reasons) == sorted(reasons)
