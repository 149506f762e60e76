"""Links a Hub answer names that huggingface_hub then asks with the token: checked before it goes.

huggingface_hub follows some links an answer gives with the request's own headers, the user's
token among them:

- a Xet-backed file's resolve answer names where to ask for a read token (the
  `X-Xet-Refresh-Route` header, or the `Link` of rel `xet-auth`);
- a listing page names the next one (the `Link` of rel `next`).

A Hub, or anything answering in its place, naming another host there is sent the token. So each
such link must be on the origin of the request whose answer named it (a Xet token route may also
be on huggingface.co, which huggingface_hub rewrites to the endpoint it talks to; a next page it
follows as named); anything else ends the call in one line
(`TokenLinkRefused`) before huggingface_hub reads the answer. Called from hubpress's transport
(hubpress.targets.hub_http), which every huggingface_hub request goes through. (The LFS batch
answer's verify link is in its body: hubpress.targets.hub_upload.check_verify_link.)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx2

from hubpress.deadlines import url_without_secrets
from hubpress.targets.hub_failures import HubAnswerUnusable

ROUTE_HEADER = "x-xet-refresh-route"
# rel -> what the link is for, as the one line says it
XET_ROUTE, NEXT_PAGE = "the place to ask for a Xet read token", "the next page of a listing"
FOLLOWED_LINKS = {"xet-auth": XET_ROUTE, "next": NEXT_PAGE}
REWRITTEN = "https://huggingface.co/"  # in a Xet token route, huggingface_hub puts its endpoint here


class TokenLinkRefused(HubAnswerUnusable, httpx2.TransportError):
    """An answer sent a request carrying the token to another host. Not retried: the answer is the fault."""


def origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an http(s) URL, or None for anything else (a scheme-less `//x`)."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def followed_links(headers: Any) -> list[tuple[str, str]]:
    """(what it is for, URL) of each link in an answer's headers that huggingface_hub follows with
    the token."""
    links = [(XET_ROUTE, headers[ROUTE_HEADER])] if ROUTE_HEADER in headers else []
    if "link" in headers:
        parsed = httpx2.Response(200, headers={"link": headers["link"]}).links
        for rel, what in FOLLOWED_LINKS.items():
            url = (parsed.get(rel) or {}).get("url")
            links += [(what, url)] if url is not None else []
    return links


def check_token_links(request: httpx2.Request, headers: Any) -> None:
    """Raise TokenLinkRefused when the answer to `request` names a followed link off its origin."""
    here = origin(str(request.url))
    for what, url in followed_links(headers):
        if (what == XET_ROUTE and url.startswith(REWRITTEN)) or (here is not None and origin(url) == here):
            continue
        shown = url_without_secrets(url) if "://" in url else url[:80]
        raise TokenLinkRefused(
            f"{url_without_secrets(str(request.url))} named {shown[:200]!r} as {what}, which is not the "
            "Hub's own address: huggingface_hub would send it the token, so hubpress stopped. Check the "
            "Hub endpoint (HUBPRESS_HUB_ENDPOINT, HF_ENDPOINT) and any proxy in between."
        )
