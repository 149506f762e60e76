"""A wrong token and a bad refresh filter are found before Prefect starts, as docs/cli.md promises:
one `error:` line, exit 1, and no flow run in the harness (the commands run in this process
against the session's Prefect test harness; the runs are counted before and after)."""

from __future__ import annotations

import json

import pytest

from hubpress.commands.cli import main as cli
from tests.commands.test_preflight import flow_run_count
from tests.conftest import READ_TOKEN


def one_line_error(capsys, args: list[str]) -> str:
    before = flow_run_count()
    with pytest.raises(SystemExit) as exit_:
        cli(args)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_.value.code == 1, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "Prefect:" not in err  # Prefect was never asked
    assert flow_run_count() == before
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [["publish-dataset", "./src", "alice/wrong-token"], ["publish-lora", "./lora", "alice/wrong-token-m"]],
)
def test_a_wrong_token_stops_before_any_flow_run(bed, capsys, monkeypatch, hub, args):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_token_anyone_issued")
    line = one_line_error(capsys, args)
    assert "401" in line and "HF_TOKEN" in line
    assert "hf_not_a_token_anyone_issued" not in line  # a token never appears in an error


def test_a_read_token_stops_before_any_flow_run(bed, capsys, monkeypatch, hub):
    monkeypatch.setenv("HF_TOKEN", READ_TOKEN)
    line = one_line_error(capsys, ["publish-dataset", "./src", "alice/read-only"])
    assert "read role" in line and READ_TOKEN not in line


@pytest.mark.parametrize(
    ("filter_func", "needle"),
    [
        ({"min_width": -3}, "min_width"),
        ({"quality_thresholds": {"aesthetic": "high"}}, "quality_thresholds"),
    ],
)
def test_a_bad_refresh_filter_stops_before_any_flow_run(bed, capsys, filter_func, needle):
    config = [
        {
            "id": "up",
            "type": "huggingface",
            "dataset_name": "org/up",
            "huggingface": {"filter_func": filter_func},
        }
    ]
    (bed / "backends.json").write_text(json.dumps(config))
    line = one_line_error(capsys, ["refresh", "backends.json", "./published"])
    assert needle in line and "up" in line
