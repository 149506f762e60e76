"""A 0-byte image (a copy that never finished, a placeholder) is skipped as `undecodable_image`
saying it is empty: "not a recognisable image (unknown magic bytes)" sent the outsider looking for
a format problem in a file that has no bytes at all."""

from __future__ import annotations

import json

from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli


def test_a_zero_byte_image_is_reported_as_empty(tmp_path):
    write_dataset(tmp_path / "src", samples=2)
    control = sorted((tmp_path / "src" / "train" / "control_images").iterdir())[0]
    control.write_bytes(b"")
    code, out, err = run_cli("scan", str(tmp_path / "src"), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["splits"]["train"] == {"samples": 1, "skipped": 1}
    [problem] = report["problems"]
    assert problem["kind"] == "undecodable_image" and problem["detail"] == "an empty file (0 bytes)"
