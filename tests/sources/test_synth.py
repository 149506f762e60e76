"""The generator the intake tests and benches stand on: deterministic, both layouts, real defects."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
from PIL import Image

from hubpress.sources.formats import sniff_format
from hubpress.testdata.synth import DEFECTS, SynthSpec, main, write_dataset


def digest_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_pixels(tmp_path):
    spec = SynthSpec(samples=4, masks=True, extra_controls=1, seed=3)
    write_dataset(tmp_path / "a", spec)
    write_dataset(tmp_path / "b", spec)
    write_dataset(tmp_path / "c", spec, seed=4)
    assert digest_tree(tmp_path / "a") == digest_tree(tmp_path / "b")
    assert digest_tree(tmp_path / "a") != digest_tree(tmp_path / "c")


def test_folder_layout_files_and_summary(tmp_path):
    s = write_dataset(tmp_path, samples=10, test_fraction=0.3, image_size=12, extra_controls=2, masks=True)
    assert s.layout == "folder"
    assert s.expected == {"train": [f"s{i:06d}" for i in range(7)], "test": [f"t{i:06d}" for i in range(3)]}
    assert s.skipped == {"train": {}, "test": {}}
    names = set(s.files)
    assert {"train/control_images/s000000.png", "train/control_images/s000000_control_2.png"} <= names
    assert {"train/control_images/s000000_mask.png", "train/training_images/s000000.txt"} <= names
    assert "train/training_images/s000000.png" in names
    assert "test/training_images/t000000.png" not in names  # no targets in test unless asked
    with Image.open(tmp_path / "train/control_images/s000003.png") as im:
        assert im.size == (12, 12)
    assert (tmp_path / "train/training_images/s000001.txt").read_text("utf-8").startswith("Make s000001")


def test_csv_layout_follows_the_guide(tmp_path):
    s = write_dataset(tmp_path, layout="csv", samples=5, test_fraction=0.4, extra_controls=1, masks=True)
    with open(tmp_path / "train.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["image", "control", "control_1", "prompt"]
    assert rows[0]["image"] == "train/target/s000000.png"
    assert (tmp_path / "train/target/s000000_mask.png").exists()  # beside the target, as in the guide
    with open(tmp_path / "test.csv", newline="", encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == ["control", "control_1", "prompt"]
    assert s.expected["test"] == ["t000000", "t000001"]


def test_defects_are_injected_and_described(tmp_path):
    s = write_dataset(tmp_path, samples=20, defects=DEFECTS, defect_count=2, seed=5)
    assert set(s.defects) == {"upper_ext", "ext_mismatch", "truncated", "empty_prompt", "orphan"}
    assert all(len(v) == 2 for v in s.defects.values())
    for ref in s.defects["upper_ext"]:
        sid = ref.split("/", 1)[1]
        assert (tmp_path / f"train/control_images/{sid}.PNG").exists()
    for ref in s.defects["ext_mismatch"]:
        sid = ref.split("/", 1)[1]
        assert sniff_format((tmp_path / f"train/control_images/{sid}.png").read_bytes()) == "jpeg"
    assert {sid: kind for sid, kind in s.skipped["train"].items()} == {
        **{r.split("/", 1)[1]: "undecodable_image" for r in s.defects["truncated"]},
    }
    # an empty prompt is kept (with a warning), as qflux keeps it
    assert {r.split("/", 1)[1] for r in s.defects["empty_prompt"]} <= set(s.expected["train"])
    assert len(s.expected["train"]) == 18
    assert all((tmp_path / rel).exists() for rel in s.defects["orphan"])


def test_repeat_bytes_reuses_one_encoding(tmp_path):
    write_dataset(tmp_path, samples=3, repeat_bytes=True, image_size=8)
    a = (tmp_path / "train/control_images/s000000.png").read_bytes()
    assert a == (tmp_path / "train/control_images/s000002.png").read_bytes()


def test_unknown_defect_and_too_few_samples_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown defect"):
        write_dataset(tmp_path, defects=("nope",))
    with pytest.raises(ValueError, match="defective samples"):
        write_dataset(tmp_path, samples=2, defects=("truncated", "empty_prompt"), defect_count=2)


def test_command_line(tmp_path, capsys):
    main([str(tmp_path / "ds"), "--layout", "csv", "--samples", "8", "--defects", "all", "--fancy-names"])
    out = capsys.readouterr().out
    assert '"layout": "csv"' in out
    assert (tmp_path / "ds/train.csv").exists()
