"""Validation: full decodes, bomb guard, true formats, and a cache that makes re-runs read nothing."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from PIL import Image

from hubpress.sources.facts_cache import FileJob
from hubpress.sources.image_checks import apply_pixel_limit, check_image_bytes
from hubpress.sources.validation import validate_files
from hubpress.storage.files import LocalStorage
from hubpress.storage.hashcache import HashCache
from hubpress.testdata.synth import write_dataset


def png(size=(8, 8), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size (a decompression bomb's calling card)."""
    data = bytearray(png((1, 1)))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def test_a_good_image_yields_its_facts():
    f = check_image_bytes(png((5, 3)))
    assert (f.format, f.width, f.height, f.error) == ("png", 5, 3, None)
    assert len(f.sha256) == 64


def test_truncated_images_fail_the_full_decode():
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buf, format="JPEG")
    f = check_image_bytes(buf.getvalue()[:600])
    assert (f.format, f.error) == ("jpeg", "undecodable_image")


def test_unsupported_and_unknown_bytes():
    buf = io.BytesIO()
    Image.new("P", (2, 2)).save(buf, format="GIF")
    assert check_image_bytes(buf.getvalue()).error == "unsupported_format"
    assert check_image_bytes(b"just text").error == "undecodable_image"


def test_bombs_are_refused_before_any_pixel_buffer_exists():
    f = check_image_bytes(png_claiming(200_000, 200_000))
    assert f.error == "image_too_large"
    f = check_image_bytes(png((64, 64)), max_pixels=1000)
    assert (f.error, f.width, f.height) == ("image_too_large", 64, 64)
    assert "4,096 pixels" in f.detail and "1,000" in f.detail
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # the global limit is restored


def test_pixel_limit_applies_to_cached_facts():
    ok = check_image_bytes(png((64, 64)))
    assert apply_pixel_limit(ok, 1000).error == "image_too_large"
    too_large = check_image_bytes(png((64, 64)), max_pixels=1000)
    assert apply_pixel_limit(too_large, 10_000) is None  # must be decoded again under the higher limit


def jobs_for(root):
    storage = LocalStorage(root)
    out = []
    for lf in storage.list():
        kind = "prompt" if lf.relpath.endswith(".txt") else "image"
        out.append(FileJob(lf.relpath, storage.uri(lf.relpath), lf.size, f"{lf.version}:{lf.inode}", kind))
    return sorted(out, key=lambda j: j.relpath)


@pytest.mark.parametrize("workers", [1, 2])
def test_rerun_reads_nothing_and_a_change_is_all_that_is_read(tmp_path, workers):
    write_dataset(tmp_path / "ds", samples=12, masks=True, extra_controls=1)
    cache = HashCache(tmp_path / "cache.sqlite")
    root = str(tmp_path / "ds")
    jobs = jobs_for(root)
    first = validate_files(jobs, root=root, cache=cache, workers=workers, chunk_size=10)
    assert first.stats.files_read == len(jobs) and first.stats.cache_hits == 0
    assert first.stats.images_decoded == len([j for j in jobs if j.kind == "image"])
    assert first.stats.chunks == -(-len(jobs) // 10)

    again = validate_files(jobs_for(root), root=root, cache=cache, workers=workers, chunk_size=10)
    assert (again.stats.files_read, again.stats.bytes_read, again.stats.images_decoded) == (0, 0, 0)
    assert again.stats.cache_hits == len(jobs)
    assert again.facts == first.facts

    changed = tmp_path / "ds/train/control_images/s000003.png"
    changed.write_bytes(png((9, 9)))
    third = validate_files(jobs_for(root), root=root, cache=cache, workers=workers)
    assert (third.stats.files_read, third.stats.images_decoded) == (1, 1)
    assert third.facts["train/control_images/s000003.png"].width == 9


def test_a_few_header_checks_are_made_inline_and_decodes_go_to_the_workers(tmp_path):
    """A publish's intake of a night's few new files (header checks: the build decodes) starts no
    worker processes; full decodes of as many files do."""
    write_dataset(tmp_path / "ds", samples=12, masks=True, extra_controls=1)
    root = str(tmp_path / "ds")
    jobs = jobs_for(root)
    assert len(jobs) >= 16  # past INLINE_BELOW: decodes would go to the workers
    headers = validate_files(jobs, root=root, cache=HashCache(tmp_path / "a.sqlite"), workers=2, decode=False)
    assert (headers.stats.files_read, headers.stats.files_in_workers) == (len(jobs), 0)
    assert headers.stats.images_decoded == 0
    decoded = validate_files(jobs, root=root, cache=HashCache(tmp_path / "b.sqlite"), workers=2)
    assert decoded.stats.files_in_workers == len(jobs)
    assert {p: f.sha256 for p, f in decoded.facts.items()} == {p: f.sha256 for p, f in headers.facts.items()}


def test_symlinks_that_leave_the_root_are_not_read(tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(png())
    root = tmp_path / "ds"
    (root / "train/control_images").mkdir(parents=True)
    os.symlink(outside, root / "train/control_images/a.png")
    os.symlink("../../../secret.png", root / "train/control_images/b.png")
    (root / "train/control_images/c.png").write_bytes(png())
    os.symlink(root / "train/control_images/c.png", root / "train/control_images/d.png")  # stays inside
    result = validate_files(jobs_for(str(root)), root=str(root), cache=HashCache(None), workers=1)
    errors = {rel: f.error for rel, f in result.facts.items()}
    assert errors == {
        "train/control_images/a.png": "path_outside_root",
        "train/control_images/b.png": "path_outside_root",
        "train/control_images/c.png": None,
        "train/control_images/d.png": None,
    }
    assert result.stats.files_read == 2
