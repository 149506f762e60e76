"""Folder layout discovery: pure matching over one listing (issue 3 rules)."""

from __future__ import annotations

import pytest

from hubpress.errors import SourceError
from hubpress.sources.discovery import detect_layout, discover, discover_folder
from hubpress.sources.intake import IntakeOptions, discover_source
from hubpress.storage.files import ListedFile, LocalStorage
from hubpress.testdata.synth import write_dataset

ROOT = "/data/ds"


def listing(*relpaths: str) -> list[ListedFile]:
    return [ListedFile(rel, 10, "1", None) for rel in relpaths]


def tree(split="train", controls=(), prompts=(), targets=()):
    return listing(
        *(f"{split}/control_images/{n}" for n in controls),
        *(f"{split}/training_images/{n}.txt" for n in prompts),
        *(f"{split}/training_images/{n}" for n in targets),
    )


def by_id(found, split="train"):
    return {s.id: s for s in found.samples[split]}


def names(refs):
    return [r.name for r in refs]


def kinds(found):
    return sorted((p.kind, p.sample, p.path) for p in found.problems)


def test_main_numbered_mask_and_target_are_matched():
    found = discover_folder(
        tree(
            controls=["a.jpg", "a_control_2.webp", "a_control_1.png", "a_control_10.png", "a_mask.png"],
            prompts=["a"],
            targets=["a.png"],
        ),
        root=ROOT,
    )
    a = by_id(found)["a"]
    assert names(a.controls) == ["a.jpg", "a_control_1.png", "a_control_2.webp", "a_control_10.png"]
    assert a.mask.name == "a_mask.png" and a.target.name == "a.png"
    assert a.prompt_file.relpath == "train/training_images/a.txt"
    assert a.controls[0].uri == f"{ROOT}/train/control_images/a.jpg"
    assert found.problems == []


def test_an_exact_base_wins_over_a_numbered_reading():
    # a_1.png beside a_1.txt is the main control of a_1, never a control of a.
    found = discover_folder(
        tree(controls=["a.png", "a_1.png", "a_control_1.png"], prompts=["a", "a_1"]), root=ROOT
    )
    samples = by_id(found)
    assert names(samples["a"].controls) == ["a.png", "a_control_1.png"]
    assert names(samples["a_1"].controls) == ["a_1.png"]


def test_only_control_n_makes_a_numbered_control():
    found = discover_folder(tree(controls=["a.png", "a_1.png", "a_control_0.png"], prompts=["a"]), root=ROOT)
    assert names(by_id(found)["a"].controls) == ["a.png"]
    assert ("orphan_control", None, "train/control_images/a_1.png") in kinds(found)
    assert ("orphan_control", None, "train/control_images/a_control_0.png") in kinds(found)


def test_names_with_dots_spaces_and_non_ascii():
    base = "séance 1.v2 ünï"
    found = discover_folder(
        tree(
            controls=[f"{base}.PNG", f"{base}_control_1.Jpeg", f"{base}_mask.TIF"],
            prompts=[base],
            targets=[f"{base}.WebP"],
        ),
        root=ROOT,
    )
    s = by_id(found)[base]
    assert names(s.controls) == [f"{base}.PNG", f"{base}_control_1.Jpeg"]
    assert s.mask.name == f"{base}_mask.TIF" and s.target.name == f"{base}.WebP"


def test_numbered_controls_without_a_main_control_are_accepted_in_order():
    found = discover_folder(tree(controls=["b_control_2.png", "b_control_1.png"], prompts=["b"]), root=ROOT)
    assert names(by_id(found)["b"].controls) == ["b_control_1.png", "b_control_2.png"]
    assert found.problems == []


def test_a_prompt_without_any_control_is_missing_control():
    found = discover_folder(tree(controls=["b_mask.png"], prompts=["b"]), root=ROOT)
    assert by_id(found)["b"].controls == []
    assert [(p.kind, p.sample, p.severity) for p in found.problems] == [("missing_control", "b", "error")]


