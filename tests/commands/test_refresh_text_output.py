"""What a refresh's text output tells a person: which rule left rows out and where to read them,
and the tag it made on a head that did not change.

A refresh's "skipped" rows are the ones its configuration's rules dropped (a minimum size, a
quality threshold). The line under the counts used to be publish-dataset's, pointing at
`hubpress scan SOURCE` (which refuses a configuration file) and an `intake-report` artifact a
refresh does not write. It now names each backend's rules and counts, and the places that list
the rows: the card, manifest.json and the run's `refresh-report-<target>` artifact. `--json`
carries the same counts in `backends.<id>.dropped`.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.conftest import run_cli


@pytest.fixture
def studio_config(tmp_cwd) -> str:
    studio = tmp_cwd / "studio"
    studio.mkdir()
    for i, side in enumerate((8, 8, 32)):
        Image.new("RGB", (side, side), (40 * i, 0, 0)).save(studio / f"i{i}.png")
        (studio / f"i{i}.txt").write_text(f"caption {i}")
    entry = {"id": "studio", "type": "local", "instance_data_dir": "studio"}
    return json.dumps([{**entry, "resolution_type": "pixel", "minimum_image_size": 16}])


@pytest.mark.usefixtures("prefect_harness")
def test_the_text_names_the_rule_and_where_the_rows_are_listed(tmp_cwd, studio_config):
    code, out, err = run_cli("refresh", studio_config, "./refreshed")
    assert code == 0, err
    lines = out.splitlines()
    assert "  train: 1 samples, 2 skipped" in lines
    assert "  studio: 2 of 3 rows left out by the configuration's rules (minimum_image_size: 2)" in lines
    assert (
        "  rows left out and why: the card and manifest.json (counts) of ./refreshed list them; in the "
        "Prefect UI, the run's `refresh-report-refreshed` artifact"
    ) in lines
    assert "hubpress scan" not in out and "intake-report" not in out
    manifest = json.loads((tmp_cwd / "refreshed" / "manifest.json").read_text())
    assert manifest["counts"]["studio"]["dropped"] == {"minimum_image_size": 2}


@pytest.mark.usefixtures("prefect_harness")
def test_json_carries_the_counts_by_rule(tmp_cwd, studio_config):
    code, out, err = run_cli("refresh", studio_config, "./refreshed", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["skipped"] == {"train": 2}
    assert result["backends"]["studio"]["dropped"] == {"minimum_image_size": 2}


@pytest.mark.usefixtures("prefect_harness")
def test_a_tag_on_an_unchanged_refresh_is_said(tmp_cwd, studio_config):
    assert run_cli("refresh", studio_config, "./refreshed")[0] == 0
    code, out, err = run_cli("refresh", studio_config, "./refreshed", "--tag", "v1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("./refreshed: nothing changed upstream")
    assert lines[1:] == ["  tag: v1, made on the unchanged head"]
    code, out, err = run_cli("refresh", studio_config, "./refreshed", "--tag", "v1")
    assert code == 0, err
    assert out.splitlines()[1:] == ["  tag: v1 was already on the unchanged head"]
