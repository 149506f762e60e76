"""Errors the server answers with: an HTTP status plus the X-Error-Code the Hub sends, so that
huggingface_hub's hf_raise_for_status maps each one to the same exception class as on the Hub."""

from __future__ import annotations


class HubError(Exception):
    status = 400
    code: str | None = None

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}  # extra response headers, e.g. X-Repo-Commit on a missing file


class BadRequest(HubError):
    status = 400


class Unauthorized(HubError):
    status = 401


class Forbidden(HubError):
    status = 403


class RepoNotFound(HubError):
    status = 404
    code = "RepoNotFound"


class RevisionNotFound(HubError):
    status = 404
    code = "RevisionNotFound"


class EntryNotFound(HubError):
    status = 404
    code = "EntryNotFound"


class NotFound(HubError):
    status = 404


class Conflict(HubError):
    status = 409


class PreconditionFailed(HubError):
    status = 412


class PayloadTooLarge(HubError):
    status = 413


class RangeNotSatisfiable(HubError):
    status = 416


class Unprocessable(HubError):
    status = 422
