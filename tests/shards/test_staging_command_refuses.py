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


@pytest.mark.parametrize("command", ["list", "clean"])
def test_a_staging_folder_that_is_not_there_is_named_not_listed_as_empty(tmp_path, monkeypatch, command):
    """`--staging ./typo` printed "0 sealed shard(s)" (and clean "Removed 0"): a typo read as an
    empty staging area."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("staging", command, "--staging", "./typo")
    assert code == 1 and out == "", (out, err)
    [line] = err.splitlines()
    assert line.startswith("error: staging './typo' does not exist") and str(tmp_path / "typo") in line
    assert "--staging or HUBPRESS_STAGING" in line
    assert list(tmp_path.iterdir()) == []  # the listing created nothing


@pytest.mark.parametrize("command", ["list", "clean"])
def test_an_s3_staging_bucket_that_is_not_there_is_one_line(s3, monkeypatch, tmp_path, command):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    _endpoint, bucket = s3
    code, out, err = run_cli("staging", command, "--staging", f"s3://{bucket}-typo/stage", "--json")
    assert code == 1 and json.loads(out)["kind"] == "ConfigError", (out, err)
    [line] = err.splitlines()
    assert f"staging 's3://{bucket}-typo/stage' does not exist" in line
    # The bucket that is there, with nothing staged yet, is an empty listing.
    code, out, err = run_cli("staging", command, "--staging", f"s3://{bucket}/stage", "--json")
    assert code == 0, err
