"""A control column of a list of images (datasets' List(Image())) read by `datasets` itself (an
upstream that is not parquet: arrow files, a loading script) keeps its images undecoded.

_cast_media turned decoding off for Image columns only: a List(Image()) column of a Dataset came
out as PIL images, which the editing row cannot publish, so every row was left out as
unreadable_image."""

from __future__ import annotations

import io

from datasets import Dataset, Features, Image, List
from PIL import Image as PILImage

from hubpress.refresh.rows import RefreshReport, process_rows
from hubpress.refresh.upstream import _cast_media
from tests.refresh.test_refresh_rows import backend


def _png() -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (4, 4), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


def test_a_list_of_images_column_is_read_undecoded_and_published():
    image = {"bytes": _png(), "path": None}
    features = Features({"controls": List(Image()), "edited": Image()})
    ds = Dataset.from_dict({"controls": [[image, image]], "edited": [image]}, features=features)
    cfg = backend(editing={"control_columns": ["controls"], "target_column": "edited"})
    report = RefreshReport("t")
    (row,) = process_rows(enumerate(_cast_media(ds, cfg)), cfg, report)
    assert [c["bytes"] for c in row["control_images"]] == [image["bytes"]] * 2
    assert report.dropped == {}
