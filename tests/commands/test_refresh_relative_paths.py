"""A relative `instance_data_dir` in a refresh configuration is read from the working directory, as
SimpleTuner reads it (its factory checks `os.path.exists(instance_data_dir)` as written, and its
cache folders default under `os.getcwd()`): not from the configuration file's folder. The CLI and
the flow a deployment runs (no CLI preflight) apply the same rule and say the same line."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.conftest import run_cli


def folder_of_images(folder, count: int, caption: str) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        Image.new("RGB", (16, 16), (40 * i, 90, 0)).save(folder / f"img{i}.png")
        (folder / f"img{i}.txt").write_text(f"{caption} {i}")


@pytest.fixture
def project(tmp_path):
    """project/config/multidatabackend.json names "studio"; project/studio has 2 images and
    project/config/studio 1, so which folder was read shows in the sample count."""
    config = tmp_path / "project" / "config" / "multidatabackend.json"
    folder_of_images(tmp_path / "project" / "studio", 2, "from the working directory")
    folder_of_images(config.parent / "studio", 1, "beside the configuration")
    config.write_text(json.dumps([{"id": "studio", "type": "local", "instance_data_dir": "studio"}]))
    (tmp_path / "elsewhere").mkdir()
    return config


@pytest.mark.usefixtures("prefect_harness")
def test_relative_instance_data_dir_is_read_from_the_working_directory(project, monkeypatch):
    monkeypatch.chdir(project.parent.parent)
    code, out, err = run_cli("refresh", "config/multidatabackend.json", "./out", "--json")
    assert code == 0, err
    assert json.loads(out)["samples"] == {"train": 2}  # project/studio, not project/config/studio


@pytest.mark.usefixtures("prefect_harness")
def test_from_another_directory_the_cli_and_the_flow_name_the_folder_they_looked_for(project, monkeypatch):
    from hubpress.errors import SourceError
    from hubpress.flows.params import RefreshParams
    from hubpress.flows.refresh_dataset import refresh_dataset

    elsewhere = project.parent.parent.parent / "elsewhere"
    monkeypatch.chdir(elsewhere)
    expected = (
        f"backend 'studio': instance_data_dir 'studio' is not a directory (read as {elsewhere / 'studio'}: "
        "a relative path is read from the working directory): fix the path in the configuration."
    )
    code, out, err = run_cli("refresh", str(project), str(elsewhere / "out"))
    assert code == 1 and out == "" and err.splitlines() == [f"error: {expected}"]
    # A deployment run calls the flow with the same parameters, in its own working directory.
    with pytest.raises(SourceError) as refused:
        refresh_dataset(RefreshParams(config=str(project), target=str(elsewhere / "out")))
    assert str(refused.value) == expected
    assert list(elsewhere.iterdir()) == []
