"""Answers hubpress cannot use, from any remote, as one line.

A Hub (or a proxy, or a host a redirect leads to) can answer with something that is not what the
protocol says: a body that is not JSON, `{}` where an object with fields was due, 300 MB of JSON, a
download shorter than its declared size ("Consistency check failed"), an HTTP status the client has
no name for. huggingface_hub, `datasets` and botocore then raise whatever their parsing hits first
(JSONDecodeError, KeyError, TypeError, OSError, an httpx error). `outbound_failure` turns any
exception raised inside those clients into one HubpressError that says what was asked, of whom, and
what came back; `hub_errors` (hubpress.targets.hub_calls) and the CLI's last resort use it. An
exception raised by hubpress's own code is left alone: it is a bug, and keeps its traceback.
"""

from __future__ import annotations

import os
import traceback

from hubpress.errors import DISK_ERRNOS, HubpressError, PublishError, hide_userinfo

# The clients whose exceptions mean "the other side answered something unusable" (or went away).
CLIENT_PACKAGES = (
    "huggingface_hub",
    "datasets",
    "httpx2",
    "httpcore2",
    "botocore",
    "s3transfer",
    "fsspec",
    "h11",
)


class HubAnswerUnusable(PublishError):
    """A remote's answer could not be used: malformed, truncated, too large, or an unexpected status."""


class RemoteUnreachable(PublishError):
    """A remote could not be reached, or stopped answering, through every retry."""


def _raised_in_client(exc: BaseException) -> bool:
    """True when, of the frames `exc` (or an exception it was raised `from`) passed through, the
    innermost one that belongs to hubpress or to a client lies in a client package: the remote's
    answer, not hubpress's code, made it (standard-library frames, such as json's, do not count)."""
    seen = 0
    while exc is not None and seen < 8:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            parts = frame.filename.split(os.sep)
            if any(package in parts for package in CLIENT_PACKAGES):
                return True
            if "hubpress" in parts or "tests" in parts:
                break
        exc = exc.__cause__  # not __context__: a bug while handling a client's error is still a bug
        seen += 1
    return False


def short_reason(exc: BaseException) -> str:
    """What a client said of a failure, as one shortened line, without any credential the remote
    repeated or a URL in it carried."""
    text = " ".join(hide_userinfo(str(exc)).split())
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def outbound_failure(
    exc: BaseException, action: str = "talk to", where: str = "a remote"
) -> HubpressError | None:
    """The one-line error for an exception a remote's answer caused, or None when `exc` is hubpress's
    own (a HubpressError already, a full disk, or raised by hubpress's code)."""
    if isinstance(exc, HubpressError):
        return None
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return None
    if not _raised_in_client(exc):
        return None
    from hubpress.deadlines import url_without_secrets

    status = getattr(getattr(exc, "response", None), "status_code", None)
    url = None
    try:  # httpx raises RuntimeError (not AttributeError) when an error carries no request
        url = getattr(getattr(exc, "response", None), "url", None) or getattr(
            getattr(exc, "request", None), "url", None
        )
    except RuntimeError:
        pass
    if (local := aws_configuration_failure(exc)) is not None:
        return local
    from hubpress.storage.s3_refusals import s3_answer_failure

    if (s3_answer := s3_answer_failure(exc)) is not None:  # names the object the call was for
        return s3_answer
    if type(exc).__module__.startswith(("botocore", "s3transfer")):
        where = "S3" if where == "a remote" else where
        url = url or (getattr(exc, "kwargs", None) or {}).get("endpoint_url")
    whom = f" ({url_without_secrets(str(url))})" if url else ""
    name = type(exc).__name__
    if any(
        part in name for part in ("Connect", "Timeout", "Network", "ReadError", "WriteError")
    ) or isinstance(exc, ConnectionError | TimeoutError):
        return RemoteUnreachable(
            f"Could not {action} {where}{whom}: the connection failed or stalled ({short_reason(exc)}). "
            "Check the endpoint and the network, then run again."
        )
    if status is not None:
        return HubAnswerUnusable(
            f"Could not {action} {where}{whom}: the server answered HTTP {status} ({short_reason(exc)}). "
            "Check the name, the token and the endpoint, then run again."
        )
    what = short_reason(exc)
    return HubAnswerUnusable(
        f"Could not {action} {where}{whom}: its answer cannot be used ({what}). Check the endpoint "
        "(HF_ENDPOINT, HUBPRESS_HUB_ENDPOINT, HUBPRESS_S3_ENDPOINT_URL) and any proxy in between, then run again."
    )


# botocore's errors about this machine's AWS configuration (a profile, a config or credentials
# file, a region): raised before any request, so no remote's answer is to blame.
_AWS_CONFIGURATION_ERRORS = (
    "ProfileNotFound",
    "ConfigNotFound",
    "ConfigParseError",
    "InvalidConfigError",
    "PartialCredentialsError",
    "UnknownCredentialError",
    "NoRegionError",
)


def aws_configuration_failure(exc: BaseException) -> HubpressError | None:
    """The one-line error for botocore refusing this machine's AWS configuration, or None."""
    if not type(exc).__module__.startswith("botocore") or type(exc).__name__ not in _AWS_CONFIGURATION_ERRORS:
        return None
    from hubpress.errors import ConfigError

    return ConfigError(
        f"the AWS configuration of this machine cannot be used ({short_reason(exc)}): check AWS_PROFILE, "
        "AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE, or set HUBPRESS_AWS_ACCESS_KEY_ID and "
        "HUBPRESS_AWS_SECRET_ACCESS_KEY."
    )
