"""The card preview is drawn once per set of first samples: a night whose first samples did not
change takes the kept bytes and opens none of their files; any change to one of their images
draws it again."""

from __future__ import annotations

import os
from dataclasses import replace

from hubpress.shards import preview_cache
from hubpress.shards.preview import preview_image, source_cells
from hubpress.sources.reader import SourceReader
from tests.shard_helpers import make_sample


def test_the_same_first_samples_open_no_file_and_give_the_same_bytes(tmp_path):
    samples = [make_sample(tmp_path / "src", f"s{n}", target=n != 2) for n in range(4)]
    opened: list[str] = []
    reader = SourceReader()

    def read(ref):
        opened.append(ref.relpath)
        return reader(ref)

    def draw():
        return preview_image(source_cells(samples, read))

    first = preview_cache.cached_preview(samples, draw, tmp_path / "cache")
    assert first is not None and len(opened) == 7  # four controls, three targets
    for sample in samples:  # the files are gone: a second draw would fail
        for ref in (*sample.controls, sample.target):
            if ref is not None:
                os.unlink(ref.uri)
    again = preview_cache.cached_preview(samples, draw, tmp_path / "cache")
    assert again == first and len(opened) == 7


def test_a_changed_image_or_an_unnamed_one_draws_again(tmp_path):
    samples = [make_sample(tmp_path / "src", f"s{n}") for n in range(2)]
    drawn: list[int] = []

    def draw():
        drawn.append(1)
        return f"preview {len(drawn)}".encode()

    cache = tmp_path / "cache"
    assert preview_cache.cached_preview(samples, draw, cache) == b"preview 1"
    assert preview_cache.cached_preview(samples, draw, cache) == b"preview 1"
    changed = [samples[0], replace(samples[1], target=replace(samples[1].target, sha256="0" * 64))]
    assert preview_cache.cached_preview(changed, draw, cache) == b"preview 2"
    unnamed = [samples[0], replace(samples[1], controls=[replace(samples[1].controls[0], sha256=None)])]
    assert preview_cache.cached_preview(unnamed, draw, cache) == b"preview 3"
    assert preview_cache.cached_preview(unnamed, draw, cache) == b"preview 4"
    assert preview_cache.cached_preview(samples, draw, cache) == b"preview 1"


def test_only_the_newest_previews_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(preview_cache, "KEEP", 2)
    cache = tmp_path / "cache"
    sets = [[make_sample(tmp_path / "src", f"s{n}")] for n in range(3)]
    for n, samples in enumerate(sets):
        preview_cache.cached_preview(samples, lambda n=n: b"p%d" % n, cache)
        os.utime(cache / "previews" / f"{preview_cache.preview_key(samples)}.webp", ns=(n, n))
    preview_cache.cached_preview([make_sample(tmp_path / "src", "s9")], lambda: b"p9", cache)
    kept = sorted(p.read_bytes() for p in (cache / "previews").glob("*.webp"))
    assert kept == [b"p2", b"p9"]


def test_the_thumbnails_are_drawn_two_at_once_into_the_same_bytes(tmp_path, monkeypatch):
    """The preview is drawn after every shard is built, with nothing beside it: its decodes (eight
    1024 px PNGs at a first publish) ran one after another on one core of two. Two at once give
    the same grid, byte for byte, with every image still decoded once."""
    import threading

    from hubpress.shards import preview

    samples = [make_sample(tmp_path / "src", f"s{n}", target=n != 2) for n in range(4)]
    cells = source_cells(samples, SourceReader())
    monkeypatch.setattr(preview, "THUMBNAILS_AT_ONCE", 1, raising=False)
    one_at_a_time = preview_image(cells)
    monkeypatch.undo()

    thumbnail = preview._thumbnail
    met = threading.Barrier(2, timeout=20)  # the first two thumbnails meet only if both run at once
    lock, drawn = threading.Lock(), []

    def counted(data: bytes):
        with lock:
            drawn.append(data)
            first_two = len(drawn) <= 2
        if first_two:
            met.wait()
        return thumbnail(data)

    monkeypatch.setattr(preview, "_thumbnail", counted)
    assert preview_image(cells) == one_at_a_time
    assert sorted(drawn) == sorted(data for pair in cells for data in pair if data is not None)
