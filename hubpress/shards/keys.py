"""The shard key: one rule for every build (publish-dataset's shards and a refresh's).

A shard's bytes are a function of its plan: the options that shape bytes and the format (the
`header`), and its rows' content digests in order (`rows`). `shard_key` hashes exactly those, so
two plans with the same key write the same bytes, on any machine, and a shard is looked up by its
key in the target's manifest and the shard store (hubpress.shards.reuse) before it is built.
Each build says what its header and rows hold (hubpress.shards.shards for samples,
hubpress.refresh.shards for upstream rows); this module is how they become a key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

# One encoder for every row: the text of json.dumps(row, ensure_ascii=False), which builds an
# encoder per call (most of the key's cost at a million samples). Rows are plain lists, never
# circular, so the check for cycles is skipped.
_encode_row = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


def shard_key(header: list[Any], rows: Iterable[list[Any]]) -> str:
    """sha256 hex of the header, then each row, as JSON (one line each). Stable across processes
    and machines: JSON of plain values, with no hash seeds or object ids."""
    digest = hashlib.sha256()
    digest.update(json.dumps(header).encode())
    for row in rows:
        digest.update(b"\n" + _encode_row(row).encode())
    return digest.hexdigest()
