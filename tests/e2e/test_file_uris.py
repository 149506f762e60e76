"""file:// URIs name paths percent-encoded (RFC 8089): `Path("my data é").as_uri()` is
`file:///.../my%20data%20%C3%A9`. hubpress reads and writes the directory the URI names, never a
new directory literally called `my%20data`."""

from __future__ import annotations

import json

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli


@pytest.mark.usefixtures("prefect_harness")
def test_percent_encoded_file_uris_name_the_directories_they_encode(tmp_path):
    source = tmp_path / "my data é"
    write_dataset(source, samples=2, image_size=16)
    target = tmp_path / "published out"

    code, out, err = run_cli("scan", source.as_uri(), "--json")
    assert code == 0, err
    assert json.loads(out)["splits"]["train"]["samples"] == 2

    code, out, err = run_cli("publish-dataset", source.as_uri(), target.as_uri(), "--json")
    assert code == 0, err
    assert json.loads(out)["samples"] == {"train": 2}
    assert (target / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if "%" in p.name) == []

    from hubpress.api import load_editing_dataset

    assert load_editing_dataset(target.as_uri(), split="train").num_rows == 2


@pytest.mark.parametrize(
    "spelling",
    [
        "file://elsewhere{path}",  # a host: taking its path alone would read this machine's folder
        "file://{name}",  # meant as relative: names the host, and an empty path (the working folder)
        "file://{path}%00",  # a NUL byte no path can hold
    ],
)
def test_a_file_uri_naming_no_folder_of_this_machine_is_one_line_exit_2(tmp_path, monkeypatch, spelling):
    source = tmp_path / "set"
    write_dataset(source, samples=2, image_size=16)
    monkeypatch.chdir(tmp_path)  # `file://set` must not quietly scan or publish the working folder
    uri = spelling.format(path=source, name=source.name)

    code, out, err = run_cli("scan", uri, "--json")
    assert code == 2, (out, err)
    assert "does not name a folder of this machine" in json.loads(out)["error"]
    assert "Traceback" not in err

    code, out, err = run_cli("publish-dataset", str(source), uri.replace("set", "out"))
    assert code == 2, (out, err)
    assert "does not name a folder of this machine" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # nothing written anywhere here

    from hubpress.api import load_editing_dataset
    from hubpress.errors import ConfigError

    with pytest.raises(ConfigError, match="does not name a folder of this machine"):
        load_editing_dataset(uri, split="train")


def test_file_localhost_names_this_machine(tmp_path):
    source = tmp_path / "set"
    write_dataset(source, samples=2, image_size=16)
    code, out, err = run_cli("scan", f"file://localhost{source}", "--json")
    assert code == 0, err
    assert json.loads(out)["splits"]["train"]["samples"] == 2


def test_a_staging_file_uri_is_decoded_and_checked_before_prefect(tmp_path, monkeypatch):
    source = tmp_path / "set"
    write_dataset(source, samples=2, image_size=16)
    monkeypatch.chdir(tmp_path)  # `file://stage` named the working folder as the staging
    code, out, err = run_cli(
        "publish-dataset", str(source), str(tmp_path / "out"), "--staging", "file://stage"
    )
    assert code == 2, (out, err)
    assert "does not name a folder of this machine" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]

    from hubpress.flows.params import PublishDatasetParams

    stage = tmp_path / "my stage"
    params = PublishDatasetParams(source=str(source), target="./out", staging=stage.as_uri())
    assert params.staging == str(stage)  # the folder the preflight checks is the one staged into
