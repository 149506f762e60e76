"""Discovery finds the names that are not plain a chunk at a time (discovery._not_plain_at: one
match of the chunk's names joined by NULs, then one by one in a chunk that fails): the same
positions as PLAIN_PATH name by name, for any names, NULs, empty and non-UTF-8 ones included."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.sources import discovery
from hubpress.storage.names import PLAIN_PATH

names = st.lists(
    st.sampled_from(
        ["train/a.png", "a", "train/b_c-d.JPG", ".hidden", "a b", "", "x\x00y", "é.png", "a//b", "\udcff"]
    )
    | st.text(max_size=6),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(names, st.integers(1, 5))
def test_names_not_plain_are_found_at_once_as_one_by_one(relpaths, at_once):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(discovery, "_PLAIN_AT_ONCE", at_once)
        found = discovery._not_plain_at(relpaths)
    assert found == [n for n, rel in enumerate(relpaths) if not PLAIN_PATH.fullmatch(rel)]
