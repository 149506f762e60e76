"""An s3:// staging or source with no AWS credentials anywhere is one line before Prefect starts,
not a flow run that dies in botocore's NoCredentialsError with Prefect's 60-line traceback and
advice about the Hub endpoint."""

from __future__ import annotations

import os

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli


@pytest.fixture
def no_aws_credentials(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("AWS_", "HUBPRESS_AWS_")) or name == "HUBPRESS_S3_ENDPOINT_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_aws_credentials")
@pytest.mark.parametrize("where", ["staging", "source"])
def test_s3_without_credentials_is_one_line_before_prefect(tmp_path, where):
    write_dataset(tmp_path / "src", samples=2, image_size=16)
    args = {
        "staging": [
            "publish-dataset",
            str(tmp_path / "src"),
            str(tmp_path / "out"),
            "--staging",
            "s3://team/stage",
        ],
        "source": ["publish-dataset", "s3://team/face_seg", str(tmp_path / "out")],
    }[where]
    code, out, err = run_cli(*args)
    assert code == 1 and out == ""
    s3 = "s3://team/stage" if where == "staging" else "s3://team/face_seg"
    assert err.splitlines() == [
        f"error: no AWS credentials for {s3}: set HUBPRESS_AWS_ACCESS_KEY_ID and HUBPRESS_AWS_SECRET_ACCESS_KEY "
        "(or AWS_* variables, a profile), or name an AwsCredentials block in HUBPRESS_AWS_CREDENTIALS_BLOCK."
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("no_aws_credentials")
@pytest.mark.parametrize("config", ["profile", "unparsable"])
def test_an_unusable_aws_configuration_is_named_as_such(tmp_path, monkeypatch, config):
    """A missing AWS_PROFILE or an AWS config file botocore cannot parse is this machine's
    configuration: the line says so, not that S3's answer could not be used or to check HF_ENDPOINT."""
    if config == "profile":
        monkeypatch.setenv("AWS_PROFILE", "nope")
    else:
        (tmp_path / "no-config").write_text("[default\nregion = x\n")
    write_dataset(tmp_path / "src", samples=2, image_size=16)
    for args in (
        ["scan", "s3://team/face_seg"],
        ["publish-dataset", str(tmp_path / "src"), str(tmp_path / "out"), "--staging", "s3://team/stage"],
    ):
        code, out, err = run_cli(*args)
        assert code == 1 and out == "", err
        [line] = err.splitlines()
        assert line.startswith("error: the AWS configuration of this machine cannot be used"), line
        assert "HF_ENDPOINT" not in line and "answer" not in line
        assert ("nope" in line) if config == "profile" else ("no-config" in line or "parse" in line.lower())
    assert not (tmp_path / "out").exists()
