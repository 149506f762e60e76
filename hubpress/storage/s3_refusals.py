"""S3 refusing a call for a reason a retry cannot cure, said in one line that names the bucket and
what to do.

botocore raises a ClientError whose text names only the operation and the HTTP status (a HeadBucket
answer has no body: "An error occurred (403) when calling the HeadBucket operation: Forbidden"),
and the generic line for it sent the user to the Hub's endpoint settings. Access denied, keys S3
does not know, and a bucket in another region than the client's are refusals of this machine's
configuration: `S3Refused` (a ConfigError: exit 1, never retried by Prefect) says which, for which
bucket. Throttling and 5xx answers are not refusals: botocore's retry mode and the tasks' retries
take them, so they stay the ClientError they are; each is marked with the call it failed (what was
asked, of which object or prefix, with how many attempts), and what persists past the retries is
said by `s3_answer_failure` in one line naming that object: botocore's own text names only the
operation, and a run reading a source bucket and writing a staging bucket could not tell which
one was down.
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
    exc = _client_error(exc)
    if exc is None:
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


# The attribute a failed S3 call's exception carries: (action, s3:// URI of the object or prefix, attempts).
S3_CALL = "hubpress_s3_call"


def _client_error(exc: BaseException | None):
    from botocore.exceptions import ClientError

    for _ in range(4):  # boto3's upload_file raises S3UploadFailedError from the ClientError
        if exc is None or isinstance(exc, ClientError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _called_on(storage: Any, args: tuple[Any, ...], listing: bool) -> str:
    """The s3:// URI a storage call was for: its first argument's (a relative path or a listed
    file), a prefix with its trailing '/' for a listing, the root without an argument."""
    name = args[0] if args else ""
    name = getattr(name, "relpath", name)
    try:
        uri = storage.uri(name) if isinstance(name, str) else storage.root
    except Exception:  # noqa: BLE001 - a name the gate refuses: the root still says where
        uri = storage.root
    return uri.rstrip("/") + "/" if listing or not name else uri


def s3_answer_failure(exc: BaseException) -> Exception | None:
    """The one line for an S3 answer a storage call failed on past its retries (marked S3_CALL), or
    None for an exception that is not one: a 5xx or throttling answer names the object, the
    status and S3's code, and says to run again later or allow more attempts; any other answer
    (NoSuchBucket, NoSuchKey) names the object and what to check."""
    from hubpress.targets.hub_failures import HubAnswerUnusable, RemoteUnreachable
    from hubpress.targets.retries import TRANSIENT_S3_CODES

    call = getattr(exc, S3_CALL, None)
    client_error = _client_error(exc)
    if call is None or client_error is None:
        return None
    action, where, attempts = call
    response = client_error.response or {}
    status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    error = response.get("Error") or {}
    code = str(error.get("Code") or status)
    said = " ".join(str(error.get("Message") or "").split())[:120]
    answer = f"HTTP {status} {code}" + (f" ({said})" if said else "")
    if status >= 500 or status == 429 or code in TRANSIENT_S3_CODES:
        return RemoteUnreachable(
            f"S3 kept failing to {action} {where}: {answer}, after {attempts} attempt(s) and the "
            "task's retries. The store is down or overloaded: run again later, or raise "
            "HUBPRESS_S3_MAX_ATTEMPTS to wait longer."
        )
    return HubAnswerUnusable(
        f"Could not talk to S3 to {action} {where}: it answered {answer}. Check the bucket and key "
        "names and HUBPRESS_S3_ENDPOINT_URL, then run again."
    )


def said_as_refusal(action: str) -> Callable[[F], F]:
    """A storage method whose refusals (s3_refusal) become S3Refused, naming its bucket; any
    other failed answer is marked with the call (S3_CALL) and raised as it is."""

    def wrap(method: F) -> F:
        listing = inspect.isgeneratorfunction(method)

        def refused(self, exc: Exception, args: tuple[Any, ...]) -> S3Refused | None:
            refusal = s3_refusal(exc, self.bucket, action)
            if refusal is None and _client_error(exc) is not None:
                attempts = getattr(getattr(self, "settings", None), "s3_max_attempts", "?")
                try:
                    setattr(exc, S3_CALL, (action, _called_on(self, args, listing), attempts))
                except AttributeError:  # an exception type without a __dict__: left unmarked
                    pass
            return refusal

        if listing:  # a listing fails while it is read, not when called

            @functools.wraps(method)
            def listed(self, *args, **kwargs):
                try:
                    yield from method(self, *args, **kwargs)
                except Exception as exc:
                    if (refusal := refused(self, exc, args)) is None:
                        raise
                    raise refusal from None

            return listed  # type: ignore[return-value]

        @functools.wraps(method)
        def call(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                if (refusal := refused(self, exc, args)) is None:
                    raise
                raise refusal from None

        return call  # type: ignore[return-value]

    return wrap
