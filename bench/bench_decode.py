"""What verifying one 1024 px image costs, beside the floors a sound check cannot go below.

    .venv/bin/python -m bench.bench_decode                 # 1024 px noise PNGs (RGB and a grey mask) and a JPEG
    .venv/bin/python -m bench.bench_decode --size 256 --repeat 50

For each image it prints, in milliseconds per image (median of `--repeat`):
- `sha256`: what intake already does to every new file (its content digest);
- `chunk walk + CRCs`: every PNG chunk read and its CRC checked (Pillow's `verify()` does this):
  finds a truncated or bit-flipped file, but not a deflate stream that was damaged before its CRC
  was written (tests/shard_helpers.corrupt_png_pixels makes one);
- `inflate`: the PNG's whole IDAT stream inflated and discarded (stdlib zlib), the least any check
  must do to know that the pixels decode: whether a deflate stream is valid, and how long it is,
  is known only by inflating it;
- `Pillow load`: the full decode hubpress does (hubpress.sources.image_checks.decode_problem);
- `Pillow draft`: a JPEG decoded at 1/8 scale (Image.draft), not a full decode;
and each as a share of the full decode.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import statistics
import time
import zlib

import numpy as np
from PIL import Image

from hubpress.sources.image_checks import decode_problem


def _png_chunks(data: bytes):
    offset = 8
    while offset + 8 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        yield kind, offset + 8, length
        if kind == b"IEND":
            return
        offset += 12 + length


def crc_walk(data: bytes) -> None:
    view = memoryview(data)
    for kind, start, length in _png_chunks(data):
        stored = int.from_bytes(view[start + length : start + length + 4], "big")
        if zlib.crc32(view[start - 4 : start + length]) != stored:
            raise ValueError(f"CRC of {kind!r}")


def inflate(data: bytes) -> None:
    view = memoryview(data)
    stream = zlib.decompressobj()
    for kind, start, length in _png_chunks(data):
        if kind == b"IDAT":
            stream.decompress(view[start : start + length])
    if not stream.eof:
        raise ValueError("truncated")


def draft(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (im.width // 8, im.height // 8))
        im.load()


def _median_ms(fn, data: bytes, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(data)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _encoded(pixels: np.ndarray, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    images = {
        "PNG RGB (noise)": _encoded(rgb, "PNG"),
        "PNG grey mask (noise)": _encoded(rgb[:, :, 0], "PNG"),
        "JPEG RGB (noise, q90)": _encoded(rgb, "JPEG"),
    }
    for name, data in images.items():
        png = name.startswith("PNG")
        fmt = "png" if png else "jpeg"
        checks = {
            "sha256": lambda d: hashlib.sha256(d).digest(),
            "chunk walk + CRCs": crc_walk if png else None,
            "inflate": inflate if png else None,
            "Pillow draft (1/8)": None if png else draft,
            "Pillow load (full decode)": lambda d, fmt=fmt: decode_problem(d, fmt),
        }
        assert decode_problem(data, fmt) is None
        full = _median_ms(checks["Pillow load (full decode)"], data, args.repeat)
        print(f"\n{name}, {len(data):,} bytes, {args.size} px")
        print("| check | ms per image | share of the full decode |")
        print("|---|---:|---:|")
        for label, fn in checks.items():
            if fn is not None:
                ms = full if fn is checks["Pillow load (full decode)"] else _median_ms(fn, data, args.repeat)
                print(f"| {label} | {ms:.2f} | {ms / full:.0%} |")


if __name__ == "__main__":
    main()
