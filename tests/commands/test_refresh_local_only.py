"""A refresh whose backends are all local folders reads nothing from the Hub: to a local target it
runs with no Hub in reach, and a folder that is not there is one line before Prefect starts."""

from __future__ import annotations

import json
import socket

import pytest
from PIL import Image

from tests.conftest import run_cli


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def local_config(folder) -> str:
    return json.dumps([{"id": "studio", "type": "local", "instance_data_dir": str(folder)}])


@pytest.mark.usefixtures("prefect_harness")
def test_a_local_only_refresh_to_a_local_target_needs_no_hub(tmp_cwd, monkeypatch):
    studio = tmp_cwd / "studio"
    studio.mkdir()
    for i in range(2):
        Image.new("RGB", (16, 16), (60 * i, 0, 0)).save(studio / f"img{i}.png")
        (studio / f"img{i}.txt").write_text(f"caption {i}")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())  # no Hub anywhere
    code, out, err = run_cli("refresh", local_config(studio), "./refreshed", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["commit"] and result["samples"] == {"train": 2}
    assert "Cannot reach the Hub" not in err


@pytest.mark.usefixtures("prefect_harness")
def test_a_missing_local_folder_is_one_line_before_prefect(tmp_cwd):
    code, out, err = run_cli("refresh", local_config(tmp_cwd / "nope"), "./refreshed")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"error: backend 'studio': instance_data_dir '{tmp_cwd / 'nope'}' is not a directory: fix the "
        "path in the configuration."
    ]
    assert not (tmp_cwd / "refreshed").exists()
