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
