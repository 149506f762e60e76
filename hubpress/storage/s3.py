"""The S3 side of `Storage`: an S3 prefix, through one boto3 client with botocore's retry mode
and hubpress's timeouts. Refusals a retry cannot cure are said in one line naming the bucket
(hubpress.storage.s3_refusals); listings are held to naming each key once and to an end
(hubpress.storage.s3_listing)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from hubpress.errors import SourceError
from hubpress.settings import Settings
from hubpress.storage import names
from hubpress.storage.files import UNLISTED, ListedFile
from hubpress.storage.s3_listing import checked_objects
from hubpress.storage.s3_refusals import said_as_refusal


def s3_session(settings: Settings):
    """(the boto3 session, the endpoint URL or None) that hubpress's S3 calls use."""
    import boto3

    def secret(value):
        return value.get_secret_value() if value is not None else None

    if settings.aws_credentials_block:
        from prefect_aws import AwsCredentials

        creds = AwsCredentials.load(settings.aws_credentials_block)
        session = creds.get_boto3_session()
        endpoint = settings.s3_endpoint_url or creds.aws_client_parameters.endpoint_url
    else:
        session = boto3.session.Session(
            aws_access_key_id=secret(settings.aws_access_key_id),
            aws_secret_access_key=secret(settings.aws_secret_access_key),
            aws_session_token=secret(settings.aws_session_token),
            region_name=settings.aws_region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        )
        endpoint = settings.s3_endpoint_url
    return session, endpoint


def s3_client(settings: Settings):
    """A boto3 S3 client with botocore's adaptive retry mode (throttling and 5xx are retried) and
    hubpress's connect and read timeouts."""
    from botocore.config import Config

    session, endpoint = s3_session(settings)
    kwargs = {}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    # hubpress's deadlines (hubpress.deadlines): botocore bounds the connect and each read; its
    # retry mode bounds the attempts.
    config = Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": "adaptive", "max_attempts": settings.s3_max_attempts},
    )
    return session.client("s3", config=config, **kwargs)