def test_orphans_are_warnings():
    found = discover_folder(
        tree(
            controls=["a.png", "x.png", "y_mask.png", "z_control_1.png"],
            prompts=["a"],
            targets=["a.png", "w.png"],
        ),
        root=ROOT,
    )
    assert {(p.kind, p.path, p.severity) for p in found.problems} == {
        ("orphan_control", "train/control_images/x.png", "warning"),
        ("orphan_mask", "train/control_images/y_mask.png", "warning"),
        ("orphan_control", "train/control_images/z_control_1.png", "warning"),
        ("orphan_target", "train/training_images/w.png", "warning"),
    }


def test_two_files_for_one_role_are_ambiguous():
    found = discover_folder(
        tree(controls=["a.png", "a.JPG", "a_control_1.png", "a_control_1.webp"], prompts=["a"]), root=ROOT
    )
    ambiguous = [p for p in found.problems if p.kind == "ambiguous_file"]
    assert len(ambiguous) == 2 and all(p.sample == "a" and p.severity == "error" for p in ambiguous)
    assert "train/control_images/a.JPG" in ambiguous[0].detail and "a.png" in ambiguous[0].detail


def test_stray_files_are_reported_hidden_files_are_not():
    found = discover_folder(
        tree(controls=["a.png", "a.gif", ".DS_Store", "sub/a.png"], prompts=["a"])
        + listing("train/README.md", "train/other/x.png", "train/training_images/notes.md"),
        root=ROOT,
    )
    ignored = sorted(p.path for p in found.problems if p.kind == "ignored_file")
    assert ignored == [
        "train/README.md",
        "train/control_images/a.gif",
        "train/control_images/sub/a.png",
        "train/other/x.png",
        "train/training_images/notes.md",
    ]
    assert all(p.severity == "warning" for p in found.problems)


def test_both_splits_and_sorted_ids():
    found = discover_folder(
        tree("train", controls=["b.png", "a.png"], prompts=["b", "a"])
        + tree("test", controls=["c.png"], prompts=["c"]),
        root=ROOT,
    )
    assert list(found.samples) == ["train", "test"]
    assert [s.id for s in found.samples["train"]] == ["a", "b"]
    assert found.samples["test"][0].split == "test"


def test_layout_detection():
    assert detect_layout(["train.csv", "train/control/a.png"]) == "csv"
    assert detect_layout(["test/control_images/a.png"]) == "folder"
    with pytest.raises(SourceError, match="folder layout .* CSV layout"):
        detect_layout(["README.md", "images/a.png"])
    with pytest.raises(SourceError, match="train/ nor test/"):
        detect_layout(["train.csv"], "folder")
    with pytest.raises(SourceError, match="train.csv or test.csv"):
        detect_layout(["train/control_images/a.png"], "csv")
    with pytest.raises(SourceError, match="expected train/ and/or test/"):
        discover(listing("valid/control_images/a.png"), root=ROOT, layout="folder")


class CountingStorage(LocalStorage):
    """A real LocalStorage that counts the calls discovery makes."""

    def __init__(self, root):
        super().__init__(root)
        self.calls: dict[str, int] = {}

    def _count(self, name):
        self.calls[name] = self.calls.get(name, 0) + 1

    def list(self, prefix="", report_unlisted=False):
        self._count("list")
        return super().list(prefix, report_unlisted)

    def exists(self, relpath):
        self._count("exists")
        return super().exists(relpath)

    def read_bytes(self, relpath):
        self._count("read_bytes")
        return super().read_bytes(relpath)

    def read_listed(self, listed):
        self._count("read_listed")
        return super().read_listed(listed)

    def open(self, relpath):
        self._count("open")
        return super().open(relpath)


@pytest.mark.parametrize("layout", ["folder", "csv"])
def test_discovery_lists_once_and_checks_nothing_per_sample(tmp_path, layout):
    summary = write_dataset(
        tmp_path, layout=layout, samples=30, test_fraction=0.3, masks=True, extra_controls=1
    )
    storage = CountingStorage(tmp_path)
    found = discover_source(storage, IntakeOptions())
    assert {k: [s.id for s in v] for k, v in found.samples.items()} == summary.expected
    # One listing; the CSV layout also reads its two CSV files (as the files listed), and nothing
    # else is touched.
    assert storage.calls == ({"list": 1} if layout == "folder" else {"list": 1, "read_listed": 2})
