"""Mistakes in the arguments are found before Prefect starts: one line, and no flow run exists.

The commands run in this process against the session's Prefect test harness, so a check that
let a mistake through would start a flow run there; the tests count the runs before and after.
"""

from __future__ import annotations

import json

import pytest

from hubpress.commands.cli import main as cli


def flow_run_count() -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return len(client.read_flow_runs(limit=200))


CASES = {
    "missing source": (["publish-dataset", "./nope", "./published"], "source", "does not exist"),
    "source is a file": (["publish-dataset", "./not-a-dir", "./published"], "source", "is a file"),
    "missing refresh config": (["refresh", "missing.json", "./published"], "missing.json", "does not exist"),
    "hub target without a token": (["publish-dataset", "./src", "org/ds"], "token", "HF_TOKEN"),
    "refresh to the hub without a token": (["refresh", "backends.json", "org/ds"], "token", "HF_TOKEN"),
    "lora to the hub without a token": (["publish-lora", "./lora", "org/m"], "token", "HF_TOKEN"),
    "staging is a file": (
        ["publish-dataset", "./src", "./published", "--staging", "./not-a-dir/stage"],
        "staging",
        "is a file, not a directory",
    ),
    "staging with an unknown scheme": (
        ["publish-dataset", "./src", "./published", "--staging", "gs://bucket/x"],
        "staging",
        "s3://bucket/prefix",
    ),
    "ambiguous target": (["publish-dataset", "./src", "out/face-seg"], "./out/face-seg", "org/name"),
    "missing weights": (["publish-lora", "./nope.safetensors", "./m"], "weights", "does not exist"),
    "weights folder without weights": (
        ["publish-lora", "./out", "./m"],
        "No weights in out",
        "*.safetensors",
    ),
    "extra file is a folder": (
        ["publish-lora", "./lora", "./m", "--extra", "out=train_config.yaml"],
        "extra file",
        "not a regular file",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_argument_errors_stop_before_any_flow_run(bed, capsys, case):
    args, *needles = CASES[case]
    before = flow_run_count()
    with pytest.raises(SystemExit) as exit_:
        cli(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) <= 2, err
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in err
    assert "Traceback" not in err and "temporary server" not in err
    assert "Prefect:" not in err and "Prefect server" not in err  # refused before Prefect was looked for
    assert flow_run_count() == before


def test_a_good_command_does_create_a_run(bed, capsys):
    """The counterpart: the same bed and the count do see a run when the arguments are fine."""
    before = flow_run_count()
    with pytest.raises(SystemExit) as exit_:
        cli(["publish-dataset", "./src", "./published", "--json"])
    assert exit_.value.code in (0, None)
    assert json.loads(capsys.readouterr().out)["commit"]
    assert flow_run_count() > before
