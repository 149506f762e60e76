"""Sizes and bounds every build shares: human sizes ("500MB") read once, the default shard and
row-group bounds, and the split-name rule."""

from __future__ import annotations

import re

from hubpress.errors import ConfigError

DEFAULT_MAX_SHARD_SIZE = 500 * 1000**2  # datasets' own default, "500MB"
# Row groups are viewer-sized; a row group of large images is also cut by bytes, so memory stays
# bounded whatever the images.
DEFAULT_ROW_GROUP_ROWS = 100
DEFAULT_ROW_GROUP_BYTES = 32 * 1024**2

_SPLIT_NAME = re.compile(r"^\w+(\.\w+)*$")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_size(value: int | str) -> int:
    """Bytes from an int or a human size: "500MB" (decimal, as datasets reads it), "1GiB", "2 gb"."""
    if isinstance(value, bool):
        raise ConfigError(f"{value!r} is not a size: use bytes or a size such as '500MB' or '1GB'.")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        unit = (match.group(2) or "").lower() if match else None
        if match is None or unit not in _UNITS:
            raise ConfigError(f"{value!r} is not a size: use bytes or a size such as '500MB' or '1GB'.")
        size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise ConfigError(f"{value!r} is not a usable size: it must be more than 0 bytes.")
    return size


def check_split_name(split: str) -> str:
    if not _SPLIT_NAME.match(split):
        raise ConfigError(
            f"Split name {split!r} cannot be published: use letters, digits and underscores "
            "(dots between words are allowed), e.g. 'train' or 'test'."
        )
    return split
