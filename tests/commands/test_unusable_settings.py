"""Settings a command cannot use, said in one line naming the setting, exit 1, never a traceback or a
silent default: a HUBPRESS_HOME (or HUBPRESS_CACHE_DIR) where the cache cannot be created, for every
command that opens the cache; a HUBPRESS_PREFECT_SERVER value that is neither mode."""

from __future__ import annotations

import json

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli


@pytest.fixture
def home_under_a_file(tmp_cwd, monkeypatch):
    write_dataset(tmp_cwd / "src", samples=2, image_size=16)
    (tmp_cwd / "afile").write_text("not a folder")
    for var in ("HUBPRESS_CACHE_DIR", "HUBPRESS_STAGING"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_cwd / "staging"))  # only the cache is unusable
    monkeypatch.setenv("HUBPRESS_HOME", str(tmp_cwd / "afile" / "home"))
    return tmp_cwd


@pytest.mark.parametrize(
    "args",
    [["scan", "./src"], ["scan", "./src", "--json"], ["staging", "list"], ["staging", "clean", "--json"]],
    ids=" ".join,
)
def test_a_cache_that_cannot_be_created_is_one_line(home_under_a_file, args):
    code, out, err = run_cli(*args)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert str(home_under_a_file / "afile" / "home" / "cache") in lines[0]
    assert "HUBPRESS_CACHE_DIR" in lines[0]
    assert code == 1
    if "--json" in args:
        assert "cannot be" in json.loads(out)["error"]
    assert not (home_under_a_file / "src" / ".hubpress").exists()


def test_a_misspelt_prefect_server_mode_is_one_line(bed, monkeypatch):
    """HUBPRESS_PREFECT_SERVER=temporay (a typo) was used as 'auto' whenever Prefect already had an
    API or the local server ran: the person asked for temporary servers and silently got the
    lasting one."""
    monkeypatch.setenv("HUBPRESS_PREFECT_SERVER", "temporay")
    code, out, err = run_cli("publish-dataset", "src", "./out/ds")
    assert code == 1, err
    [line] = err.strip().splitlines()
    assert line == "error: HUBPRESS_PREFECT_SERVER='temporay': expected 'auto' (the default) or 'temporary'."
    assert not (bed / "out" / "ds").exists()


def test_a_staging_size_that_is_no_size_is_refused_before_the_run(bed, monkeypatch):
    """HUBPRESS_STAGING_MAX_SIZE=abc failed a publish inside its flow run, at the staging sweep, in
    a line that named no setting."""
    monkeypatch.setenv("HUBPRESS_STAGING_MAX_SIZE", "abc")
    for args in (["publish-dataset", "src", "./out/ds"], ["staging", "clean"]):
        code, out, err = run_cli(*args)
        assert code == 2, err
        [line] = err.strip().splitlines()
        assert "'abc' is not a size" in line and "HUBPRESS_STAGING_MAX_SIZE" in line, line
    assert not (bed / "out" / "ds").exists()
