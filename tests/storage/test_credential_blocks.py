"""S3 credentials and endpoint from a prefect-aws AwsCredentials block (as a deployment would use),
against moto's S3 server: nothing from the HUBPRESS_S3_* environment."""

import boto3
import pytest

from hubpress.settings import Settings
from hubpress.storage.files import open_storage

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_staging_through_an_aws_credentials_block(s3, monkeypatch):
    from prefect_aws import AwsClientParameters, AwsCredentials

    endpoint, bucket = s3
    monkeypatch.delenv("HUBPRESS_S3_ENDPOINT_URL")  # the block must carry the endpoint itself
    AwsCredentials(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=endpoint),
    ).save("hubpress-test-s3", overwrite=True)

    storage = open_storage(f"s3://{bucket}/stage", Settings(aws_credentials_block="hubpress-test-s3"))
    storage.write_bytes("a/b.txt", b"through the block")
    assert [f.relpath for f in storage.list()] == ["a/b.txt"]
    body = (
        boto3.client("s3", endpoint_url=endpoint)
        .get_object(Bucket=bucket, Key="stage/a/b.txt")["Body"]
        .read()
    )
    assert body == b"through the block"
