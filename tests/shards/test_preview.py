"""The dataset card's preview: `preview.webp` in the repo, a grid of the first samples (main control
beside target), referenced between hubpress's markers; the same samples give the same bytes, so
an unchanged publish sends nothing, even when it takes the full path."""

import io
import json
import uuid
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from hubpress.shards.cards import BEGIN, END
from hubpress.shards.preview import CELL, GAP, PREVIEW_FILE, PREVIEW_SAMPLES, preview_image, source_cells
from hubpress.sources.models import FileRef, Sample
from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _cell_mean(grid: Image.Image, row: int, col: int) -> tuple[float, ...]:
    left, top = GAP + col * (CELL + GAP), GAP + row * (CELL + GAP)
    cell = grid.crop((left + CELL // 4, top + CELL // 4, left + 3 * CELL // 4, top + 3 * CELL // 4))
    return tuple(ImageStat.Stat(cell).mean)


def _close(a, b, tolerance=24.0) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


@pytest.mark.lfs
def test_card_shows_a_preview_that_an_unchanged_publish_does_not_send_again(
    hub, tmp_path, monkeypatch, write_token
):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache-1"))
    src = tmp_path / "src"
    write_dataset(src, samples=10, test_fraction=0.2, image_size=48, seed=7)
    # The synthetic images are noise (every mean is grey): the first train samples (and one
    # after them) get solid colours, so each cell of the grid says which image it shows.
    coloured = []
    ids = sorted(p.stem for p in (src / "train" / "control_images").iterdir())
    for i, sample_id in enumerate(ids[: PREVIEW_SAMPLES + 1]):
        colours = ((40 * i + 20, 200, 60), (200, 40 * i + 20, 180))
        [control] = (src / "train" / "control_images").glob(f"{sample_id}.*")
        [target] = [
            p for p in (src / "train" / "training_images").glob(f"{sample_id}.*") if p.suffix != ".txt"
        ]
        for path, colour in zip((control, target), colours, strict=True):
            with Image.open(path) as img:
                size, fmt = img.size, img.format
            Image.new("RGB", size, colour).save(path, format=fmt)
        coloured.append(colours)
    coloured = coloured[:PREVIEW_SAMPLES]
    repo = f"alice/preview-{uuid.uuid4().hex[:8]}"

    code, out, err = run_cli("publish-dataset", str(src), repo, "--json")
    assert code == 0, err
    assert PREVIEW_FILE in json.loads(out)["uploaded_files"]

    card = hub.read_file("dataset", repo, "README.md").decode()
    block = card[card.index(BEGIN) : card.index(END)]
    assert f"]({PREVIEW_FILE})" in block

    data = hub.read_file("dataset", repo, PREVIEW_FILE)
    with Image.open(io.BytesIO(data)) as grid:
        assert grid.format == "WEBP"
        assert grid.size == (2 * CELL + 3 * GAP, PREVIEW_SAMPLES * (CELL + GAP) + GAP)
        grid = grid.convert("RGB")
    # The stable rule: the first samples of train by id, control left and target right.
    for row, (control, target) in enumerate(coloured):
        assert _close(_cell_mean(grid, row, 0), control) and _close(_cell_mean(grid, row, 1), target), row

    # The same data from a fresh cache takes the full path (intake, stage, plan): the preview is
    # rebuilt byte for byte, so the plan finds every file unchanged and nothing is sent.
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache-2"))
    hub.reset_stats()
    code, out, err = run_cli("publish-dataset", str(src), repo, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["commit"] is None and PREVIEW_FILE in result["unchanged_files"]
    assert hub.stats.commits == 0 and hub.stats.upload_bytes == 0


def test_same_samples_give_the_same_bytes_and_unreadable_images_leave_an_empty_cell(tmp_path):
    colours = {"a": (200, 30, 30), "b": (30, 200, 30), "c": (30, 30, 200)}
    for name, colour in colours.items():
        Image.new("RGB", (64, 40), colour).save(tmp_path / f"{name}.png")

    def ref(name):
        return FileRef(str(tmp_path / f"{name}.png"), f"{name}.png", 0)

    samples = [
        Sample("1", "train", controls=[ref("a")], target=ref("b")),
        Sample("2", "train", controls=[ref("c")], target=None),  # no target: an empty cell
        Sample("3", "train", controls=[ref("missing")], target=ref("a")),
    ]

    def read(r):
        path = Path(r.uri)
        return path.read_bytes() if path.exists() else b"not an image"

    first = preview_image(source_cells(samples, read))
    assert first == preview_image(source_cells(samples, read))
    assert preview_image([]) is None
    with Image.open(io.BytesIO(first)) as grid:
        grid = grid.convert("RGB")
    assert _close(_cell_mean(grid, 0, 0), colours["a"]) and _close(_cell_mean(grid, 0, 1), colours["b"])
    assert _close(_cell_mean(grid, 1, 0), colours["c"]) and _close(_cell_mean(grid, 1, 1), (210, 210, 210))
    assert _close(_cell_mean(grid, 2, 0), (210, 210, 210)) and _close(_cell_mean(grid, 2, 1), colours["a"])
