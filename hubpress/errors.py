"""Errors a user can act on: each says what went wrong, where, and what to do.

The CLI prints these as one or two lines (no traceback unless --debug) and exits 1 (2 for unusable
arguments, 3 when a commit was made and a later step failed).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

# scheme://user:password@ in any text: the user information of a URL
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]*@")


# Credentials a remote may repeat in the text it sends back (an error message echoing the request's
# Authorization header, say): an HTTP authorization value, a Hugging Face user or org token, an
# AWS access key id. Token-shaped, so they are found whoever wrote them into the text.
_CREDENTIALS = (
    (re.compile(r"\b([Bb]earer|BEARER|Basic|BASIC)(\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1\2***"),
    (re.compile(r"\b(hf_|api_org_)[A-Za-z0-9_]{16,}"), r"\1***"),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "***"),
)


def hide_userinfo(text: str) -> str:
    """`text` with the `user:password@` part of every URL in it replaced by `***@`, and every
    token-shaped credential (`Bearer ...`, `hf_...`, an AWS key id) by `***`: a message, a log line
    or a JSON value never shows credentials a URL carried or a remote repeated."""
    text = _USERINFO.sub(r"\1***@", text)
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    return text


class HubpressError(Exception):
    """Base of every error hubpress raises on purpose. `str()` is the message for a person, and
    never shows the credentials of a URL it names (error lines, --json, logs, artifacts)."""

    exit_code = 1

    def __str__(self) -> str:
        return hide_userinfo(super().__str__())


class ConfigError(HubpressError):
    """A setting, parameter or configuration file is unusable."""


class SettingsFileError(HubpressError):
    """The working directory's .env cannot be read as settings (exit 1: no option value is at fault)."""


class TargetIsInput(ConfigError):
    """The target is what the run reads (the source, an upstream, a folder holding either): the
    arguments cannot be used together, so the exit status is 2, as for any unusable argument."""

    exit_code = 2


class MissingTokenError(ConfigError):
    """A write was asked for, but no Hub token was found anywhere."""


class SourceError(HubpressError):
    """The dataset or training output cannot be read as asked."""


class UndecodableAtBuild(SourceError):
    """Images whose header validation accepted (`decode=False`) did not decode when the build read
    them. `problems` holds (FileRef, detail) pairs; publish-dataset records them and takes the
    intake again, which then reports them as full validation would have."""

    def __init__(self, problems: tuple = ()):
        self.problems = tuple(problems)
        names = ", ".join(ref.relpath for ref, _ in self.problems[:3])
        more = f" and {len(self.problems) - 3} more" if len(self.problems) > 3 else ""
        super().__init__(f"{len(self.problems)} image(s) could not be decoded: {names}{more}")

    def __reduce__(self):  # Dask and process pools send it back pickled
        return (type(self), (self.problems,))


class ValidationFailed(HubpressError):
    """`--on-error fail` tripped: the data has problems, nothing was built or uploaded."""


class HubLimitError(HubpressError):
    """The publish would break a Hub limit (files per folder, LFS files per commit, ...)."""


class PublishError(HubpressError):
    """Publishing failed after planning (conflict retries exhausted, verification mismatch, ...)."""


class HubAccessError(HubpressError):
    """The Hub refused the credentials (401/403). Never retried."""


class CommittedButFailed(PublishError):
    """A step after the commit (tagging, verifying) failed: the repo DID move. The message, the
    exit status (3) and `--json` name the commit, so a run never reports plain failure while the
    repo moved."""

    exit_code = 3

    def __init__(self, message: str, *, commit: str, commit_url: str | None, target: str):
        super().__init__(message)
        self.commit = commit
        self.commit_url = commit_url
        self.target = target


class DiskError(HubpressError):
    """A local disk hubpress writes to is full, read-only or not writable; the message names it."""


DISK_ERRNOS = frozenset({28, 30, 13, 122})  # ENOSPC, EROFS, EACCES, EDQUOT


def disk_error(exc: OSError, where: str) -> DiskError | None:
    """A DiskError for a full or read-only disk (naming the file, else `where`), or None."""
    if exc.errno not in DISK_ERRNOS:
        return None
    return DiskError(
        f"{exc.strerror or exc} writing {exc.filename or where}: free space there, or point "
        "HUBPRESS_STAGING / HUBPRESS_CACHE_DIR / HF_HOME (or the target) at a writable disk, then run again."
    )


@contextlib.contextmanager
def disk_errors(where: str) -> Iterator[None]:
    """Inside: a full or read-only disk becomes one DiskError naming `where` (the directory being
    written: a stage, a target), whatever the library's own message named."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        raise DiskError(
            f"{exc.strerror or 'cannot write'} while writing to {where}: free space there, or point "
            "HUBPRESS_STAGING (or the target) at a writable disk, then run again. Nothing was published."
        ) from None
