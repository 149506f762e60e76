"""run_intake end to end on generated local trees, in both layouts, defective ones included."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from hubpress.errors import ConfigError, SourceError, ValidationFailed
from hubpress.sources.intake import fix_source, run_intake
from hubpress.sources.models import IntakeReport
from hubpress.storage.hashcache import HashCache
from hubpress.testdata.synth import DEFECTS, write_dataset


def png(size=(16, 16), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


def intake(root, **kw) -> IntakeReport:
    kw.setdefault("workers", 1)
    kw.setdefault("cache", HashCache(None))
    return run_intake(str(root), **kw)


def kept(report):
    return {name: [s.id for s in m.samples] for name, m in report.splits.items()}


def skipped(report):
    return {name: {s.id: s.reasons for s in m.skipped} for name, m in report.splits.items()}


def kinds(report, severity=None):
    return sorted({p.kind for p in report.problems if severity is None or p.severity == severity})


@pytest.mark.parametrize("layout", ["folder", "csv"])
def test_defective_tree_is_reported_exactly(tmp_path, layout):
    s = write_dataset(
        tmp_path,
        layout=layout,
        samples=24,
        test_fraction=0.25,
        masks=True,
        extra_controls=1,
        defects=DEFECTS,
        fancy_names=True,
        seed=11,
    )
    report = intake(tmp_path)
    assert report.layout == layout
    assert kept(report) == s.expected
    assert skipped(report) == {split: {k: [v] for k, v in d.items()} for split, d in s.skipped.items()}

    mismatched = s.defects["ext_mismatch"][0].split("/", 1)[1]
    sample = next(x for x in report.splits["train"].samples if x.id == mismatched)
    assert sample.controls[0].name.endswith(".png") and sample.controls[0].format == "jpeg"
    (corr,) = [c for c in report.corrections if c.kind == "extension_mismatch"]
    assert corr.sample == mismatched and corr.to.endswith(".jpg")
    expected_warnings = {
        "extension_mismatch",
        "empty_prompt",
        "orphan_control" if layout == "folder" else "file_resolved",
    }
    assert set(kinds(report, "warning")) == expected_warnings
    assert set(kinds(report, "error")) == {"undecodable_image"}
    empty = {r.split("/", 1)[1] for r in s.defects["empty_prompt"]}
    assert {x.id: x.prompt for x in report.splits["train"].samples if x.id in empty} == dict.fromkeys(
        empty, ""
    )

    for split in report.splits.values():
        assert [x.id for x in split.samples] == sorted(x.id for x in split.samples)
        for x in split.samples:
            assert x.prompt is not None and x.prompt == x.prompt.strip()
            for ref in x.images():
                assert ref.size > 0 and ref.format in {"png", "jpeg", "webp"}
                assert len(ref.sha256) == 64 and ref.width == 16 and ref.height == 16
    assert report.stats["samples_discovered"] == 24

    again = IntakeReport.from_json(report.to_json())
    assert again == report


def test_rerun_reads_no_bytes_and_changes_are_read_alone(tmp_path):
    write_dataset(tmp_path / "ds", samples=10, masks=True)
    cache = HashCache(tmp_path / "cache.sqlite")
    first = intake(tmp_path / "ds", cache=cache, workers=2)
    assert first.stats["files_read"] == first.stats["files"] == 40
    second = intake(tmp_path / "ds", cache=cache, workers=2)
    assert (second.stats["files_read"], second.stats["bytes_read"], second.stats["images_decoded"]) == (
        0,
        0,
        0,
    )
    assert kept(second) == kept(first)
    (tmp_path / "ds/train/control_images/s000004_mask.png").write_bytes(png((3, 3), "L"))
    third = intake(tmp_path / "ds", cache=cache)
    assert (third.stats["files_read"], third.stats["images_decoded"]) == (1, 1)
    assert skipped(third)["train"] == {"s000004": ["mask_size_mismatch"]}


def test_on_error_fail_raises_before_anything_is_built(tmp_path):
    write_dataset(tmp_path, samples=6, defects=("truncated",))
    with pytest.raises(ValidationFailed, match=r"1 undecodable_image.*--on-error skip") as info:
        intake(tmp_path, on_error="fail")
    assert info.value.report.errors[0].kind == "undecodable_image"
    clean = tmp_path / "clean"
    write_dataset(clean, samples=3)
    assert kept(intake(clean, on_error="fail")) == {"train": ["s000000", "s000001", "s000002"]}


def test_targets_are_required_in_train_only(tmp_path):
    write_dataset(tmp_path, samples=4, test_fraction=0.5)
    os.remove(tmp_path / "train/training_images/s000001.png")
    report = intake(tmp_path)
    assert skipped(report) == {"train": {"s000001": ["missing_target"]}, "test": {}}
    assert kept(report)["test"] == ["t000000", "t000001"]  # test samples need no target
    assert skipped(intake(tmp_path, allow_missing_target=True))["train"] == {}


def folder_sample(
    root: Path, base: str, prompt: bytes, split="train", control: bytes | None = None, ext="png"
):
    (root / split / "control_images").mkdir(parents=True, exist_ok=True)
    (root / split / "training_images").mkdir(parents=True, exist_ok=True)
    (root / split / "control_images" / f"{base}.{ext}").write_bytes(control if control is not None else png())
    (root / split / "training_images" / f"{base}.png").write_bytes(png())
    (root / split / "training_images" / f"{base}.txt").write_bytes(prompt)


def test_prompt_encodings(tmp_path):
    folder_sample(tmp_path, "bom", "\ufeffbonjour\n".encode())
    folder_sample(tmp_path, "latin", "caf\xe9".encode("cp1252"))
    report = intake(tmp_path)
    assert {s.id: s.prompt for s in report.splits["train"].samples} == {"bom": "bonjour"}
    assert skipped(report)["train"] == {"latin": ["prompt_not_utf8"]}
    latin = intake(tmp_path, prompt_encoding="cp1252")
    assert {s.id: s.prompt for s in latin.splits["train"].samples}["latin"] == "café"
    with pytest.raises(ConfigError, match="not a known text encoding"):
        intake(tmp_path, prompt_encoding="klingon-8")


def test_duplicate_ids_are_compared_ignoring_case(tmp_path):
    folder_sample(tmp_path, "Cat", b"a")
    folder_sample(tmp_path, "cat", b"b")
    folder_sample(tmp_path, "dog", b"c")
    report = intake(tmp_path)
    assert kept(report) == {"train": ["dog"]}
    assert skipped(report)["train"] == {"Cat": ["duplicate_id"], "cat": ["duplicate_id"]}


def test_masks_must_match_the_main_control(tmp_path):
    folder_sample(tmp_path, "a", b"p")
    (tmp_path / "train/control_images/a_mask.png").write_bytes(png((8, 16), "L"))
    (tmp_path / "train/control_images/a_control_1.png").write_bytes(
        png((8, 16))
    )  # numbered controls may differ
    report = intake(tmp_path)
    assert skipped(report)["train"] == {"a": ["mask_size_mismatch"]}
    (problem,) = report.errors
    assert problem.path == "train/control_images/a_mask.png" and "8x16" in problem.detail


def test_pixel_limit_and_unsupported_formats(tmp_path):
    folder_sample(tmp_path, "big", b"p", control=png((64, 64)))
    gif = io.BytesIO()
    Image.new("P", (16, 16)).save(gif, format="GIF")
    folder_sample(tmp_path, "gif", b"p", control=gif.getvalue())
    report = intake(tmp_path, max_pixels=1000)
    assert skipped(report)["train"] == {"big": ["image_too_large"], "gif": ["unsupported_format"]}
    report = intake(tmp_path)
    assert skipped(report)["train"] == {"gif": ["unsupported_format"]}


def test_csv_symlink_leaving_the_root(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, layout="csv", samples=3)
    (tmp_path / "elsewhere.png").write_bytes(png())
    os.remove(root / "train/control/s000001.png")
    os.symlink(tmp_path / "elsewhere.png", root / "train/control/s000001.png")
    report = intake(root)
    assert skipped(report)["train"] == {"s000001": ["path_outside_root"]}


def test_sources_that_cannot_be_read(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        intake(tmp_path / "nope")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk/readme.md").write_text("hi")
    with pytest.raises(SourceError, match="folder layout.*CSV layout"):
        intake(tmp_path / "junk")
    with pytest.raises(ConfigError, match="on_error"):
        intake(tmp_path, on_error="ignore")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/train.csv").write_bytes(b"control,prompt\n\xff\xfe,x\n")
    with pytest.raises(SourceError, match="train.csv is not valid utf-8"):
        intake(tmp_path / "bad", allow_missing_target=True)


def test_fix_source_renames_and_rewrites_folder_tree(tmp_path):
    s = write_dataset(tmp_path, samples=5, defects=("ext_mismatch",))
    sid = s.defects["ext_mismatch"][0].split("/", 1)[1]
    before = intake(tmp_path)
    assert (tmp_path / f"train/control_images/{sid}.png").exists()  # scanning changes nothing
    fixes = fix_source(before)
    assert [(f.action, f.path, f.to) for f in fixes] == [
        ("renamed", f"train/control_images/{sid}.png", f"train/control_images/{sid}.jpg")
    ]
    after = intake(tmp_path)
    assert after.corrections == [] and kept(after) == kept(before)


def test_fix_source_rewrites_the_csv_atomically_with_a_backup(tmp_path):
    s = write_dataset(tmp_path, layout="csv", samples=6, defects=("ext_mismatch", "csv_wrong_ext"), seed=2)
    original = (tmp_path / "train.csv").read_bytes()
    before = intake(tmp_path)
    assert {c.kind for c in before.corrections} == {"extension_mismatch", "file_resolved"}
    fixes = fix_source(before)
    assert [f.action for f in fixes] == ["renamed", "backed_up", "rewrote"]
    backup = tmp_path / fixes[1].to
    assert backup.read_bytes() == original
    text = (tmp_path / "train.csv").read_text("utf-8")
    wrong = s.defects["csv_wrong_ext"][0].split("/", 1)[1]
    assert f"train/control/{wrong}.webp" in text
    after = intake(tmp_path)
    assert after.corrections == [] and kept(after) == kept(before)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".train.csv.*"))
