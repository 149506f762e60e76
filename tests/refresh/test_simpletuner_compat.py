"""What hubpress publishes is read by SimpleTuner as hubpress published it.

The table below pins SimpleTuner's reading of a row (tests/simpletuner_reference.py encodes it
from SimpleTuner's code) next to hubpress's reading of the same upstream row. A case marked
`same` must agree; a case marked with a departure is listed in docs/refresh-semantics.md.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest
from PIL import Image as PILImage

from hubpress.refresh.captions import caption_for, lyrics_for
from hubpress.refresh.config import parse_refresh_config
from hubpress.refresh.filters import passes_filters, source_size
from hubpress.refresh.simpletuner import caption_columns, dataloader_entry, published_row
from tests import simpletuner_reference as st
from tests.conftest import WRITE_TOKEN

META = "simpletuner/helpers/metadata/backends/huggingface.py"
EXTRACT = f"{META} HuggingfaceMetadataBackend._extract_caption_from_item"


def as_list(caption) -> list[str] | None:
    """SimpleTuner's caption as a list: a str is one caption, a list (list caption_column) several."""
    if caption is None:
        return None
    return [caption] if isinstance(caption, str) else list(caption)


def hubpress_backend(block: dict, dataset_type: str = "image"):
    raw = {"id": "t", "type": "huggingface", "dataset_name": "a/b", "dataset_type": dataset_type}
    return parse_refresh_config({**raw, "huggingface": block}).backends[0]


def as_simpletuner(captions: list[str] | None):
    """hubpress's captions in SimpleTuner's shape: one caption is a str, several a list."""
    if not captions:
        return None
    return captions[0] if len(captions) == 1 else captions


# (case, upstream row, huggingface block, dataset type, SimpleTuner reads, hubpress reads, departure)
CAPTION_CASES = [
    ("plain string", {"caption": "a red car"}, {}, "image", "a red car", ["a red car"], None),
    (
        "padded string is stripped",
        {"caption": "  a red car \n"},
        {},
        "image",
        "a red car",
        ["a red car"],
        None,
    ),
    (
        "list value in a single column",
        {"caption": ["a red car"]},
        {},
        "image",
        "['a red car']",
        ["a red car"],
        "list caption -> repr",
    ),
    (
        "list of tags",
        {"tags": ["cat", "sofa"]},
        {"caption_column": "tags"},
        "image",
        "['cat', 'sofa']",
        ["cat, sofa"],
        "list caption -> repr",
    ),
    (
        "null caption, null description column",
        {"caption": None, "description": None},
        {},
        "image",
        "None",
        None,
        "str(None) -> 'None'",
    ),
    ("null caption, no description column", {"caption": None}, {}, "image", None, None, None),
    (
        "list of caption columns skips empty ones",
        {"title": "t", "alt": "", "tags": "x"},
        {"caption_column": ["title", "alt", "tags"]},
        "image",
        ["t", "x"],
        ["t", "x"],
        None,
    ),
    (
        "list of caption columns keeps a blank one as ''",
        {"title": "t", "alt": "   "},
        {"caption_column": ["title", "alt"]},
        "image",
        ["t", ""],
        ["t"],
        "blank caption",
    ),
    (
        "empty caption uses the fallback",
        {"caption": "", "filename": "f"},
        {"fallback_caption_column": "filename"},
        "image",
        "f",
        ["f"],
        None,
    ),
    (
        "blank caption hides the fallback",
        {"caption": "   ", "filename": "f"},
        {"fallback_caption_column": "filename"},
        "image",
        None,
        ["f"],
        "blank caption",
    ),
    (
        "dotted path into a dict",
        {"metadata": {"caption": "m"}},
        {"caption_column": "metadata.caption"},
        "image",
        "m",
        ["m"],
        None,
    ),
    (
        "description dict",
        {"description": {"main_subject": "cat", "text": "on a sofa"}},
        {},
        "image",
        "cat on a sofa",
        ["cat on a sofa"],
        None,
    ),
    ("a number is its text", {"caption": 42}, {}, "image", "42", ["42"], None),
    (
        "audio joins prompt fields",
        {"prompt": "lofi", "tags": "chill"},
        {},
        "audio",
        "lofi chill",
        ["lofi chill"],
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "row", "block", "dataset_type", "simpletuner", "hubpress", "departure"),
    CAPTION_CASES,
    ids=[c[0] for c in CAPTION_CASES],
)
def test_caption_table(case, row, block, dataset_type, simpletuner, hubpress, departure):
    assert st.caption(row, block, dataset_type) == simpletuner, f"SimpleTuner ({EXTRACT}): {case}"
    assert caption_for(row, hubpress_backend(block, dataset_type)) == hubpress, f"hubpress: {case}"
    if departure is None:
        assert as_simpletuner(hubpress) == simpletuner
    else:
        assert as_simpletuner(hubpress) != simpletuner


