"""Image checks run on several threads at once (a night's few images decode on the build's
threads, S3 reads on the reader's). Pillow's bomb guard is one process-wide value: each check
saving and restoring it itself interleaved with the others, and a process was left with no
guard at all (Image.MAX_IMAGE_PIXELS None) for everything it opened afterwards."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from hubpress.sources.image_checks import check_image_bytes, decode_problem


def _png(size: int, seed: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((size, size), 40 + seed).convert("RGB").save(out, "PNG")
    return out.getvalue()


def test_concurrent_checks_leave_pillows_guard_as_they_found_it():
    before = Image.MAX_IMAGE_PIXELS
    images = [_png(192, seed) for seed in range(4)]

    def check(i: int) -> tuple[str | None, str | None]:
        data = images[i % len(images)]
        facts = check_image_bytes(data, max_pixels=1_000_000)
        return facts.error, decode_problem(data, "png")

    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(check, range(400)))
    assert set(verdicts) == {(None, None)}
    assert before == Image.MAX_IMAGE_PIXELS


def test_a_too_large_image_is_refused_by_its_own_limit_while_others_are_checked():
    small, large = _png(64, 1), _png(192, 2)

    def check(i: int) -> str | None:
        return check_image_bytes(large if i % 2 else small, max_pixels=10_000).error

    with ThreadPoolExecutor(4) as pool:
        errors = list(pool.map(check, range(40)))
    assert errors == [None, "image_too_large"] * 20
