"""S3 refusing a call for a reason a retry cannot cure, said in one line that names the bucket and
what to do.

botocore raises a ClientError whose text names only the operation and the HTTP status (a HeadBucket
answer has no body: "An error occurred (403) when calling the HeadBucket operation: Forbidden"),
and the generic line for it sent the user to the Hub's endpoint settings. Access denied, keys S3
does not know, and a bucket in another region than the client's are refusals of this machine's
configuration: `S3Refused` (a ConfigError: exit 1, never retried by Prefect) says which, for which
bucket. Throttling and 5xx answers are not refusals: botocore's retry mode and the tasks' retries
take them, and what persists past them is said by the CLI's line for any remote's answer.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from hubpress.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

_CREDENTIALS = (
    "the AWS_* variables, HUBPRESS_AWS_ACCESS_KEY_ID and HUBPRESS_AWS_SECRET_ACCESS_KEY, or the "
    "AwsCredentials block (HUBPRESS_AWS_CREDENTIALS_BLOCK)"
)
_UNKNOWN_KEYS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}
_DENIED = {"AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidObjectState"}
_ELSEWHERE = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}


class S3Refused(ConfigError):
    """S3 refused a call for this machine's credentials, permissions or region. Not retried."""


def s3_refusal(exc: BaseException, bucket: str, action: str) -> S3Refused | None:
    """The one-line error for a ClientError S3 answered `action` on `bucket` with, when no retry
    can cure it; None for anything else (throttling, 5xx, a missing key: the caller's to judge)."""
    from botocore.exceptions import ClientError

    for _ in range(4):  # boto3's upload_file raises S3UploadFailedError from the ClientError
        if isinstance(exc, ClientError) or exc is None:
            break
        exc = exc.__cause__ or exc.__context__
    if not isinstance(exc, ClientError):
        return None
    response = exc.response or {}
    meta = response.get("ResponseMetadata") or {}
    status = int(meta.get("HTTPStatusCode") or 0)
    code = str((response.get("Error") or {}).get("Code") or status)
    headers = {str(k).lower(): v for k, v in (meta.get("HTTPHeaders") or {}).items()}
    region = headers.get("x-amz-bucket-region")
    where = f"S3 bucket {bucket!r}"
    if code in _UNKNOWN_KEYS:
        return S3Refused(
            f"S3 does not accept the credentials hubpress used to {action} {where} ({code}): they are "
            f"unknown, expired or mistyped. Check {_CREDENTIALS}."
        )
    if code in _ELSEWHERE or status == 301:
        said = f"region {region}" if region else "another region"
        fix = f"AWS_DEFAULT_REGION={region}" if region else "AWS_DEFAULT_REGION to the bucket's region"
        return S3Refused(
            f"{where} is in {said}, not the one hubpress asked ({code}): nothing was done. Set {fix} "
            "(or HUBPRESS_AWS_REGION), or use the bucket's regional endpoint (HUBPRESS_S3_ENDPOINT_URL)."
        )
    if code in _DENIED or status == 403:
        return S3Refused(
            f"S3 denied hubpress access to {action} {where} ({code}, HTTP 403): nothing was done. Give "
            f"these credentials access to the bucket (its policy, the user's IAM policy), or use other "
            f"credentials: {_CREDENTIALS}."
        )
    return None


def said_as_refusal(action: str) -> Callable[[F], F]:
    """A storage method whose refusals (s3_refusal) become S3Refused, naming its bucket."""

    def wrap(method: F) -> F:
        def refused(self, exc: Exception) -> S3Refused | None:
            return s3_refusal(exc, self.bucket, action)

        if inspect.isgeneratorfunction(method):  # a listing fails while it is read, not when called

            @functools.wraps(method)
            def listing(self, *args, **kwargs):
                try:
                    yield from method(self, *args, **kwargs)
                except Exception as exc:
                    if (refusal := refused(self, exc)) is None:
                        raise
                    raise refusal from None

            return listing  # type: ignore[return-value]

        @functools.wraps(method)
        def call(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                if (refusal := refused(self, exc)) is None:
                    raise
                raise refusal from None

        return call  # type: ignore[return-value]

    return wrap
