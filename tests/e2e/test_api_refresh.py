"""A refresh from Python goes the way the other hubpress.api calls go.

docs/refresh.md's Python example called the flow itself, which skips what hubpress.api does for a
script: the local Prefect server (started once, reused; the bare flow starts Prefect's temporary
server in every process and, on a loaded machine, failed with "Timed out while attempting to
connect to ephemeral Prefect API server"), argument errors before Prefect starts, Prefect's
INFO lines off the console, and a tidy Ctrl-C. `hubpress.api.refresh_dataset` is that call.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from hubpress.errors import TargetIsInput

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_refresh_dataset_from_python_publishes_then_finds_nothing_changed(tmp_cwd, capfd):
    from hubpress.api import refresh_dataset

    studio = tmp_cwd / "studio"
    studio.mkdir()
    for i in range(2):
        Image.new("RGB", (8, 8), (90 * i, 0, 0)).save(studio / f"i{i}.png")
        (studio / f"i{i}.txt").write_text(f"caption {i}")
    config = [{"id": "studio", "type": "local", "instance_data_dir": "studio"}]
    (tmp_cwd / "multidatabackend.json").write_text(json.dumps(config))

    first = refresh_dataset(tmp_cwd / "multidatabackend.json", tmp_cwd / "refreshed", seed=7)
    assert first["commit"] and first["samples"] == {"train": 2}
    assert json.loads((tmp_cwd / "refreshed" / "manifest.json").read_text())["counts"]["studio"]["kept"] == 2
    again = refresh_dataset(config, tmp_cwd / "refreshed", seed=7)  # the parsed JSON works too
    assert again["nothing_changed"] is True and again["commit"] is None
    assert "| INFO" not in capfd.readouterr().err  # Prefect's INFO lines stay off the console

    with pytest.raises(TargetIsInput):  # argument errors before Prefect, as from the CLI
        refresh_dataset(config, "./studio")
