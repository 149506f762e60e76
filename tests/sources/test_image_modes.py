"""Images a trainer would see wrongly are not published silently: a target or control of more than
8 bits a channel (a 16-bit PNG becomes all white when converted to RGB, as trainers do) is a
problem kind that leaves its sample out; animated and multi-page images are kept with a warning
(a trainer sees the first frame only). Through `hubpress scan --json` and `publish-dataset`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")

SIZE = 16


def _deep(mode: str) -> Image.Image:
    ramp = (np.arange(SIZE * SIZE).reshape(SIZE, SIZE) * 200).astype("uint16" if mode == "I;16" else "int32")
    if mode == "F":
        return Image.fromarray(ramp.astype("float32"))
    return Image.fromarray(ramp)


def _frames(count: int) -> list[Image.Image]:
    return [Image.new("RGB", (SIZE, SIZE), (40 * i, 10, 10)) for i in range(count)]


# (file written over a sample's target, its format, the kind expected, its severity)
CASES = {
    "png16": (lambda p: _deep("I;16").save(p, format="PNG"), "high_bit_depth_image", "error"),
    "tiff32": (lambda p: _deep("I").save(p, format="TIFF"), "high_bit_depth_image", "error"),
    "tiff_float": (lambda p: _deep("F").save(p, format="TIFF"), "high_bit_depth_image", "error"),
    "apng": (
        lambda p: _frames(3)[0].save(p, format="PNG", save_all=True, append_images=_frames(3)[1:]),
        "multi_frame_image",
        "warning",
    ),
    "webp_anim": (
        lambda p: _frames(2)[0].save(
            p, format="WEBP", save_all=True, append_images=_frames(2)[1:], lossless=True
        ),
        "multi_frame_image",
        "warning",
    ),
    "tiff_pages": (
        lambda p: _frames(2)[0].save(p, format="TIFF", save_all=True, append_images=_frames(2)[1:]),
        "multi_frame_image",
        "warning",
    ),
}
SUFFIX = {"png16": "png", "apng": "png", "webp_anim": "webp"}


def test_deep_and_multi_frame_images_are_reported_by_kind(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    write_dataset(src, samples=len(CASES) + 1, image_size=SIZE, seed=4, test_fraction=0)
    targets = sorted((src / "train" / "training_images").glob("*.png"))
    expected = {}
    for (case, (write, kind, severity)), target in zip(CASES.items(), targets, strict=False):
        new = target.with_suffix("." + SUFFIX.get(case, "tiff"))
        target.unlink()
        write(new)
        expected[target.stem] = (kind, severity)

    code, stdout, err = run_cli("scan", str(src), "--json")
    problems = json.loads(stdout)["problems"]
    for sample, (kind, _severity) in expected.items():
        found = [p for p in problems if p["sample"] == sample and p["kind"] == kind]
        assert len(found) == 1, (sample, kind, problems)
        assert "\n" not in found[0]["detail"]

    code, stdout, err = run_cli("publish-dataset", str(src), str(out), "--json")
    assert code == 0, err
    result = json.loads(stdout.strip().splitlines()[-1])
    errors = sum(1 for kind, severity in expected.values() if severity == "error")
    assert result["skipped"] == {"train": errors}
    assert result["samples"] == {"train": len(CASES) + 1 - errors}
