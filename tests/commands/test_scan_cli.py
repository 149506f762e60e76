"""`hubpress scan`: the report for a person, --json for programs, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from hubpress.commands.cli import app
from hubpress.testdata.synth import DEFECTS, write_dataset

runner = CliRunner()


def scan(*args):
    return runner.invoke(app, ["scan", *map(str, args), "--workers", "1"])


def test_person_readable_report(tmp_path):
    write_dataset(tmp_path, samples=10, test_fraction=0.2, defects=DEFECTS, seed=3)
    result = scan(tmp_path)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "folder layout" in out
    assert "train         7 samples kept         1 skipped" in out  # an empty prompt is kept
    assert "undecodable_image (error)" in out and "orphan_control (warning)" in out
    assert "empty_prompt (warning)" in out
    assert "train/control_images/" in out  # problems name their files


def test_json_object(tmp_path):
    s = write_dataset(tmp_path, layout="csv", samples=10, test_fraction=0.2, defects=DEFECTS, seed=3)
    result = scan(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"layout", "splits", "problems", "corrections"}
    assert data["layout"] == "csv"
    assert data["splits"] == {
        "train": {"samples": len(s.expected["train"]), "skipped": 1},
        "test": {"samples": 2, "skipped": 0},
    }
    assert {p["kind"] for p in data["problems"]} >= {"undecodable_image", "empty_prompt", "file_resolved"}
    assert all(set(p) == {"split", "sample", "kind", "detail", "path"} for p in data["problems"])
    assert all(set(c) == {"split", "sample", "path", "from", "to", "kind"} for c in data["corrections"])


def test_on_error_fail_exits_1_and_still_reports(tmp_path):
    write_dataset(tmp_path, samples=4, defects=("truncated",))
    result = scan(tmp_path, "--on-error", "fail", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["splits"]["train"]["skipped"] == 1
    assert "Nothing was built" in result.stderr


def test_unusable_arguments_exit_2_and_unusable_sources_1(tmp_path):
    """Option values refused exit 2; a source that holds no dataset exits 1, as publish-dataset."""
    assert scan(tmp_path, "--layout", "zip").exit_code == 2
    assert scan(tmp_path, "--on-error", "maybe").exit_code == 2
    assert scan(tmp_path, "--max-pixels", "0").exit_code == 2
    assert scan(tmp_path / "missing").exit_code == 1
    (tmp_path / "x.txt").write_text("not a dataset")
    result = scan(tmp_path)
    assert result.exit_code == 1 and "train/ and/or test/" in result.stderr
    write_dataset(tmp_path / "ds", samples=2)
    assert scan(tmp_path / "ds", "--layout", "csv").exit_code == 1
    assert scan(tmp_path / "ds", "--prompt-encoding", "nope").exit_code == 2


def test_options_reach_intake(tmp_path):
    write_dataset(tmp_path, samples=3, image_size=40)
    result = scan(tmp_path, "--max-pixels", "1000", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["splits"]["train"] == {"samples": 0, "skipped": 3}
    (tmp_path / "train/training_images/s000000.png").unlink()
    data = json.loads(scan(tmp_path, "--allow-missing-target", "--json").stdout)
    assert data["splits"]["train"] == {"samples": 3, "skipped": 0}


def test_fix_source_prints_what_it_changed(tmp_path):
    s = write_dataset(tmp_path, layout="csv", samples=4, defects=("ext_mismatch",), seed=9)
    sid = s.defects["ext_mismatch"][0].split("/", 1)[1]
    result = scan(tmp_path, "--fix-source")
    assert result.exit_code == 0, result.output
    assert f"renamed: train/control/{sid}.png -> train/control/{sid}.jpg" in result.output
    assert "backed_up: train.csv -> train.csv." in result.output
    assert "rewrote: train.csv" in result.output
    assert "correction" not in result.output.split("rewrote")[1]  # the rescanned source needs none
    assert (tmp_path / f"train/control/{sid}.jpg").exists()


def test_more_workers_than_the_machine_can_use_is_one_line_exit_2(tmp_path):
    """`--workers 100000` had loky start decoding processes until memory ran out: refused before
    the source is listed, in one line, and the Python API says the same."""
    import pytest

    from hubpress.errors import ConfigError
    from hubpress.sources.intake import run_intake
    from tests.conftest import run_cli

    write_dataset(tmp_path, samples=1, seed=3)
    for args in (["--workers", "100000"], ["--workers", "100000", "--json"]):
        code, out, err = run_cli("scan", str(tmp_path), *args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and "--workers 100000" in lines[0], err
        assert "Traceback" not in err
    assert json.loads(out)["kind"] == "ConfigError"
    with pytest.raises(ConfigError, match="decoding processes"):
        run_intake(str(tmp_path), workers=100000)
    assert run_cli("scan", str(tmp_path), "--workers", "2")[0] == 0


def test_a_folder_without_a_dataset_is_named_in_the_one_line(tmp_path, monkeypatch):
    """`scan` and `publish-dataset` of a folder that holds no dataset say which folder: the line
    said 'this source', no help when a script publishes several."""
    from tests.conftest import run_cli

    empty = tmp_path / "nothing hère"
    empty.mkdir()
    monkeypatch.chdir(tmp_path)
    for args in (
        ["scan", "./nothing hère"],
        ["publish-dataset", "./nothing hère", "./out/x", "--layout", "csv"],
    ):
        code, out, err = run_cli(*args)
        assert code == 1, err
        [line] = err.strip().splitlines()
        assert line.startswith("error: ") and "nothing hère" in line, line
    assert not (tmp_path / "out").exists()
