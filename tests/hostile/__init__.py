"""A corpus of hostile and broken input, generated at test time (nothing binary is checked in).

    folder_tree(root) -> {sample id: expected problem kind}   # folder layout, file-level cases
    csv_tree(root)    -> {sample id: expected problem kind}   # CSV layout, path cases
    safetensors_cases(dir) -> {path: expected error class name}

Every tree also holds GOOD_SAMPLES good samples, which must still publish with on_error=skip.
"""

from __future__ import annotations

import csv
import io
import os
import struct
import zlib
from pathlib import Path

GOOD_SAMPLES = 3
HUGE_PROMPT = ("a watercolour of a lighthouse. " * 33_334).strip()  # ~1 MB


def png(size: tuple[int, int] = (8, 8), colour: tuple[int, int, int] = (10, 20, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG of a few dozen bytes declaring width x height pixels (10 G pixels): a
    decoder that trusted it would try to allocate ~30 GB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _folder_sample(split_dir: Path, base: str | bytes, prompt: bytes, control: bytes, target: bytes) -> None:
    controls, images = split_dir / "control_images", split_dir / "training_images"
    controls.mkdir(parents=True, exist_ok=True)
    images.mkdir(parents=True, exist_ok=True)
    if isinstance(base, bytes):  # a name that is not valid UTF-8: go through bytes paths
        with open(os.fsencode(controls) + b"/" + base + b".png", "wb") as fh:
            fh.write(control)
        with open(os.fsencode(images) + b"/" + base + b".png", "wb") as fh:
            fh.write(target)
        with open(os.fsencode(images) + b"/" + base + b".txt", "wb") as fh:
            fh.write(prompt)
        return
    (controls / f"{base}.png").write_bytes(control)
    (images / f"{base}.png").write_bytes(target)
    (images / f"{base}.txt").write_bytes(prompt)


def folder_tree(root: str | os.PathLike[str]) -> dict[str, str]:
    """File-level hostile cases in the folder layout. Returns {id: expected problem kind}."""
    split = Path(root) / "train"
    for i in range(GOOD_SAMPLES):
        _folder_sample(split, f"good{i}", f"good prompt {i}".encode(), png(colour=(i, 0, 0)), png())
    good = png()
    truncated = png((64, 64))[:40]
    cases = {
        "bomb": (b"a bomb", png_bomb(), good, "image_too_large"),
        "zero_bytes": (b"empty file", b"", good, "undecodable_image"),
        "truncated": (b"cut short", truncated, good, "undecodable_image"),
        "not_an_image": (b"text in a png", b"#!/bin/sh\nrm -rf /\n" * 20, good, "undecodable_image"),
        "prompt_latin1": ("caf\xe9 cr\xe8me".encode("latin-1"), good, good, "prompt_not_utf8"),
    }
    expected = {}
    for sid, (prompt, control, target, kind) in cases.items():
        _folder_sample(split, sid, prompt, control, target)
        expected[sid] = kind
    # ids that differ only in case: both are refused (neither silently wins)
    _folder_sample(split, "CaseTwin", b"upper", good, good)
    _folder_sample(split, "casetwin", b"lower", good, good)
    expected["CaseTwin"] = expected["casetwin"] = "duplicate_id"
    # a 1 MB prompt is legal data: it must be kept and published byte for byte
    _folder_sample(split, "huge_prompt", HUGE_PROMPT.encode(), good, good)
    # file names that are not UTF-8 (latin-1 bytes): each file gets a name_not_utf8 problem
    _folder_sample(split, b"na\xefve", b"latin-1 name", good, good)
    return expected


def csv_tree(root: str | os.PathLike[str], outside: str | os.PathLike[str]) -> dict[str, str]:
    """Path cases in the CSV layout. `outside` is a directory outside root holding secret.png."""
    root, outside = Path(root), Path(outside)
    (root / "img").mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.png").write_bytes(png())
    rows = [["id", "image", "control", "prompt"]]
    for i in range(GOOD_SAMPLES):
        (root / "img" / f"good{i}_t.png").write_bytes(png())
        (root / "img" / f"good{i}_c.png").write_bytes(png(colour=(i, 1, 1)))
        rows.append([f"good{i}", f"img/good{i}_t.png", f"img/good{i}_c.png", f"good prompt {i}"])
    (root / "img" / "t.png").write_bytes(png())
    os.symlink(outside / "secret.png", root / "img" / "link.png")
    cases = {
        "absolute": str(outside / "secret.png"),
        "dotdot": "../" + outside.name + "/secret.png",
        "deep_dotdot": "img/../../" + outside.name + "/secret.png",
        "url": "https://example.com/secret.png",
        "s3_url": "s3://bucket/secret.png",
        "nul_byte": "img/t.png\x00.png",
        "symlink_out": "img/link.png",
    }
    expected = {}
    for sid, control in cases.items():
        rows.append([sid, "img/t.png", control, f"prompt {sid}"])
        expected[sid] = "path_outside_root"
    with open(root / "train.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return expected


def safetensors_cases(directory: str | os.PathLike[str]) -> dict[Path, str]:
    """Weights files that must be refused, each with its expected error class name."""
    from hubpress.testdata.synth_lora import write_broken

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    expected = {}
    for kind, error in (
        ("huge_header", "InvalidWeightsError"),
        ("offsets_past_end", "InvalidWeightsError"),
        ("overlapping", "InvalidWeightsError"),
        ("pickle", "PickleWeightsError"),
    ):
        (directory / kind).mkdir(exist_ok=True)
        path = write_broken(directory / kind / "pytorch_lora_weights.safetensors", kind)
        expected[path] = error
    return expected
