"""The decision's memoised extension check says what split_extension + extension_agrees say."""

from __future__ import annotations

import pytest

from hubpress.sources.formats import extension_agrees, split_extension
from hubpress.sources.plain_verdicts import name_agrees

NAMES = [
    "train/a.png",
    "train/a.PNG",
    "a.jpg",
    "dir/b.JPEG",
    "dir/c.webp",
    "dir/.png",
    "dir/noext",
    "dir/d.",
    "dir/e.tar.gz",
    "f.tif",
    "g.txt",
    "x.y/h",
]
FORMATS = [None, "png", "jpeg", "webp", "tiff", "gif", "bmp"]


@pytest.mark.parametrize("relpath", NAMES)
def test_same_verdict_as_the_name_checked_in_full(relpath):
    name = relpath.rsplit("/", 1)[-1]
    for true_format in FORMATS:
        expected = extension_agrees(split_extension(name)[1], true_format)
        assert name_agrees(relpath, true_format) is expected, (relpath, true_format)
