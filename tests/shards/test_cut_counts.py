"""`cut_counts` (the samples' shard plans) cuts rows exactly as `cut_rows` (every build's rule)
does: the same shards, the same row groups in each, and each shard's bytes the sum of its rows'
sizes. Property tests with hypothesis, over bounds small enough that every branch is taken (a
shard cut at its maximum, a candidate too close to the one before it, a row group full by rows
or by bytes, a row larger than a shard)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.shards.boundaries import ShardBounds, cut_counts, cut_rows

# Small sizes as well as larger ones: a candidate exactly `min_shard_size` after the one before it.
_rows = st.lists(
    st.tuples(st.binary(min_size=0, max_size=6), st.integers(0, 6) | st.integers(0, 400)),
    max_size=200,
)


@st.composite
def _bounds(draw) -> ShardBounds:
    max_size = draw(st.integers(1, 3000))
    min_size = draw(st.integers(0, min(max_size, 6)) | st.integers(0, max_size))
    return ShardBounds(max_size, min_size, draw(st.integers(1, 12)), draw(st.integers(1, 900)))


def _by_cut_rows(rows, bounds):
    shards, groups, size = [], [], 0
    for group, ends in cut_rows(rows, bounds, key=lambda r: r[0], size=lambda r: r[1]):
        groups.append(len(group))
        size += sum(r[1] for r in group)
        if ends:
            shards.append((tuple(groups), size))
            groups, size = [], 0
    assert not groups
    return shards


@settings(max_examples=400, deadline=None)
@given(_rows, _bounds())
def test_cut_counts_cuts_as_cut_rows(rows, bounds):
    counted = cut_counts((key for key, _ in rows), (size for _, size in rows), bounds)
    assert counted == _by_cut_rows(rows, bounds)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 10**6), min_size=1, max_size=300))
def test_cut_counts_at_the_default_bounds(sizes):
    rows = [(f"s{n:05d}".encode(), size * 1000) for n, size in enumerate(sizes)]
    bounds = ShardBounds.of("20MB")
    assert cut_counts((k for k, _ in rows), (s for _, s in rows), bounds) == _by_cut_rows(rows, bounds)
