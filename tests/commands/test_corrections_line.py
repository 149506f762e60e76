"""A publish says, in one line of its text output, which extensions it corrected: a file named
.png that holds JPEG bytes is published as a JPEG, and the person who ran the command is told so
(the source itself is unchanged)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from hubpress.commands.cli import main as cli
from hubpress.testdata.synth import write_dataset


def test_a_publish_names_the_extension_it_corrected(tmp_cwd, capsys, monkeypatch, prefect_harness):
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"))
    source = tmp_cwd / "src"
    write_dataset(source, samples=3, image_size=16, seed=4, test_fraction=0.0)
    png = sorted(source.rglob("*.png"))[0]
    jpeg = io.BytesIO()
    Image.open(png).convert("RGB").save(jpeg, format="JPEG")
    png.write_bytes(jpeg.getvalue())  # JPEG bytes under a .png name
    relpath = png.relative_to(source).as_posix()

    with pytest.raises(SystemExit) as exit_:
        cli(["publish-dataset", "./src", str(tmp_cwd / "out" / "faces")])
    out = capsys.readouterr().out
    assert exit_.value.code in (0, None), out
    lines = [line.strip() for line in out.splitlines() if "corrected" in line]
    assert lines == [f"corrected 1 extension ({relpath} is a JPEG); the source itself is unchanged"], out
    assert png.read_bytes() == jpeg.getvalue() and png.suffix == ".png"  # the source is left as it was


def test_a_clean_publish_mentions_no_correction(tmp_cwd, capsys, monkeypatch, prefect_harness):
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"))
    write_dataset(tmp_cwd / "src", samples=3, image_size=16, seed=4, test_fraction=0.0)
    with pytest.raises(SystemExit) as exit_:
        cli(["publish-dataset", "./src", str(tmp_cwd / "out" / "faces")])
    out = capsys.readouterr().out
    assert exit_.value.code in (0, None), out
    assert "corrected" not in out and Path(tmp_cwd / "out" / "faces" / "README.md").exists()
