"""`hubpress training-finished` announces only what the release deployment can run: a --select,
--repo or --tag its parameters refuse is a warning (exit 0: the trainer is never failed) and no
event, not an announcement whose release then fails in a run nobody is watching."""

from __future__ import annotations

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