SIZE_CASES = [
    ("named columns", {"w": 640, "h": 480}, {"width_column": "w", "height_column": "h"}, (640, 480)),
    ("numeric strings", {"w": "640", "h": "480"}, {"width_column": "w", "height_column": "h"}, (640, 480)),
    ("only one column named", {"w": 640, "h": 480}, {"width_column": "w"}, None),
    ("unreadable value", {"w": "wide", "h": 480}, {"width_column": "w", "height_column": "h"}, None),
]


@pytest.mark.parametrize(("case", "row", "block", "expected"), SIZE_CASES, ids=[c[0] for c in SIZE_CASES])
def test_size_table(case, row, block, expected):
    assert st.size(row, block) == expected
    # hubpress reads the same columns (and, without them, the image header: here there is none)
    assert source_size(row, hubpress_backend(block), None) == expected


QUALITY = {"filter_func": {"quality_thresholds": {"aesthetic": 5.0}}}
# (case, row, SimpleTuner keeps, hubpress keeps)
QUALITY_CASES = [
    ("above", {"quality_assessment": {"aesthetic": 6.0}}, True, True),
    ("equal", {"quality_assessment": {"aesthetic": 5.0}}, True, True),
    ("below", {"quality_assessment": {"aesthetic": 4.0}}, False, False),
    ("metric missing counts as 0", {"quality_assessment": {"other": 9.0}}, False, False),
    ("null quality passes in SimpleTuner", {"quality_assessment": None}, True, False),
    ("no quality column passes in SimpleTuner", {}, True, False),
]


@pytest.mark.parametrize(
    ("case", "row", "simpletuner", "hubpress"), QUALITY_CASES, ids=[c[0] for c in QUALITY_CASES]
)
def test_quality_table(case, row, simpletuner, hubpress):
    assert st.passes_quality(row, QUALITY) is simpletuner
    assert passes_filters(row, hubpress_backend(QUALITY), None)[0] is hubpress


LYRICS_CASES = [
    ("lyrics", {"lyrics": "la la"}, "la la"),
    ("empty lyrics are an instrumental: kept", {"lyrics": "", "norm_lyrics": "x"}, ""),
    ("null lyrics fall back to norm_lyrics", {"lyrics": None, "norm_lyrics": "x"}, "x"),
    ("none at all", {}, None),
]


@pytest.mark.parametrize(("case", "row", "expected"), LYRICS_CASES, ids=[c[0] for c in LYRICS_CASES])
def test_lyrics_table_is_faithful(case, row, expected):
    assert st.lyrics(row, {}) == expected
    assert lyrics_for(row, hubpress_backend({}, "audio")) == expected


def test_simpletuner_reads_caption_options_only_from_the_huggingface_block():
    top_level = {"id": "t", "type": "huggingface", "dataset_name": "a/b", "caption_column": "text"}
    # SimpleTuner: the metadata backend's options are the block, so the default column is read.
    assert st.metadata_options(top_level) == {}
    assert st.caption({"text": "from text", "caption": "from caption"}, st.metadata_options(top_level)) == (
        "from caption"
    )
    # hubpress applies the top-level option, and says that SimpleTuner would not.
    config = parse_refresh_config(top_level)
    assert config.backends[0].caption_column == "text"
    assert [(n.key, "huggingface" in n.message) for n in config.departures] == [("caption_column", True)]
    moved = {k: v for k, v in top_level.items() if k != "caption_column"}
    inside = parse_refresh_config({**moved, "huggingface": {"caption_column": "text"}})
    assert inside.departures == [] and inside.backends[0].caption_column == "text"


