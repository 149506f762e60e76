"""Where the build decodes the images intake only header-checked (hubpress.sources.reader): a
night's few on the build's own threads, a first publish's many on the decode processes. Either
way every pending image is decoded and a damaged one is found."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from hubpress.sources.models import FileRef
from hubpress.sources.reader import DECODE_IN_PROCESS_BELOW, SourceReader, decodes_in_process
from tests.shard_helpers import corrupt_png_pixels


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((48, 48), 40 + seed).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def _ref(path, size: int, pending: bool = True) -> FileRef:
    return FileRef(uri=str(path), relpath=path.name, size=size, format="png", decode_pending=pending)


def test_only_pending_decodes_count_towards_the_threads_rule(tmp_path):
    few = [_ref(tmp_path / f"{n}.png", 200_000) for n in range(20)]  # a night: 20 new 256 px images
    assert decodes_in_process(few)
    many = few + [_ref(tmp_path / "big.png", DECODE_IN_PROCESS_BELOW)]
    assert not decodes_in_process(many)
    # Images validation already decoded (a reused sample's) are not decoded again: they do not count.
    assert decodes_in_process(few + [_ref(tmp_path / "old.png", DECODE_IN_PROCESS_BELOW, pending=False)])
    assert decodes_in_process([])


@pytest.mark.parametrize("in_process", [True, False])
def test_a_damaged_image_is_found_on_threads_and_on_the_decode_processes(tmp_path, in_process):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    good.write_bytes(_png(1))
    bad.write_bytes(corrupt_png_pixels(_png(2)))
    reader = SourceReader(decode_in_process=in_process)
    refs = [_ref(good, good.stat().st_size), _ref(bad, bad.stat().st_size)]
    assert [reader(ref) for ref in refs] == [good.read_bytes(), bad.read_bytes()]
    assert [ref.relpath for ref, _ in reader.undecodable] == ["bad.png"]
