"""Errors a user can act on: each says what went wrong, where, and what to do.

The CLI prints these as one or two lines (no traceback unless --debug) and exits 1.
"""

from __future__ import annotations


class HubpressError(Exception):
    """Base of every error hubpress raises on purpose. `str()` is the message for a person."""

    exit_code = 1


class ConfigError(HubpressError):
    """A setting, parameter or configuration file is unusable."""


class MissingTokenError(ConfigError):
    """A write was asked for, but no Hub token was found anywhere."""


class SourceError(HubpressError):
    """The dataset or training output cannot be read as asked."""


class ValidationFailed(HubpressError):
    """`--on-error fail` tripped: the data has problems, nothing was built or uploaded."""


class HubLimitError(HubpressError):
    """The publish would break a Hub limit (files per folder, LFS files per commit, ...)."""


class PublishError(HubpressError):
    """Publishing failed after planning (conflict retries exhausted, verification mismatch, ...)."""


class HubAccessError(HubpressError):
    """The Hub refused the credentials (401/403). Never retried."""