@pytest.mark.parametrize(
    "block",
    [{"caption_column": "c"}, {"caption_column": ["a", "b", "c"]}],
    ids=["one caption column", "three caption columns"],
)
def test_published_rows_read_back_as_published_captions(block):
    config = parse_refresh_config(
        {"id": "t", "type": "huggingface", "dataset_name": "a/b", "huggingface": block}
    )
    entry = dataloader_entry(config, "org/out")[0]
    assert "caption_column" not in entry and entry["huggingface"]["width_column"] == "width"
    columns = caption_columns(config)
    for captions in (["one"], ["one", "two"], ["one", "two", "three"])[: len(columns)]:
        row = published_row({"captions": captions, "width": 4, "height": 3, "source_index": 0}, columns)
        assert as_list(st.caption(row, st.metadata_options(entry))) == captions
        assert st.size(row, st.metadata_options(entry)) == (4, 3)


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), (width, height, 0)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.usefixtures("prefect_harness")
def test_refreshed_dataset_reads_back_in_simpletuner_as_published(hub, write_token, tmp_path):
    """Refresh to the Hub-protocol server, load the split back with datasets, and read every row
    with SimpleTuner's caption and size rules under the published simpletuner_dataloader.json."""
    from datasets import Dataset, Features, Image, Value, load_dataset
    from huggingface_hub import hf_hub_download

    from hubpress.flows.params import RefreshParams
    from hubpress.flows.refresh_dataset import refresh_dataset

    titles = ["a red car", None, "  a boat ", "", "a tree", "a cat"]
    tags = [["red", "car"], ["blue"], None, None, [], ["cat", "sofa"]]
    sizes = [(8, 6), (10, 4), (12, 12), (6, 9), (7, 5), (9, 9)]
    upstream = f"alice/st-upstream-{uuid.uuid4().hex[:8]}"
    features = Features({"image": Image(), "title": Value("string"), "tags": [Value("string")]})
    Dataset.from_dict(
        {"image": [{"bytes": png(w, h), "path": None} for w, h in sizes], "title": titles, "tags": tags},
        features=features,
    ).push_to_hub(upstream, token=WRITE_TOKEN)
    config = {
        "id": "up",
        "type": "huggingface",
        "dataset_name": upstream,
        "cache_dir": str(tmp_path / "cache"),
        "huggingface": {"caption_column": ["title", "tags"]},
    }
    repo = f"alice/st-out-{uuid.uuid4().hex[:8]}"
    result = refresh_dataset(RefreshParams(config=config, target=repo))
    # row 3 has neither a title nor tags: no caption, left out; the others are kept
    expected = {
        0: ["a red car", "red, car"],
        1: ["blue"],
        2: ["a boat"],
        4: ["a tree"],
        5: ["a cat", "cat, sofa"],
    }
    assert result["samples"] == {"train": len(expected)}

    entry_file = hf_hub_download(repo, "simpletuner_dataloader.json", repo_type="dataset", token=WRITE_TOKEN)
    entries = json.loads(Path(entry_file).read_text(encoding="utf-8"))
    assert len(entries) == 1 and entries[0]["dataset_name"] == repo
    entry = entries[0]
    options = st.metadata_options(entry)
    assert options["caption_column"] == ["caption", "caption_2"]

    ds = load_dataset(entry["dataset_name"], split=entry["split"], token=WRITE_TOKEN)
    image_column = entry.get("image_column", "image")
    assert len(ds) == len(expected)
    for row in ds:
        source = row["source_index"]
        assert as_list(st.caption(row, options)) == expected[source], source
        assert st.size(row, options) == sizes[source] == row[image_column].size


def test_an_image_without_a_readable_size_is_left_out():
    """SimpleTuner int()s a named width column's value unguarded: no published image has a null size."""
    from hubpress.refresh.report import RefreshReport
    from hubpress.refresh.rows import process_rows

    cfg = hubpress_backend({})
    report = RefreshReport("t")
    rows = [
        (0, {"image": {"bytes": png(5, 3), "path": None}, "caption": "ok"}),
        (1, {"image": {"bytes": b"not an image", "path": None}, "caption": "broken"}),
    ]
    out = list(process_rows(rows, cfg, report))
    assert [(r["source_index"], r["width"], r["height"]) for r in out] == [(0, 5, 3)]
    assert report.dropped == {"unreadable_image": 1}


def test_video_entry_names_only_columns_every_row_fills():
    def entry(block):
        config = parse_refresh_config(
            {
                "id": "v",
                "type": "huggingface",
                "dataset_name": "a/b",
                "dataset_type": "video",
                "huggingface": block,
            }
        )
        return dataloader_entry(config, "org/out")[0]["huggingface"]

    assert entry({"num_frames_column": "frames"}) == {
        "caption_column": "caption",
        "num_frames_column": "num_frames",
    }
    full = {"width_column": "w", "height_column": "h", "num_frames_column": "n", "fps_column": "f"}
    assert entry(full) == {
        "caption_column": "caption",
        "width_column": "width",
        "height_column": "height",
        "num_frames_column": "num_frames",
        "fps_column": "fps",
    }
