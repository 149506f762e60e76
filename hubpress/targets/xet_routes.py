"""Where a Hub's resolve answer sends huggingface_hub for a Xet read token, checked before it goes.

huggingface_hub downloads a Xet-backed file by asking the URL that file's resolve answer names
(the `X-Xet-Refresh-Route` header, or the `Link` of rel `xet-auth`) for a read token, and it sends
that request with the download's own headers: the user's token among them. A Hub, or anything
answering in its place, that names another host there is sent the token. So the route must be on
the origin of the request whose answer named it (or on huggingface.co, which huggingface_hub
rewrites to the endpoint it talks to); anything else ends the download in one line
(`XetRouteRefused`), before huggingface_hub reads the answer. Called from hubpress's transport
(hubpress.targets.hub_http), which every huggingface_hub request goes through.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx2

from hubpress.deadlines import url_without_secrets
from hubpress.targets.hub_failures import HubAnswerUnusable

ROUTE_HEADER = "x-xet-refresh-route"
ROUTE_LINK = "xet-auth"
REWRITTEN = "https://huggingface.co/"  # huggingface_hub puts its endpoint in place of this


class XetRouteRefused(HubAnswerUnusable, httpx2.TransportError):
    """A resolve answer sent the Xet token request to another host. Not retried: the answer is the fault."""


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def named_routes(headers: Any) -> list[str]:
    """The Xet token routes an answer's headers name (huggingface_hub takes the Link's first)."""
    routes = [headers[ROUTE_HEADER]] if ROUTE_HEADER in headers else []
    if ROUTE_LINK in headers.get("link", ""):
        link = httpx2.Response(200, headers={"link": headers["link"]}).links.get(ROUTE_LINK)
        routes += [link["url"]] if link and link.get("url") is not None else []
    return routes


def check_xet_token_route(request: httpx2.Request, headers: Any) -> None:
    """Raise XetRouteRefused when the answer to `request` names a Xet token route off its origin."""
    here = _origin(str(request.url))
    for route in named_routes(headers):
        if route.startswith(REWRITTEN) or (here is not None and _origin(route) == here):
            continue
        shown = url_without_secrets(route) if "://" in route else route[:80]
        raise XetRouteRefused(
            f"{url_without_secrets(str(request.url))} named {shown!r} as the place to ask for a Xet "
            "read token, which is not the Hub's own address: huggingface_hub would send it the "
            "token, so hubpress stopped the download. Check the Hub endpoint (HUBPRESS_HUB_ENDPOINT, "
            "HF_ENDPOINT) and any proxy in between."
        )
