"""`hubpress training-finished` announces only what the release deployment can run: a --select,
--repo or --tag its parameters refuse is a warning (exit 0: the trainer is never failed) and no
event, not an announcement whose release then fails in a run nobody is watching."""

from __future__ import annotations

import shlex

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [("--select", "nonsense", "select"), ("--repo", "bad/../repo", "repo_id"), ("--tag", "bad..tag", "tag")],
)
def test_options_the_release_would_refuse_are_not_announced(tmp_path, monkeypatch, option, value, field):
    run = tmp_path / "run" / "checkpoint-10"
    run.mkdir(parents=True)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens: must not be asked
    args = {"--repo": "./released", "--select": None, "--tag": None, option: value}
    argv = ["training-finished", str(tmp_path / "run")]
    for name, given in args.items():
        if given is not None:
            argv += [name, given]
    code, out, err = run_cli(*argv)
    assert code == 0 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"warning: {field}: ")
    assert err.rstrip().endswith(
        "Nothing was announced: fix the option and run `hubpress training-finished` again."
    )
    assert "could not announce" not in err and ".. Nothing" not in err


def test_the_release_to_run_by_hand_pastes_into_a_shell(tmp_path, monkeypatch):
    """A lost announcement names the command to release by hand; pasted as printed, a training
    output whose path has spaces stays one argument."""
    run = tmp_path / "run ñ 42"
    (run / "checkpoint-10").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens there
    code, out, err = run_cli("training-finished", str(run), "--repo", "./my lora", "--timeout", "1")
    assert code == 0 and out == ""
    assert err.startswith("warning: could not announce") and len(err.splitlines()) == 1
    pasted = shlex.split(err.split("release it by hand with: ", 1)[1])
    assert pasted == ["hubpress", "release", str(run), "--repo", str(tmp_path / "my lora")]
