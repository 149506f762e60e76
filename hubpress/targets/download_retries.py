"""A Hub download whose bytes live on another host (the resolve answer redirects to a CDN or a
storage bucket): when that host cannot be reached, the one line names it, not the Hub, and
huggingface_hub's own per-retry warnings stay off the terminal."""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

from hubpress.deadlines import url_without_secrets

# huggingface_hub.file_download logs one warning per retry of a download ("Error while downloading
# from <url>: ... Trying to resume download..."), five or six of them before it gives up; the URL is
# the resolve URL, not the host that failed. hubpress retries too and says the outcome in one line.
_HF_DOWNLOAD_LOGGER = "huggingface_hub.file_download"
_RESUME_CHATTER = "Error while downloading from"


class _NoResumeChatter(logging.Filter):
    """Drops huggingface_hub's per-retry download warnings (kept with HUBPRESS_DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(_RESUME_CHATTER):
            return True
        if not os.environ.get("HUBPRESS_DEBUG"):
            return False
        # Kept for --debug, without the query string a signed URL carries.
        record.args = tuple(url_without_secrets(a) if i == 0 else a for i, a in enumerate(record.args or ()))
        return True


_FILTER = _NoResumeChatter()


def quiet_resume_chatter() -> None:
    """Install the filter on huggingface_hub's download logger (once: adding it again is a no-op)."""
    logging.getLogger(_HF_DOWNLOAD_LOGGER).addFilter(_FILTER)


def redirected_to(exc: BaseException, endpoint: str) -> str | None:
    """The host a failed request was sent to when it is not the Hub's own (a redirect led there),
    as scheme://host:port/path without user, password or query; None when it was the Hub."""
    try:  # httpx raises RuntimeError (not AttributeError) when an error carries no request
        url = getattr(getattr(exc, "request", None), "url", None)
    except RuntimeError:
        return None
    if url is None:
        return None
    failed, hub = urlsplit(str(url)), urlsplit(endpoint)
    if (failed.hostname, failed.port) == (hub.hostname, hub.port):
        return None
    return url_without_secrets(str(url))


def unreachable_line(action: str, endpoint: str, reason: str, exc: BaseException) -> str:
    """`Could not <action>: <who> <reason>`, with what to check: the Hub's endpoint, or the host
    its redirect named."""
    elsewhere = redirected_to(exc, endpoint)
    if elsewhere is None:
        return (
            f"Could not {action}: the Hub at {endpoint} {reason}. Check HF_ENDPOINT "
            "(or HUBPRESS_HUB_ENDPOINT) and the network, then run again."
        )
    return (
        f"Could not {action}: the Hub at {endpoint} redirected the download to {elsewhere}, which {reason}. "
        "The Hub serves the file from that host: check that this machine can reach it (network, proxy, "
        "firewall), then run again."
    )
