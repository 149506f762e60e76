"""The transport's rule for listings (hubpress.targets.listing_pages), on its own: a next link back
to any page of its listing (A -> B -> A, not only a page naming itself) or past the page bound is
refused when asked for, and reading the same listing again from its start is not a loop."""

from __future__ import annotations

import httpx2
import pytest

from hubpress.targets.listing_pages import ListingNeverEnds, PageChains

BASE = "http://hub.test/api/models/o/r/tree/main"


def page(chains: PageChains, url: str, following: str | None) -> None:
    """The transport's two calls for one request of `url` answered with `following` as next."""
    request = httpx2.Request("GET", url)
    chains.asking(request)
    headers = httpx2.Headers({"link": f'<{following}>; rel="next"'} if following else {})
    chains.answered(request, headers)


def test_a_listing_that_comes_back_to_an_earlier_page_is_refused_when_that_page_is_asked_for():
    chains = PageChains()
    page(chains, BASE, f"{BASE}?cursor=b")
    page(chains, f"{BASE}?cursor=b", f"{BASE}?cursor=c")
    page(chains, f"{BASE}?cursor=c", BASE)  # this page is still given to the caller
    with pytest.raises(ListingNeverEnds, match="twice"):
        page(chains, BASE, None)


def test_the_same_listing_read_again_from_its_start_is_not_a_loop():
    chains = PageChains()
    for _ in range(3):
        page(chains, BASE, f"{BASE}?cursor=b")
        page(chains, f"{BASE}?cursor=b", None)


def test_a_listing_without_end_stops_at_the_page_bound():
    chains = PageChains(max_pages=5)
    url = BASE
    with pytest.raises(ListingNeverEnds, match="past the 5 pages"):
        for n in range(10):
            page(chains, url, (url := f"{BASE}?cursor={n}"))
