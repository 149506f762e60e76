"""detect_layout stops reading the listing once both a split folder and a split CSV are seen: the
same answer as reading every name (the rule as it was written before, kept here as the reference)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.errors import SourceError
from hubpress.sources.discovery import detect_layout

NAMES = ["train.csv", "test.csv", "train/a.png", "test/b/c.png", "train", "x/train.csv", "trainx/a", "a.csv"]


def reference(relpaths, requested):
    has_csv = has_dirs = False
    for rel in relpaths:
        top, slash, _ = rel.partition("/")
        if not slash and top in ("train.csv", "test.csv"):
            has_csv = True
        elif slash and top in ("train", "test"):
            has_dirs = True
    if requested == "csv":
        return "csv" if has_csv else SourceError
    if requested == "folder":
        return "folder" if has_dirs else SourceError
    return "csv" if has_csv else "folder" if has_dirs else SourceError


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(NAMES), max_size=8), st.sampled_from(["auto", "csv", "folder"]))
def test_the_early_stop_gives_the_full_reading(relpaths, requested):
    expected = reference(relpaths, requested)
    if expected is SourceError:
        with pytest.raises(SourceError):
            detect_layout(iter(relpaths), requested)
    else:
        assert detect_layout(iter(relpaths), requested) == expected
