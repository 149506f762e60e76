"""`hubpress staging list|clean` refuse a staging location no publish could use, as publish-dataset
does: a typo must not read as "nothing staged" or "nothing to clean"."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("command", ["list", "clean"])
@pytest.mark.parametrize(
    ("where", "needle"),
    [("a-file", "is a file, not a directory"), ("http://host/stage", "s3://bucket/prefix")],
)
def test_an_unusable_staging_is_one_line_and_exit_1(tmp_path, monkeypatch, command, where, needle):
    (tmp_path / "a-file").write_text("not a staging directory")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("staging", command, "--staging", where)
    assert code == 1, (out, err)
    assert out == "" and err.startswith("error: staging") and needle in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing created (no ./http:)


def test_the_setting_is_checked_too_and_json_names_the_error(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("not a staging directory")
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "a-file" / "stage"))
    code, out, err = run_cli("staging", "clean", "--all", "--json")
    assert code == 1 and json.loads(out)["kind"] == "ConfigError"
    assert (
        "is a file, not a directory" in err and (tmp_path / "a-file").read_text() == "not a staging directory"
    )


@pytest.mark.parametrize("hours", ["-1", "nan"])
def test_a_nonsense_max_age_is_refused_not_read_as_sweep_everything(tmp_path, monkeypatch, hours):
    # -1 made every sealed shard "older than the limit": a policy clean removed what resume needs.
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("HUBPRESS_STAGING_MAX_AGE_HOURS", hours)
    code, out, err = run_cli("staging", "clean")
    assert code == 2 and out == ""
    assert err.startswith("error: staging_max_age_hours: ") and len(err.splitlines()) == 1
