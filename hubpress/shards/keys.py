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
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any


def json_encoder(**options: Any) -> Callable[[Any], str]:
    """`json.JSONEncoder(check_circular=False, **options).encode`, for values that are never
    circular, with json's C encoder made once: `encode` makes it anew at every call, which was a
    third of the cost of a sample's key or digest at a million samples. The same text (checked
    against `encode` here, which is used instead where json has no C encoder)."""
    encoder = json.JSONEncoder(check_circular=False, **options)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    strings = json.encoder.encode_basestring_ascii if encoder.ensure_ascii else json.encoder.encode_basestring
    made = make(
        None,
        encoder.default,
        strings,
        None,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )

    def encode(value: Any) -> str:
        return "".join(made(value, 0))

    probe = [1, "é\x7f\n", None, True, 1.5, {"b": [2, -3], "a": "x"}, [], {}]
    try:
        same = encode(probe) == encoder.encode(probe)
    except Exception:
        same = False
    return encode if same else encoder.encode


# One encoder for every row: the text of json.dumps(row, ensure_ascii=False). Rows are plain lists.
encode_row = json_encoder(ensure_ascii=False)


# A str's JSON text as encode_row writes it (not ASCII-only), for code that writes a row's text
# itself (hubpress.shards.shards, hubpress.shards.fingerprint).
json_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


@lru_cache(maxsize=256)  # formats are a handful a dataset, but any string may be given
def format_json_string(fmt: str) -> str:
    """json_string(fmt), remembered: an image format's text is written for every file."""
    return json_string(fmt)


def shard_header(header: list[Any]) -> bytes:
    """What a shard key hashes first: the header as JSON."""
    return json.dumps(header).encode()


def shard_key(header: list[Any], rows: Iterable[list[Any]]) -> str:
    """sha256 hex of the header, then each row, as JSON (one line each). Stable across processes
    and machines: JSON of plain values, with no hash seeds or object ids. A build that writes its
    rows' text itself (hubpress.shards.shards) hashes shard_header and then, for each row, a
    newline and encode_row(row)'s text, as this does."""
    digest = hashlib.sha256()
    digest.update(shard_header(header))
    for row in rows:
        digest.update(b"\n" + encode_row(row).encode())
    return digest.hexdigest()
