"""`--staging` inside a local target (`publish-dataset ./src ./out --staging ./out/stage`). On main
the run wrote its run folder into the version the target's link names, and the commit carried it
into the new version as files hubpress does not own: the published copy held
`stage/runs/<id>/lease.json` (host and process id) and said it was up to date from then on. Now
one line before anything runs, as for any unusable staging."""

from __future__ import annotations

import json

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli


@pytest.mark.parametrize("staging", ["./out/stage", "./out", "./.out.hubpress/stage"])
def test_a_staging_inside_the_local_target_is_refused(tmp_path, monkeypatch, staging):
    monkeypatch.chdir(tmp_path)
    write_dataset(tmp_path / "src", samples=2, image_size=16)
    (tmp_path / "out").mkdir()
    code, out, err = run_cli("publish-dataset", "./src", "./out", "--staging", staging, "--json")
    assert code == 1, err
    assert json.loads(out)["kind"] == "ConfigError"
    [line] = err.splitlines()
    assert line.startswith(f"error: staging '{staging}' is inside the local target './out'")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


def test_a_release_whose_staging_is_inside_its_local_target_is_refused(tmp_path, monkeypatch):
    from hubpress.testdata.synth_lora import write_lora

    monkeypatch.chdir(tmp_path)
    write_lora(tmp_path / "run" / "checkpoint-1" / "pytorch_lora_weights.safetensors", rank=4)
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "lora" / "staging"))
    code, _, err = run_cli("release", "./run", "--repo", "./lora")
    assert code == 1 and "is inside the local target './lora'" in err and len(err.splitlines()) == 1
