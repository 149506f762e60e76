"""The small things a new user trips over in the first hour: `--version`, `--debug` after the
command, one line for a pull request against a branch that does not exist, and the empty folder
found before Prefect starts, with the same exit code from `scan` and `publish-dataset`."""

from __future__ import annotations

import uuid

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli


def test_version_and_debug_after_the_command(tmp_path):
    import hubpress

    assert run_cli("--version")[:2] == (0, f"hubpress {hubpress.__version__}\n")
    code, out, err = run_cli("scan", str(tmp_path / "missing"), "--debug")
    assert code == 1 and "No such option" not in err and "does not exist" in err


def test_the_empty_folder_is_one_line_before_prefect_and_both_commands_exit_1(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    scan_code, _, scan_err = run_cli("scan", str(empty))
    code, out, err = run_cli("publish-dataset", str(empty), str(tmp_path / "out"))
    assert scan_code == code == 1
    assert (
        [line for line in err.splitlines() if line.strip()]
        == [line for line in err.splitlines() if line.startswith("error:") and "train/ and/or test/" in line]
        != []
    )
    assert "Prefect" not in err  # refused before a flow (and its server) started
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("prefect_harness")
def test_a_pull_request_against_a_missing_branch_is_one_line(hub, tmp_path, write_token):
    src = tmp_path / "face_seg"
    write_dataset(src, samples=3, test_fraction=0.0, image_size=16, seed=31)
    repo = f"alice/pr-{uuid.uuid4().hex[:8]}"
    assert run_cli("publish-dataset", str(src), repo)[0] == 0
    hub.reset_stats()
    code, out, err = run_cli(
        "publish-dataset", str(src), repo, "--revision", "dev", "--tag", "v9", "--create-pr"
    )
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Prefect:")]
    assert len(lines) == 1 and lines[0].startswith("error: --create-pr opens a pull request against 'dev'")
    assert "Traceback" not in err and hub.stats.commits == 0


def test_help_says_each_label_once():
    code, out, _ = run_cli("publish-dataset", "--help")
    text = " ".join(out.replace("│", " ").split())
    assert code == 0 and "Dataset root: a local directory" in text
    assert "Source: Dataset root" not in text and "Layout: auto" not in text
