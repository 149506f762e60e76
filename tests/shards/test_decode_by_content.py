"""An image is decoded once per content, not once per path (#21): the same bytes at another path (a
control shared by several samples, a reused mask) take the verdict of the first decode. A damaged
image shared that way is still reported at every path, and nothing holding it is published."""

from __future__ import annotations

import hashlib
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.sources.models import FileRef
from hubpress.sources.reader import SourceReader
from hubpress.testdata.synth import write_dataset
from tests.shard_helpers import corrupt_png_pixels


def _unique_png() -> bytes:
    """A PNG no other test decoded in this process (the verdicts are kept per process)."""
    seed = int.from_bytes(os.urandom(8), "little")
    pixels = np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _refs(tmp_path, data: bytes, count: int) -> list[FileRef]:
    refs = []
    for i in range(count):
        path = tmp_path / f"copy{i}.png"
        path.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        refs.append(FileRef(str(path), path.name, len(data), "png", sha, 48, 48, decode_pending=True))
    return refs


def test_the_same_bytes_at_three_paths_are_decoded_once(tmp_path):
    reader = SourceReader()
    refs = _refs(tmp_path, _unique_png(), 3)
    assert [reader(ref) for ref in refs] == [(tmp_path / f"copy{i}.png").read_bytes() for i in range(3)]
    assert reader.undecodable == [] and reader.decodes == 1
    # Another reader (the next shard's build) takes the verdict too.
    later = SourceReader()
    later(refs[0])
    assert later.undecodable == [] and later.decodes == 0


def test_damaged_bytes_at_two_paths_are_reported_at_both(tmp_path):
    reader = SourceReader()
    refs = _refs(tmp_path, corrupt_png_pixels(_unique_png()), 2)
    for ref in refs:
        reader(ref)
    failed = reader.undecodable
    assert [ref.relpath for ref, _ in failed] == ["copy0.png", "copy1.png"]
    assert all(detail.startswith("cannot decode") for _, detail in failed)
    assert reader.decodes == 1


@pytest.mark.usefixtures("prefect_harness")
def test_a_damaged_control_shared_by_two_samples_leaves_both_out(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    src = tmp_path / "src"
    write_dataset(src, samples=6, seed=int.from_bytes(os.urandom(4), "little"), test_fraction=0.0)
    first, second = sorted((src / "train" / "control_images").glob("*.png"))[:2]
    damaged = corrupt_png_pixels(first.read_bytes())  # chunks and CRCs intact: only a decode finds it
    first.write_bytes(damaged)
    second.write_bytes(damaged)

    out = publish_dataset(PublishDatasetParams(source=str(src), target=str(tmp_path / "out")))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {s["id"] for s in manifest["skipped"]} == {first.stem, second.stem}
    assert all("undecodable_image" in json.dumps(s["reasons"]) for s in manifest["skipped"])
    assert out["skipped"]["train"] == 2 and out["samples"]["train"] == 4
