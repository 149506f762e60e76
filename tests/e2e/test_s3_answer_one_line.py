"""An S3 answer a flow run fails on (a staging bucket that does not exist) is the command's one
`error:` line on the terminal, as a Hub answer is: not Prefect's "Encountered exception" record
and its 30-line botocore traceback above it."""

from __future__ import annotations

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli


@pytest.mark.usefixtures("prefect_harness")
def test_a_missing_staging_bucket_is_one_line(tmp_path, s3):
    _, bucket = s3
    write_dataset(tmp_path / "src", samples=2, image_size=16)
    code, out, err = run_cli(
        "publish-dataset",
        str(tmp_path / "src"),
        str(tmp_path / "out"),
        "--staging",
        f"s3://{bucket}-missing/stage",
    )
    assert code == 1 and out == ""
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Prefect:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: Could not talk to S3") and "NoSuchBucket" in lines[0]
    assert "Traceback" not in err and "Encountered exception" not in err
    assert not (tmp_path / "out").exists()
