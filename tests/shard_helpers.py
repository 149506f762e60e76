"""Small real images and Sample values for the build-side tests (shards, staging, cards)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from hubpress.sources.models import FileRef, Sample
from hubpress.storage.hashcache import stat_version

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "bmp": "BMP", "tiff": "TIFF"}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp", "bmp": "bmp", "tiff": "tiff"}


def write_image(
    path: Path, seed: int, fmt: str = "png", size: tuple[int, int] = (24, 16), ext: str | None = None
) -> FileRef:
    """Noise image at `path` (extension from `ext`, default the format's own); a FileRef as intake makes it."""
    path = path.with_suffix("." + (ext or EXTENSIONS[fmt]))
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    kwargs = {"lossless": True} if fmt == "webp" else {}
    Image.fromarray(pixels).save(path, format=PIL_FORMATS[fmt], **kwargs)
    data = path.read_bytes()
    st = path.stat()
    return FileRef(
        uri=str(path.resolve()),
        relpath=path.name,
        size=len(data),
        format=fmt,
        sha256=hashlib.sha256(data).hexdigest(),
        width=size[0],
        height=size[1],
        version=f"{stat_version(st)}:{st.st_ino}",  # as the listing records it
    )


def make_sample(
    root: Path,
    sample_id: str,
    *,
    split: str = "train",
    controls: int = 1,
    mask: bool = False,
    target: bool = True,
    fmt: str = "png",
    prompt: str | None = None,
) -> Sample:
    seed = int.from_bytes(hashlib.sha256(sample_id.encode()).digest()[:4], "big")
    folder = root / split
    return Sample(
        id=sample_id,
        split=split,
        prompt=prompt if prompt is not None else f"edit {sample_id}",
        controls=[write_image(folder / f"{sample_id}_control_{i}", seed + i, fmt) for i in range(controls)],
        mask=write_image(folder / f"{sample_id}_mask", seed + 10, "png") if mask else None,
        target=write_image(folder / f"{sample_id}_target", seed + 20, fmt) if target else None,
    )


def fake_sample(sample_id: str, size: int = 100_000, split: str = "train") -> Sample:
    """A sample whose files need not exist: enough for planning, which reads no bytes."""
    digest = hashlib.sha256(sample_id.encode()).hexdigest()
    ref = FileRef(
        uri=f"/nonexistent/{sample_id}.png",
        relpath=f"{sample_id}.png",
        size=size,
        format="png",
        sha256=digest,
    )
    return Sample(id=sample_id, split=split, prompt=f"edit {sample_id}", controls=[ref])


def png_chunk(t: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body) & 0xFFFFFFFF)


def corrupt_png_pixels(data: bytes, exif_after_idat: bool = False) -> bytes:
    """A PNG whose pixel data (the IDAT deflate stream) is damaged while every chunk and CRC is
    intact: only decoding the pixels finds it."""
    out, i = [b"\x89PNG\r\n\x1a\n"], 8
    while i < len(data):
        n = struct.unpack(">I", data[i : i + 4])[0]
        t, body = data[i + 4 : i + 8], bytearray(data[i + 8 : i + 8 + n])
        i += 12 + n
        if t == b"IDAT":
            for j in range(len(body) // 2, len(body) // 2 + 8):
                body[j] ^= 0xFF
        if t == b"IEND" and exif_after_idat:
            exif = Image.Exif()
            exif[0x0112] = 1
            out.append(png_chunk(b"eXIf", exif.tobytes()))
        out.append(png_chunk(t, bytes(body)))
    return b"".join(out)


def shard_digests(target: Path) -> dict[str, str]:
    """A published dataset's shards, by path, with their sha256: equal for byte-identical output."""
    return {
        p.relative_to(target).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((target / "data").glob("*.parquet"))
    }
