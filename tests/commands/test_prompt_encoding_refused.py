"""An unknown --prompt-encoding is an option value refused (exit 2, one line, before Prefect), as
docs/cli.md says of every option value the parameter model refuses; `scan` says the same."""

from __future__ import annotations

from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli


def test_an_unknown_prompt_encoding_is_exit_2_before_prefect(tmp_path):
    write_dataset(tmp_path / "src", samples=2, image_size=16)
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        "publish-dataset", str(tmp_path / "src"), str(out_dir), "--prompt-encoding", "utf-99", "--dry-run"
    )
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "error: prompt_encoding: prompt encoding 'utf-99' is not a known text encoding (e.g. utf-8, cp1252)."
    ]
    assert not out_dir.exists()
    scan_code, _, scan_err = run_cli("scan", str(tmp_path / "src"), "--prompt-encoding", "utf-99")
    assert scan_code == 2 and "'utf-99' is not a known text encoding" in scan_err
