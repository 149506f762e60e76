"""What an S3 listing answer may name: keys under the prefix asked for, each once, ending.

ListObjectsV2 lists the keys under a prefix a page at a time, each key once. General purpose
buckets list them in ascending order, but S3 Express One Zone directory buckets (and some
S3-compatible stores) do not: order is not something a listing can be held to. An answer naming a
key outside the prefix (`other/x.bin` for `stage/`) is not the prefix's: cut to a relative path,
it named another object of it. A listing whose pages name a key again, each with a new
continuation token, or give empty truncated pages, would never end (botocore's paginator stops
only a token repeated at once).

While keys ascend none can repeat, so nothing is kept; from the first key that goes back (a
directory bucket's listing, or a loop), the keys seen from then on (and the one before) are kept,
and a key named again stops the listing: a loop is stopped in its second pass at most, and an
ascending listing of millions of keys costs no memory here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from hubpress.errors import SourceError

MAX_EMPTY_PAGES = 100  # consecutive truncated pages without a key


def checked_objects(
    pages: Iterable[dict[str, Any]], base: str, root: str
) -> Iterator[tuple[dict[str, Any], bool]]:
    """(object, whether its key is under `base`) for each object of the listing's pages; a
    SourceError, one line, when the listing names a key again or gives empty pages without end."""
    last, seen = "", None  # seen: only once a key went back (see the module's docstring)
    empty = 0
    for page in pages:
        empty = 0 if page.get("Contents") or not page.get("IsTruncated") else empty + 1
        if empty > MAX_EMPTY_PAGES:
            raise _never_ends(root, f"{empty} empty pages, each naming a next one")
        for obj in page.get("Contents", ()):
            key = obj["Key"]
            if not key.startswith(base):
                yield obj, False
                continue
            if seen is None:
                if key == last:
                    raise _never_ends(root, f"{key!r} named again")
                if key > last:
                    last = key
                else:  # not in ascending order: from here, the keys are kept
                    seen = {last, key}
            elif key in seen:
                raise _never_ends(root, f"{key!r} named again")
            else:
                seen.add(key)
            yield obj, True


def _never_ends(root: str, seen: str) -> SourceError:
    return SourceError(
        f"The S3 listing of {root} repeats itself ({seen}): a listing that names a key again would "
        "never end, so it was stopped. Check HUBPRESS_S3_ENDPOINT_URL and any proxy in between."
    )
