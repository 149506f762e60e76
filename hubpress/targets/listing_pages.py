"""Listings that never end: every `Link: rel="next"` a Hub answer names, checked against the pages
of its own listing before huggingface_hub follows it.

huggingface_hub follows a listing's next link as named, and most of its listings (the files
`datasets` and HfFileSystem resolve for an upstream, a repo's commits, its files) read every page
before the caller sees one entry. A next link back to a page already read was followed forever,
the entries piling up in memory: a refresh read 200 pages of an upstream's one-file listing
before the looping proxy in front of it gave up. hubpress's transport (hubpress.targets.hub_http)
sees every answer, so it keeps, for each next link handed out, the pages of the listing it
continues: asking for a next link that names one of them again, or for a page past `MAX_PAGES`,
ends the call in one line (`ListingNeverEnds`) before the request is sent. The page that named
it is still given: a caller reading page by page (hubpress.targets.hub_commit looks for a lost
commit that way) may have found what it looks for there.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import httpx2

from hubpress.deadlines import url_without_secrets
from hubpress.targets.hub_failures import HubAnswerUnusable

# The Hub holds at most 100,000 files a repo (recommended) and lists 1,000 entries a tree page and
# 50 a commits page; a listing longer than this is not one the Hub gives.
MAX_PAGES = 10_000
# Next links remembered at once (listings read at the same time, each by its latest link).
REMEMBERED = 4096


class ListingNeverEnds(HubAnswerUnusable, httpx2.TransportError):
    """A listing's next page repeats one of its pages, or it goes on past MAX_PAGES. Not retried."""


def next_link(headers: Any) -> str | None:
    if "link" not in headers:
        return None
    url = (httpx2.Response(200, headers={"link": headers["link"]}).links.get("next") or {}).get("url")
    return _same_spelling(url) if url else None


def _same_spelling(url: str) -> str:
    """One spelling of a URL (percent-encoding, default port), so that a page named twice is
    recognised however each naming spelt it."""
    try:
        return str(httpx2.URL(url))
    except (httpx2.InvalidURL, ValueError, TypeError):
        return url


class PageChains:
    """For each next link handed out and not yet asked for: the pages of its listing so far; and
    the next links that would repeat their listing (or run past `max_pages`), refused when asked
    for. The page that names such a link is still given: a caller reading page by page, that
    stops once it has found what it looks for, never asks for the next one."""

    def __init__(self, remembered: int = REMEMBERED, max_pages: int = MAX_PAGES):
        self._lock = threading.Lock()
        self._pages: OrderedDict[str, set[str]] = OrderedDict()
        self._refused: OrderedDict[str, str] = OrderedDict()
        self.remembered, self.max_pages = remembered, max_pages

    def asking(self, request: httpx2.Request) -> None:
        """Raise ListingNeverEnds when `request` is for a next link that would never end."""
        with self._lock:
            said = self._refused.pop(_same_spelling(str(request.url)), None)
        if said is not None:
            raise ListingNeverEnds(said)

    def answered(self, request: httpx2.Request, headers: Any) -> None:
        """Note the next link the answer to `request` names, with the pages of its listing."""
        here = _same_spelling(str(request.url))
        following = next_link(headers)
        with self._lock:
            pages = self._pages.pop(here, None) or {here}  # a page some listing named as next
            if following is None:
                return
            if following in pages or len(pages) >= self.max_pages:
                self._refused[following] = _said(
                    here, following, len(pages), following in pages, self.max_pages
                )
                _bound(self._refused, self.remembered)
                return
            pages.add(following)
            self._pages[following] = pages
            _bound(self._pages, self.remembered)


def _bound(links: OrderedDict, remembered: int) -> None:
    while len(links) > remembered:
        links.popitem(last=False)


def _said(here: str, following: str, read: int, repeated: bool, max_pages: int) -> str:
    why = (
        f"a page it already read: read twice, it would never end ({read} page(s) read so far)"
        if repeated
        else f"page {read + 1} of it, past the {max_pages:,} pages hubpress reads of one listing"
    )
    return (
        f"{url_without_secrets(here)} named {url_without_secrets(following)[:200]!r} as the next page "
        f"of a listing, {why}, so hubpress stopped. Check the "
        "Hub endpoint (HUBPRESS_HUB_ENDPOINT, HF_ENDPOINT) and any proxy in between."
    )
