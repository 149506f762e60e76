"""Generated image-editing datasets, in both layouts of the qflux guide, for tests and benches.

    python -m hubpress.testdata.synth OUT --layout folder --samples 200 --test-fraction 0.2 --masks \\
        --extra-controls 1 --defects all --seed 7

Pixels are random noise (numpy), so file sizes are realistic for their dimensions. Everything is
deterministic given the seed. `repeat_bytes=True` encodes one image per role and writes the same
bytes for every sample, which is what makes 100,000-sample trees quick to write.

Defects real trees have, each applied to `defect_count` distinct samples:
- upper_ext      main control named `<id>.PNG` (still valid: extensions are case-insensitive)
- ext_mismatch   main control holds JPEG bytes but is named .png (or PNG bytes named .jpg)
- truncated      main control cut in half (the sample must be skipped: undecodable_image)
- empty_prompt   prompt is empty (kept, as qflux keeps it; warning: empty_prompt)
- orphan         folder layout: a control image with no prompt (warning: orphan_control)
- csv_wrong_ext  CSV layout: the CSV names `<id>.png` but the file is `<id>.webp` (file_resolved)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

DEFECTS = ("upper_ext", "ext_mismatch", "truncated", "empty_prompt", "orphan", "csv_wrong_ext")
FOLDER_ONLY = {"orphan"}
CSV_ONLY = {"csv_wrong_ext"}
# What intake must report for a sample carrying each defect: (kept?, problem or correction kind).
DEFECT_OUTCOME: dict[str, tuple[bool, str]] = {
    "upper_ext": (True, ""),
    "ext_mismatch": (True, "extension_mismatch"),
    "truncated": (False, "undecodable_image"),
    "empty_prompt": (True, "empty_prompt"),
    "orphan": (True, "orphan_control"),
    "csv_wrong_ext": (True, "file_resolved"),
}

_PIL_SAVE = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "bmp": "BMP", "tiff": "TIFF"}
_EXT = {"png": "png", "jpeg": "jpg", "webp": "webp", "bmp": "bmp", "tiff": "tiff"}


@dataclass(frozen=True)
class SynthSpec:
    layout: Literal["folder", "csv"] = "folder"
    samples: int = 10
    test_fraction: float = 0.0
    image_size: int = 16
    extra_controls: int = 0
    masks: bool = False
    targets_in_test: bool = False
    image_format: str = "png"  # png, jpeg, webp, bmp, tiff
    defects: tuple[str, ...] = ()
    defect_count: int = 1
    seed: int = 0
    repeat_bytes: bool = False
    fancy_names: bool = False  # some ids with dots, spaces and non-ASCII letters
    csv_mask_column: bool = False  # CSV layout: name masks in a `mask` column instead of by convention


@dataclass
class SynthSummary:
    root: str
    layout: str
    files: list[str] = field(default_factory=list)  # relpaths written
    expected: dict[str, list[str]] = field(default_factory=dict)  # split -> ids intake must keep, sorted
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)  # split -> id -> problem kind
    defects: dict[str, list[str]] = field(default_factory=dict)  # defect -> "split/id" (or relpath)

    @property
    def sample_count(self) -> int:
        return sum(len(v) for v in self.expected.values()) + sum(len(v) for v in self.skipped.values())


class _Encoder:
    """Noise images, encoded; with repeat_bytes one encoding per (format, mode, size) is reused."""

    def __init__(self, rng: np.random.Generator, size: int, repeat: bool):
        self.rng, self.size, self.repeat = rng, size, repeat
        self._memo: dict[tuple[str, str], bytes] = {}

    def encode(self, fmt: str, mode: str = "RGB") -> bytes:
        key = (fmt, mode)
        if self.repeat and key in self._memo:
            return self._memo[key]
        from PIL import Image

        shape = (self.size, self.size, 3) if mode == "RGB" else (self.size, self.size)
        pixels = self.rng.integers(0, 256, size=shape, dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels, mode=None).convert(mode).save(buf, format=_PIL_SAVE[fmt])
        data = buf.getvalue()
        if self.repeat:
            self._memo[key] = data
        return data


class _Writer:
    """Writes files under a local directory, or to an S3 prefix through hubpress.storage.files."""

    def __init__(self, root: str):
        from hubpress.storage.files import is_s3, open_storage

        self.s3 = is_s3(root)
        self.storage = open_storage(root) if self.s3 else None
        self.root = root if self.s3 else str(Path(root).expanduser().resolve())
        self.pending: list[tuple[str, bytes]] = []
        self.written: list[str] = []
        self._dirs: set[str] = set()

    def put(self, relpath: str, data: bytes) -> None:
        self.written.append(relpath)
        if self.s3:
            self.pending.append((relpath, data))
            return
        path = os.path.join(self.root, relpath)
        parent = os.path.dirname(path)
        if parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        with open(path, "wb") as fh:  # test data: no fsync, no temp name (speed matters here)
            fh.write(data)

    def close(self) -> None:
        if self.s3 and self.pending:
            storage = self.storage
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda item: storage.write_bytes(*item), self.pending))
            self.pending.clear()


def _sample_id(prefix: str, i: int, fancy: bool) -> str:
    if fancy and i % 5 == 3:
        return f"{prefix}{i:06d}.v2 séance"
    if fancy and i % 5 == 4:
        return f"{prefix}{i:06d}_1"
    return f"{prefix}{i:06d}"


def _other_format(fmt: str) -> str:
    return "jpeg" if fmt != "jpeg" else "png"


def write_dataset(root: str | os.PathLike[str], spec: SynthSpec | None = None, **overrides) -> SynthSummary:
    """Write a dataset described by `spec` (or SynthSpec(**overrides)) under `root` (dir or s3://)."""
    if spec is None:
        spec = SynthSpec(**overrides)
    elif overrides:
        spec = SynthSpec(**{**asdict(spec), **overrides})
    unknown = set(spec.defects) - set(DEFECTS)
    if unknown:
        raise ValueError(f"unknown defect(s) {sorted(unknown)}; known: {', '.join(DEFECTS)}")
    defects = [
        d
        for d in spec.defects
        if not (spec.layout == "csv" and d in FOLDER_ONLY) and not (spec.layout == "folder" and d in CSV_ONLY)
    ]
    rng = np.random.default_rng(spec.seed)
    enc = _Encoder(rng, spec.image_size, spec.repeat_bytes)
    writer = _Writer(str(root))
    summary = SynthSummary(root=writer.root, layout=spec.layout)

    n_test = round(spec.samples * spec.test_fraction)
    splits = {"train": spec.samples - n_test, "test": n_test}
    ids = {
        split: [_sample_id("s" if split == "train" else "t", i, spec.fancy_names) for i in range(n)]
        for split, n in splits.items()
        if n > 0
    }

    # Defects go to distinct samples of the largest split, chosen by the seeded generator.
    per_sample = [d for d in defects if d not in FOLDER_ONLY]
    defect_of: dict[tuple[str, str], str] = {}
    if per_sample:
        host = max(ids, key=lambda s: len(ids[s]))
        need = len(per_sample) * spec.defect_count
        if need > len(ids[host]):
            raise ValueError(f"{need} defective samples asked for, but the {host} split has {len(ids[host])}")
        chosen = rng.choice(len(ids[host]), size=need, replace=False)
        for k, idx in enumerate(sorted(int(i) for i in chosen)):
            defect_of[(host, ids[host][idx])] = per_sample[k % len(per_sample)]

    fmt, ext = spec.image_format, _EXT[spec.image_format]
    csv_rows: dict[str, list[dict[str, str]]] = {}
    for split, split_ids in ids.items():
        with_target = split == "train" or spec.targets_in_test
        summary.expected[split] = []
        summary.skipped[split] = {}
        rows = csv_rows.setdefault(split, [])
        if spec.layout == "folder":
            cdir, tdir = f"{split}/control_images", f"{split}/training_images"
        else:
            cdir, tdir = f"{split}/control", f"{split}/target"
        for sid in split_ids:
            defect = defect_of.get((split, sid))
            if defect:
                summary.defects.setdefault(defect, []).append(f"{split}/{sid}")
            kept, kind = DEFECT_OUTCOME[defect] if defect else (True, "")
            (summary.expected[split].append(sid) if kept else summary.skipped[split].__setitem__(sid, kind))

            main_bytes = enc.encode(fmt)
            main_name = f"{sid}.{ext}"
            csv_main = main_name
            if defect == "upper_ext":
                main_name = f"{sid}.{ext.upper()}"
                csv_main = main_name
            elif defect == "ext_mismatch":
                main_bytes = enc.encode(_other_format(fmt))
            elif defect == "truncated":
                main_bytes = main_bytes[: max(8, len(main_bytes) // 2)]
            elif defect == "csv_wrong_ext":
                main_bytes = enc.encode("webp") if fmt != "webp" else enc.encode("png")
                main_name = f"{sid}.{'webp' if fmt != 'webp' else 'png'}"
                csv_main = f"{sid}.{ext}"
            writer.put(f"{cdir}/{main_name}", main_bytes)
            row = {"control": f"{cdir}/{csv_main}"}
            for n in range(1, spec.extra_controls + 1):
                writer.put(f"{cdir}/{sid}_control_{n}.{ext}", enc.encode(fmt))
                row[f"control_{n}"] = f"{cdir}/{sid}_control_{n}.{ext}"
            if with_target:
                writer.put(f"{tdir}/{sid}.{ext}", enc.encode(fmt))
                row["image"] = f"{tdir}/{sid}.{ext}"
            if spec.masks:
                # The guide's CSV example keeps masks beside the target; folder layout beside the control.
                mdir = tdir if spec.layout == "csv" and with_target else cdir
                writer.put(f"{mdir}/{sid}_mask.png", enc.encode("png", "L"))
                if spec.csv_mask_column:
                    row["mask"] = f"{mdir}/{sid}_mask.png"
            prompt = "" if defect == "empty_prompt" else f"Make {sid} look like a watercolour — étude"
            if spec.layout == "folder":
                writer.put(f"{tdir}/{sid}.txt", prompt.encode("utf-8"))
            else:
                row["prompt"] = prompt
                rows.append(row)
        summary.expected[split].sort()

    if "orphan" in defects and spec.layout == "folder":
        split = next(iter(ids))
        for k in range(spec.defect_count):
            rel = f"{split}/control_images/orphan{k:03d}.{ext}"
            writer.put(rel, enc.encode(fmt))
            summary.defects.setdefault("orphan", []).append(rel)

    if spec.layout == "csv":
        for split, rows in csv_rows.items():
            columns = ["id"] if spec.fancy_names else []
            if split == "train" or spec.targets_in_test:
                columns.append("image")
            columns += ["control"] + [f"control_{n}" for n in range(1, spec.extra_controls + 1)]
            if spec.masks and spec.csv_mask_column:
                columns.append("mask")
            columns.append("prompt")
            buf = io.StringIO()
            out = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
            out.writeheader()
            for row in rows:
                if spec.fancy_names:
                    row["id"] = row["control"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
                out.writerow(row)
            writer.put(f"{split}.csv", buf.getvalue().encode("utf-8"))
    writer.close()
    summary.files = writer.written
    return summary


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m hubpress.testdata.synth", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("out", help="directory or s3://bucket/prefix to write")
    p.add_argument("--layout", choices=["folder", "csv"], default="folder")
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--test-fraction", type=float, default=0.0)
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--extra-controls", type=int, default=0)
    p.add_argument("--masks", action="store_true")
    p.add_argument("--targets-in-test", action="store_true")
    p.add_argument("--format", dest="image_format", choices=sorted(_PIL_SAVE), default="png")
    p.add_argument("--defects", default="", help=f"comma-separated, or 'all': {', '.join(DEFECTS)}")
    p.add_argument("--defect-count", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat-bytes", action="store_true", help="reuse one encoding per role (fast)")
    p.add_argument("--fancy-names", action="store_true")
    p.add_argument("--csv-mask-column", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    defects = DEFECTS if args.defects == "all" else tuple(d for d in args.defects.split(",") if d)
    spec = SynthSpec(
        layout=args.layout,
        samples=args.samples,
        test_fraction=args.test_fraction,
        image_size=args.image_size,
        extra_controls=args.extra_controls,
        masks=args.masks,
        targets_in_test=args.targets_in_test,
        image_format=args.image_format,
        defects=defects,
        defect_count=args.defect_count,
        seed=args.seed,
        repeat_bytes=args.repeat_bytes,
        fancy_names=args.fancy_names,
        csv_mask_column=args.csv_mask_column,
    )
    summary = write_dataset(args.out, spec)
    print(
        json.dumps(
            {
                "root": summary.root,
                "layout": summary.layout,
                "files": len(summary.files),
                "expected": {k: len(v) for k, v in summary.expected.items()},
                "skipped": summary.skipped,
                "defects": summary.defects,
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
