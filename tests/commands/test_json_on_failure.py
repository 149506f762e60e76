"""`--json` keeps stdout one JSON object when the command fails, whatever the failure: an option
value the parameter model refuses (exit 2), and `scan`'s own errors, as for every other error."""

from __future__ import annotations

import json

from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli


def test_a_refused_option_value_is_a_json_object_too(tmp_path):
    write_dataset(tmp_path / "src", samples=2, image_size=16)
    code, out, err = run_cli(
        "publish-dataset", str(tmp_path / "src"), str(tmp_path / "out"), "--max-shard-size", "5XB", "--json"
    )
    assert code == 2
    failure = json.loads(out)
    assert failure["kind"] == "ValidationError" and "'5XB' is not a size" in failure["error"]
    assert err.startswith("error: max_shard_size: '5XB' is not a size") and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_scan_errors_are_a_json_object_too(tmp_path):
    (tmp_path / "a-file").write_text("not a dataset")
    code, out, err = run_cli("scan", str(tmp_path / "a-file"), "--json")
    assert code == 1
    assert json.loads(out) == {"error": err.removeprefix("error: ").strip(), "kind": "SourceError"}
    code, out, err = run_cli("scan", str(tmp_path / "a-file"))
    assert code == 1 and out == ""  # without --json, stdout stays empty
