"""Correctness at the edges, through the CLI and the flows: symlinks, long CSV prompts, deeply
nested safetensors headers, EXIF orientation, Unicode-equal ids, --fix-source, degenerate LoRAs."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import unicodedata
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from tests.conftest import WRITE_TOKEN, harness_api

pytestmark = pytest.mark.usefixtures("prefect_harness")


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "HF_TOKEN": WRITE_TOKEN, **harness_api()},
        timeout=300,
    )


def png(path: Path, size=(8, 8), color=(200, 0, 0), orientation: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, color)
    if orientation is None:
        image.save(path)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(path.with_suffix(".jpg") if path.suffix == ".jpg" else path, exif=exif)
    return path


def folder_sample(root: Path, name: str, prompt: str = "edit it") -> None:
    png(root / f"train/control_images/{name}.png")
    png(root / f"train/training_images/{name}.png", color=(0, 200, 0))
    (root / f"train/training_images/{name}.txt").write_text(prompt)


def scan_json(root: Path, *extra: str) -> dict:
    out = cli("scan", str(root), "--json", *extra)
    assert out.returncode in (0, 1), out.stderr
    assert "Traceback" not in out.stderr
    return json.loads(out.stdout)


def kinds(report: dict) -> list[str]:
    return [p["kind"] for p in report["problems"]]


def test_symlink_loops_are_reported_and_folders_inside_the_root_are_followed(tmp_path):
    root = tmp_path / "src"
    folder_sample(root, "a")
    # The controls of b live in a folder reached through a symlink that stays inside the root.
    png(root / "shared/b.png")
    (root / "train/training_images/b.txt").write_text("edit b")
    png(root / "train/training_images/b.png")
    (root / "train/control_images/more").symlink_to(root / "shared")  # a sub-folder: reported as such
    (root / "train/loop").symlink_to(root / "train")  # a loop back to an ancestor
    (root / "train/control_images/x1").symlink_to(root / "train/control_images/x2")
    (root / "train/control_images/x2").symlink_to(root / "train/control_images/x1")  # a file loop
    (root / "train/control_images/outside").symlink_to(tmp_path)  # leaves the root
    report = scan_json(root)
    by_path = {p["path"]: p["kind"] for p in report["problems"]}
    assert by_path["train/loop"] == "symlink_not_followed"
    assert by_path["train/control_images/x1"] == "symlink_not_followed"
    assert by_path["train/control_images/outside"] == "symlink_not_followed"
    # The folder inside the root was followed: its file is listed (and ignored as a sub-folder).
    assert by_path["train/control_images/more/b.png"] == "ignored_file"
    assert report["splits"]["train"]["samples"] == 1  # a is fine; b has no control


def test_a_csv_prompt_over_128_kib_is_published_byte_for_byte(tmp_path):
    root = tmp_path / "src"
    png(root / "img/a.png")
    png(root / "ctl/a.png")
    prompt = "make it" + " very" * 60_000  # ~300 KB, past Python's csv field limit
    with open(root / "train.csv", "w", newline="") as fh:
        fh.write('image,control,prompt\nimg/a.png,ctl/a.png,"' + prompt + '"\n')
    result = publish_dataset(PublishDatasetParams(source=str(root), target=str(tmp_path / "out")))
    assert result["samples"] == {"train": 1}
    shard = next(Path(os.path.realpath(tmp_path / "out")).rglob("*.parquet"))
    assert pq.read_table(shard, columns=["prompt"]).column("prompt").to_pylist() == [prompt]


def test_a_deeply_nested_safetensors_header_is_one_line(tmp_path):
    header = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    out = cli("publish-lora", str(path), str(tmp_path / "out"))
    assert out.returncode == 1 and "Traceback" not in out.stderr and "RecursionError" not in out.stderr
    assert "nests JSON too deeply" in out.stderr and not (tmp_path / "out").exists()


def test_exif_orientation_sizes_are_compared_as_a_trainer_sees_them(tmp_path):
    root = tmp_path / "src"
    # Stored 20x10 with orientation 6 (a quarter turn): datasets shows it 10x20, like the mask.
    png(root / "train/control_images/r.jpg", size=(20, 10), orientation=6)
    png(root / "train/control_images/r_mask.png", size=(10, 20))
    png(root / "train/training_images/r.png", size=(10, 20))
    (root / "train/training_images/r.txt").write_text("rotate")
    png(root / "train/control_images/s.jpg", size=(20, 10), orientation=6)
    png(root / "train/control_images/s_mask.png", size=(20, 10))  # the raw size: wrong once rotated
    png(root / "train/training_images/s.png", size=(10, 20))
    (root / "train/training_images/s.txt").write_text("rotate")
    report = scan_json(root)
    problems = {(p["sample"], p["kind"]) for p in report["problems"]}
    assert ("r", "image_rotated") in problems and ("r", "mask_size_mismatch") not in problems
    assert ("s", "mask_size_mismatch") in problems


def test_ids_equal_after_unicode_normalisation_are_duplicates(tmp_path):
    root = tmp_path / "src"
    composed, decomposed = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert composed != decomposed
    for n in (1, 2):
        png(root / f"img/{n}.png")
        png(root / f"ctl/{n}.png")
    (root / "train.csv").write_text(
        f"id,image,control,prompt\n{composed},img/1.png,ctl/1.png,p\n{decomposed},img/2.png,ctl/2.png,p\n",
        encoding="utf-8",
    )
    report = scan_json(root)
    assert kinds(report).count("duplicate_id") == 2 and report["splits"]["train"]["samples"] == 0


def test_fix_source_rewrites_only_path_columns(tmp_path):
    root = tmp_path / "src"
    png(root / "img/a.png")
    png(root / "ctl/a.jpg")  # the CSV names ctl/a.png: resolved to the only image called a
    # The prompt and the id are exactly the path being rewritten: they must stay as written.
    (root / "train.csv").write_text("id,image,control,prompt\nctl/a.png,img/a.png,ctl/a.png,ctl/a.png\n")
    out = cli("scan", str(root), "--fix-source")
    assert out.returncode == 0, out.stderr
    rows = (root / "train.csv").read_text().splitlines()
    assert rows[1] == "ctl/a.png,img/a.png,ctl/a.jpg,ctl/a.png"


def _lora(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> Path:
    header, offset = {}, 0
    sizes = {"F16": 2, "F32": 4, "BOOL": 1, "I32": 4, "I8": 1}
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return path


@pytest.mark.parametrize(
    ("case", "tensors", "needle", "through"),
    [
        (
            "bool",
            {"m.lora_A.weight": ("BOOL", [4, 8]), "m.lora_B.weight": ("BOOL", [8, 4])},
            "is BOOL",
            "cli",
        ),
        ("int", {"m.lora_A.weight": ("I32", [4, 8]), "m.lora_B.weight": ("I32", [8, 4])}, "is I32", "api"),
        ("rank0", {"m.lora_A.weight": ("F16", [0, 8]), "m.lora_B.weight": ("F16", [8, 0])}, "rank 0", "api"),
        (
            "unpaired",
            {"m.lora_A.weight": ("F16", [4, 8]), "m.lora_B.weight": ("F16", [8, 3])},
            "rank 4",
            "api",
        ),
    ],
)
def test_degenerate_loras_are_refused_before_anything_is_sent(hub, tmp_path, case, tensors, needle, through):
    weights = _lora(tmp_path / f"{case}.safetensors", tensors)
    repo = f"alice/degenerate-{uuid.uuid4().hex[:8]}"
    if through == "cli":  # the command's one line; the other cases through the API, in this process
        out = cli("publish-lora", str(weights), repo)
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert out.returncode == 1 and needle in out.stderr and "Traceback" not in out.stderr, out.stderr
        assert len(lines) <= 2
    else:
        from hubpress.api import upload_lora_safetensors
        from hubpress.errors import HubpressError

        with pytest.raises(HubpressError, match=needle):
            upload_lora_safetensors(str(weights), repo, token=WRITE_TOKEN)
    assert hub.head("model", repo) is None
