"""Image formats are read from the bytes (Pillow's identification), never from the name."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from hubpress.sources.formats import canonical_name, extension_agrees, sniff_format, split_extension


def encoded(fmt: str, size=(4, 4), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (10, 20, 30) if mode == "RGB" else 0).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("pil", "expected"),
    [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tiff"), ("GIF", "gif")],
)
def test_sniff_names_the_true_format(pil, expected):
    assert sniff_format(encoded(pil)) == expected


def test_sniff_refuses_what_is_not_an_image():
    assert sniff_format(b"") is None
    assert sniff_format(b"hello, I am a prompt\n") is None


@pytest.mark.parametrize(
    ("name", "stem", "ext"),
    [
        ("a.png", "a", "png"),
        ("a.b c.PNG", "a.b c", "png"),
        ("étude.JPeG", "étude", "jpeg"),
        ("x.tif", "x", "tif"),
        ("notes.txt", "notes.txt", None),
        (".png", ".png", None),
        ("noext", "noext", None),
    ],
)
def test_split_extension_is_case_insensitive_and_keeps_dots(name, stem, ext):
    assert split_extension(name) == (stem, ext)


def test_extension_agreement_and_canonical_names():
    assert extension_agrees("jpg", "jpeg") and extension_agrees("JPEG", "jpeg")
    assert not extension_agrees("png", "jpeg")
    assert canonical_name("a.b.png", "jpeg") == "a.b.jpg"
    assert canonical_name("A.PNG", "webp") == "A.webp"
