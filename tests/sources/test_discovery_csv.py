"""CSV layout discovery: columns, ids, per-row problems, path safety, auto-correction, masks."""

from __future__ import annotations

import pytest

from hubpress.errors import SourceError
from hubpress.sources.discovery import discover_csv, normalise_csv_path
from hubpress.storage.files import ListedFile

ROOT = "s3://bucket/ds"


def listing(*relpaths: str) -> list[ListedFile]:
    return [ListedFile(rel, 10, "etag", None) for rel in relpaths]


FILES = listing(
    "train.csv",
    "test.csv",
    "train/target/a.png",
    "train/target/a_mask.png",
    "train/control/a.png",
    "train/control/a_control_1.webp",
    "train/target/b.png",
    "train/control/b.jpg",
    "train/control/b_mask.bmp",
    "test/control/c.webp",
)


def run(train: str | None = None, test: str | None = None, files=FILES, **kw):
    texts = {k: v for k, v in {"train": train, "test": test}.items() if v is not None}
    present = [f for f in files if f.relpath not in ("train.csv", "test.csv") or f.relpath[:-4] in texts]
    return discover_csv(present, root=ROOT, csv_texts=texts, **kw)


def samples(found, split="train"):
    return {s.id: s for s in found.samples[split]}


def test_columns_ids_and_masks_by_convention():
    found = run(
        "image,control,control_1,prompt\n"
        "train/target/a.png,train/control/a.png,train/control/a_control_1.webp,turn it blue\n"
        "train/target/b.png,train/control/b.jpg,,make it red\n",
        "control,prompt\ntest/control/c.webp,draw\n",
    )
    a, b = samples(found)["a"], samples(found)["b"]
    assert [r.relpath for r in a.controls] == ["train/control/a.png", "train/control/a_control_1.webp"]
    assert a.target.uri == f"{ROOT}/train/target/a.png" and a.prompt == "turn it blue" and a.row == 1
    # The mask beside the control wins; else the one beside the target.
    assert b.mask.relpath == "train/control/b_mask.bmp"
    assert a.mask.relpath == "train/target/a_mask.png"
    c = samples(found, "test")["c"]
    assert c.target is None and c.mask is None and [r.name for r in c.controls] == ["c.webp"]
    assert found.problems == [] and found.corrections == []


def test_id_column_then_image_stem_then_control_stem():
    found = run(
        "id,image,control,prompt\n"
        "custom,train/target/a.png,train/control/a.png,p\n"
        ",train/target/b.png,train/control/b.jpg,p\n",
        "control,prompt\ntest/control/c.webp,p\n",
    )
    assert set(samples(found)) == {"custom", "b"}
    assert set(samples(found, "test")) == {"c"}


def test_missing_required_column_names_the_columns_found():
    with pytest.raises(SourceError, match=r"lacks the required column\(s\) prompt; found: image, control"):
        run("image,control\ntrain/target/a.png,train/control/a.png\n")
    with pytest.raises(SourceError, match="image.*--allow-missing-target"):
        run("control,prompt\ntrain/control/a.png,p\n")
    found = run("control,prompt\ntrain/control/a.png,p\n", allow_missing_target=True)
    assert samples(found)["a"].target is None


def test_unknown_columns_warn_and_are_ignored():
    found = run("image,control,prompt,Notes\ntrain/target/a.png,train/control/a.png,p,whatever\n")
    assert [(p.kind, p.severity) for p in found.problems] == [("unknown_column", "warning")]
    assert "'Notes'" in found.problems[0].detail
    assert "a" in samples(found)


def test_empty_required_cells_are_per_row_problems_not_a_dropped_split():
    found = run(
        "image,control,prompt\n"
        ",train/control/a.png,p\n"  # no target in train
        "train/target/b.png,,p\n"  # no control
        "train/target/a.png,train/control/a.png\n"  # short row: no prompt cell
    )
    assert len(found.samples["train"]) == 3
    by_row = {s.row: s for s in found.samples["train"]}
    assert by_row[1].target is None  # missing_target is decided by policy later
    assert by_row[3].prompt == ""
    missing = [(p.kind, p.sample) for p in found.problems]
    assert missing == [("missing_control", "b")]
    assert "row 2" in found.problems[0].detail


def test_referenced_files_that_do_not_exist():
    found = run(
        "image,control,control_1,mask,prompt\n"
        "train/target/zz.png,train/control/a.png,train/control/nope.png,train/control/nomask.png,p\n"
    )
    assert sorted((p.kind, p.path) for p in found.problems) == [
        ("missing_control", "train/control/nope.png"),
        ("missing_file", "train/control/nomask.png"),
        ("missing_target", "train/target/zz.png"),
    ]


@pytest.mark.parametrize(
    "cell",
    [
        "/etc/passwd",
        "../outside.png",
        "train/../../outside.png",
        "train/x/../control/a.png",
        "train//control/a.png",
        "https://example.com/a.png",
        "s3://other/a.png",
        "C:\\data\\a.png",
        "train/control/a.png\x00.png",
    ],
)
def test_paths_that_leave_the_root_are_refused(cell):
    found = run(f"image,control,prompt\ntrain/target/a.png,{cell},p\n")
    assert [p.kind for p in found.problems] == ["path_outside_root"]
    assert samples(found)["a"].controls == []


def test_normalised_paths_inside_the_root_are_fine():
    assert normalise_csv_path(" train\\control\\a.png ") == ("train/control/a.png", None)
    assert normalise_csv_path("./train/./control/a.png") == ("train/control/a.png", None)
    assert normalise_csv_path("train/x/../control/a.png")[0] is None  # '..' is refused, even inside


def test_a_missing_file_with_one_other_extension_is_resolved():
    found = run("image,control,prompt\ntrain/target/b.png,train/control/b.png,p\n")
    assert samples(found)["b"].controls[0].relpath == "train/control/b.jpg"
    (c,) = found.corrections
    assert (c.kind, c.sample, c.from_, c.to) == (
        "file_resolved",
        "b",
        "train/control/b.png",
        "train/control/b.jpg",
    )
    assert found.problems == []


def test_several_candidates_are_ambiguous():
    files = FILES + listing("train/control/b.webp")
    found = run("image,control,prompt\ntrain/target/b.png,train/control/b.png,p\n", files=files)
    (p,) = found.problems
    assert p.kind == "ambiguous_file" and p.sample == "b"
    assert "train/control/b.jpg" in p.detail and "train/control/b.webp" in p.detail


def test_mask_column_wins_over_convention():
    found = run(
        "image,control,mask,prompt\ntrain/target/a.png,train/control/a.png,train/control/b_mask.bmp,p\n"
    )
    assert samples(found)["a"].mask.relpath == "train/control/b_mask.bmp"


def test_utf8_prompts_and_quoted_cells_survive():
    found = run('image,control,prompt\ntrain/target/a.png,train/control/a.png,"étude, ""bleue""\nligne 2"\n')
    assert samples(found)["a"].prompt == 'étude, "bleue"\nligne 2'


def test_empty_csv_is_an_error():
    with pytest.raises(SourceError, match="train.csv is empty"):
        run("")
