"""listing_digest hashes its lines in batches: the digest is the one of a line per update."""

from __future__ import annotations

import hashlib
import json

import hubpress
from hubpress.shards.published import LINES_PER_UPDATE, RECORD_FORMAT, listing_digest
from hubpress.storage.files import ListedFile


def _line_by_line(listing: list[ListedFile], options: dict) -> str:
    """The digest as one update per file, in relpath order (how it was first written)."""
    digest = hashlib.sha256()
    head = ["hubpress-listing", RECORD_FORMAT, hubpress.__version__, dict(options)]
    digest.update(json.dumps(head, sort_keys=True, default=str).encode() + b"\n")
    for lf in sorted(listing, key=lambda lf: lf.relpath):
        line = f"{lf.relpath}\0{lf.size}\0{lf.version}\0{lf.inode}\n"
        digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


def test_digest_over_several_batches_equals_a_line_per_update():
    count = 2 * LINES_PER_UPDATE + 7
    listing = [ListedFile(f"train/{n:06d}.png", n, f"{n}+{n}", n) for n in reversed(range(count))]
    listing.append(ListedFile("train/caf\udce9.png", 3, "etag-1"))  # not UTF-8: surrogate-escaped
    options = {"max_shard_size": "500MB"}
    assert listing_digest(listing, options) == _line_by_line(listing, options)
    assert listing_digest(listing[:3], options) == _line_by_line(listing[:3], options)
    assert listing_digest([], options) == _line_by_line([], options)
    changed = [*listing[:-1], ListedFile("train/caf\udce9.png", 4, "etag-1")]
    assert listing_digest(changed, options) != listing_digest(listing, options)
