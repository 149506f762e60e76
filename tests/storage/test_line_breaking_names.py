"""File names holding characters that break or reorder the line showing them: a C1 control
(U+0085, a line end to many tools), the line and paragraph separators (U+2028, U+2029: a new line
in many terminals and log viewers) and bidirectional controls (U+202E shows the program `x\\u202egnp.exe`
as the image `xexe.png`). The name gate refuses them as unsafe names, reported and escaped in
the report, never dropped silently and never shown raw."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from hubpress.commands.cli import app
from hubpress.storage import names
from hubpress.testdata.synth import write_dataset

LINE_BREAKING = ["\u0085", "\u2028", "\u2029", "\u202e", "\u2066", "\u200f"]


@pytest.mark.parametrize("char", LINE_BREAKING)
def test_the_gate_refuses_a_name_that_breaks_or_reorders_its_line(char):
    name = f"train/a{char}b.png"
    with pytest.raises(names.UnsafeNameError) as refused:
        names.relpath(name, what="file name")
    assert char not in str(refused.value) and char.encode("unicode_escape").decode() in str(refused.value)
    assert names.shown_name(name) == f"train/a{char.encode('unicode_escape').decode()}b.png"
    assert names.is_safe("train/é-ü-中文.png")  # letters of any script stay names


def test_scan_reports_such_names_escaped_on_one_line_each(tmp_path):
    write_dataset(tmp_path, samples=4, test_fraction=0, seed=1)
    images = tmp_path / "train" / "training_images"
    hostile = {"s000000": "a\u2028b", "s000001": "x\u202egnp.exe", "s000002": "c\x85d"}
    for old, new in hostile.items():
        for ext in (".png", ".txt"):
            os.rename(images / f"{old}{ext}", images / f"{new}{ext}")

    result = CliRunner().invoke(app, ["scan", str(tmp_path), "--workers", "1"])

    assert result.exit_code == 0, result.output
    shown = result.output.splitlines()
    for new in hostile.values():
        raw_char = new[1]
        assert raw_char not in result.output
        escaped = new.encode("unicode_escape").decode()
        lines = [line for line in shown if f"[train/training_images/{escaped}." in line]
        assert len(lines) == 2 and all("unsafe_name" in line for line in lines), result.output
    assert "train         1 samples kept" in result.output  # the plain sample is still built

    as_json = CliRunner().invoke(app, ["scan", str(tmp_path), "--workers", "1", "--json"])
    unsafe = [p for p in json.loads(as_json.stdout)["problems"] if p["kind"] == "unsafe_name"]
    assert {p["path"] for p in unsafe} == {
        f"train/training_images/{n}{e}" for n in hostile.values() for e in (".png", ".txt")
    }