class S3Storage:
    def __init__(self, uri: str, settings: Settings):
        parsed = urlparse(uri)
        if not parsed.netloc:
            raise SourceError(f"{uri!r} is not a usable S3 location: expected s3://bucket/prefix.")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.root = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.settings = settings

    @cached_property
    def client(self):
        return s3_client(self.settings)

    def key(self, relpath: str) -> str:
        relpath = relpath.rstrip("/")
        if relpath:
            names.relpath(relpath, what="S3 key")
        if not self.prefix:
            return relpath
        return f"{self.prefix}/{relpath}" if relpath else self.prefix

    def uri(self, relpath: str) -> str:
        return f"s3://{self.bucket}/{self.key(relpath)}"

    @said_as_refusal("list")
    def list(self, prefix: str = "", report_unlisted: bool = False) -> Iterator[ListedFile]:
        """One paginated ListObjectsV2 over the prefix (every key is listed: unsafe names are
        reported by the caller's name gate). A key the answer names outside the prefix is not the
        prefix's: cut to a relative path, it named another object (`other/x.bin` under `stage`
        read as `stage/x.bin`), so it is left out (with `report_unlisted`, reported). A key ending
        in '/' is a folder marker and left out; one that holds bytes is, with `report_unlisted`, an
        UNLISTED entry saying so (never read): its bytes are not dropped silently. S3 lists each key
        once (in ascending order, except in directory buckets), so a listing that names a key
        again (new continuation tokens for ever), or gives empty truncated pages without end,
        would never end: refused (hubpress.storage.s3_listing)."""
        base = self.key(prefix)
        base = base + "/" if base else ""
        strip = len(self.prefix) + 1 if self.prefix else 0
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base)
        for obj, under in checked_objects(pages, base, self.root):
            key = obj["Key"]
            if not under:  # the answer names a key it was not asked for
                if report_unlisted:
                    yield ListedFile(
                        key, UNLISTED, f"is outside the prefix {base!r} that was listed; not read"
                    )
                continue
            if key.endswith("/"):
                if report_unlisted and obj["Size"] > 0:
                    held = f"{obj['Size']:,} bytes"
                    why = f"is not a regular file: an S3 folder marker (its key ends with '/') holding {held}"
                    yield ListedFile(key[strip:], UNLISTED, why)
                continue
            yield ListedFile(key[strip:], obj["Size"], obj["ETag"].strip('"'))

    @said_as_refusal("read")
    def exists(self, relpath: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(relpath))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise

    @said_as_refusal("read")
    def bucket_exists(self) -> bool:
        """Whether the bucket is there (HeadBucket): False for a 404, a refusal or the failed
        answer (named, hubpress.storage.s3_refusals) for anything else."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
                return False
            raise

    @said_as_refusal("read")
    def size(self, relpath: str) -> int:
        """The object's size (HeadObject's ContentLength)."""
        return self.client.head_object(Bucket=self.bucket, Key=self.key(relpath))["ContentLength"]

    @said_as_refusal("read")
    def read_bytes(self, relpath: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.key(relpath))["Body"].read()

    @said_as_refusal("read")
    def read_listed(self, listed: ListedFile) -> bytes:
        """The object listed, by its ETag, and of its listed size (`_listed_answer`)."""
        from hubpress.storage.listed_reads import read_as_listed

        with self._listed_answer(listed) as body:
            return read_as_listed(body, listed.size, self.uri(listed.relpath))

    @said_as_refusal("read")
    def get_listed(self, listed: ListedFile, local_path: str | Path) -> None:
        """A copy of the object listed, by its ETag, of its listed size; else nothing is left."""
        from hubpress.storage.listed_reads import copied_as_listed

        with self._listed_answer(listed) as body:
            copied_as_listed(body, local_path, listed.size, self.uri(listed.relpath))

    def _listed_answer(self, listed: ListedFile):
        """The body of the object listed, asked by its ETag: one written over it since is not read
        (412). Some S3-compatible stores answer 412 to an If-Match that holds (SeaweedFS 3.97;
        stores comparing the quoted and the unquoted ETag): then the answer without it is read
        when its own ETag is the listed one (an answer's ETag is that of the bytes it carries),
        else refused as well. The caller holds the body to the listed size: a store may answer
        other bytes under the listed ETag."""
        from botocore.exceptions import ClientError

        from hubpress.storage.listed_reads import NotTheListedFile

        key = self.key(listed.relpath)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key, IfMatch=f'"{listed.version}"')
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                raise
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            if str(answer.get("ETag") or "").strip('"') != listed.version:
                answer["Body"].close()
                raise NotTheListedFile(
                    f"s3://{self.bucket}/{key} is no longer the object that was listed (written over "
                    "since); it is not read. Run again once nothing writes to it."
                ) from None
        return answer["Body"]

    @said_as_refusal("read")
    def open(self, relpath: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.bucket, Key=self.key(relpath))["Body"]

    @said_as_refusal("write to")
    def write_bytes(self, relpath: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(relpath), Body=data)

    @said_as_refusal("write to")
    def put_file(self, relpath: str, local_path: str | Path) -> None:
        # upload_file switches to multipart above 8 MB; the object appears only on completion.
        self.client.upload_file(str(local_path), self.bucket, self.key(relpath))

    @said_as_refusal("read")
    def get_file(self, relpath: str, local_path: str | Path) -> None:
        self.client.download_file(self.bucket, self.key(relpath), str(local_path))

    @said_as_refusal("delete from")
    def delete(self, relpath: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(relpath))

    @said_as_refusal("read")
    def modified(self, relpath: str) -> float | None:
        """The object's LastModified (seconds since the epoch), or None when it is not there."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(relpath))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return head["LastModified"].timestamp()

    @said_as_refusal("list")
    def folders(self) -> list[str]:
        """The names of the "folders" (common prefixes) right under the root: one delimited listing."""
        base = self.prefix + "/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        names = set()
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base, Delimiter="/"):
            for common in page.get("CommonPrefixes", ()):
                names.add(common["Prefix"][len(base) :].rstrip("/"))
        return sorted(n for n in names if n)
