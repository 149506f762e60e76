"""The Prefect API a person configured must answer before a command relies on it.

Prefect finds out only when the flow run starts, after intake and the token check, and then
raises "Failed to reach API" under 130 lines of traceback. One TCP connection, before any work,
finds a server that is not running (stopped, a closed tunnel, a typo in the port) and says what to
do. Only the connection is tried: a Prefect Cloud workspace URL answers its own paths, not /health.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from hubpress.errors import ConfigError, hide_userinfo

CONNECT_TIMEOUT_S = 5.0


def where_it_came_from() -> str:
    return "PREFECT_API_URL" if os.environ.get("PREFECT_API_URL") else "the Prefect profile's PREFECT_API_URL"


def check_answers(url: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """ConfigError, in one line, when nothing accepts a connection at `url`'s host and port."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ConfigError(
            f"{where_it_came_from()} {hide_userinfo(url)} is not an http(s) URL with a host: "
            "set it to the server's API (http://HOST:PORT/api), or unset it to use hubpress's local server."
        )
    proxy = _proxy_for(parts.scheme, parts.hostname)
    try:
        socket.create_connection(proxy[1:] if proxy else (parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        through = f", through the proxy {hide_userinfo(proxy[0])}," if proxy else ""
        raise ConfigError(
            f"Nothing answers at {where_it_came_from()} {hide_userinfo(url).removesuffix('/api')}{through} "
            f"({reason}): start that Prefect server, or unset PREFECT_API_URL to use hubpress's local "
            "server (`hubpress server start`)."
        ) from None
    if _not_an_api(url, timeout):
        shown = hide_userinfo(url).rstrip("/")
        raise ConfigError(
            f"{where_it_came_from()} {shown} is a server but not its Prefect API (HTTP 404 for /admin/version): "
            f"the API's URL ends in /api, as {shown}/api (the UI's address is without it)."
        )


def _proxy_for(scheme: str, host: str) -> tuple[str, str, int] | None:
    """(the proxy URL, its host, its port) when the environment sends `scheme://host` through a
    proxy (HTTP(S)_PROXY, ALL_PROXY, not bypassed by NO_PROXY), as Prefect's client (httpx) does:
    behind one the API's host is often not reachable, or not even resolvable, directly."""
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass_environment(host, proxies):
        return None
    where = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        port = where.port or (443 if where.scheme == "https" else 80)
    except ValueError:
        return None
    return (proxy, where.hostname, port) if where.hostname else None


def _not_an_api(url: str, timeout: float) -> bool:
    """The server answers 404 where a Prefect API answers its version: most often the UI's address
    (`http://127.0.0.1:4200`, copied from the browser) given for the API's. Prefect would fail there
    after the intake with "Failed to reach API" under its traceback. Prefect Cloud is not asked (its
    client skips that question too), and any other answer is left to Prefect."""
    import httpx2 as httpx  # huggingface_hub's client, loaded already on the no-op path

    if "api.prefect.cloud" in url:
        return False
    try:
        return httpx.get(f"{url.rstrip('/')}/admin/version", timeout=timeout).status_code == 404
    except httpx.HTTPError:
        return False
