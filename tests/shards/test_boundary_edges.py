"""Changes at the edges of a split touch as few shards as the boundary rule allows: ids appended
after every existing one and ids inserted before the first re-cut at most two shards' worth of
what was published, and the last shard stays bounded however many nights append to it
(hubpress.shards.boundaries, at the default rule: 500 MB shards, 62.5 MB minimum)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubpress.shards.boundaries import ShardBounds, cut_rows
from hubpress.shards.shards import plan_shards
from tests.shard_helpers import fake_sample

DEFAULT = ShardBounds()
Row = tuple[str, int]


def shards_of(rows: list[Row], bounds: ShardBounds = DEFAULT) -> list[tuple[Row, ...]]:
    out: list[tuple[Row, ...]] = []
    current: list[Row] = []
    for group, ends in cut_rows(rows, bounds, key=lambda r: r[0].encode(), size=lambda r: r[1]):
        current += group
        if ends:
            out.append(tuple(current))
            current = []
    return out


def nbytes(shard: tuple[Row, ...]) -> int:
    return sum(size for _, size in shard)


def resent(before: list[tuple[Row, ...]], after: list[tuple[Row, ...]]) -> int:
    """Bytes of published shards that the new plan does not keep as they are (they are re-sent)."""
    kept = set(after)
    return sum(nbytes(shard) for shard in before if shard not in kept)


def dataset(seed: int, count: int, mean: int) -> list[Row]:
    """`count` samples with random ids and sizes around `mean` (75% to 125% of it), ordered by id."""
    rng = random.Random(seed)
    return sorted(
        (f"m{rng.getrandbits(64):016x}", rng.randint(mean * 3 // 4, mean * 5 // 4)) for _ in range(count)
    )


def new_rows(prefix: str, seed: int, count: int, mean: int) -> list[Row]:
    rng = random.Random(seed)
    return [(f"{prefix}{seed:08x}{i:06d}", rng.randint(mean * 3 // 4, mean * 5 // 4)) for i in range(count)]


# About 25 shards of 200 KB samples at the default rule (5 GB): enough edges and interiors.
SAMPLES = 25_000
MEAN = 200_000


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), added=st.integers(1, 1_000))
def test_appends_and_inserts_before_the_first_id_touch_at_most_two_shards(seed, added):
    rows = dataset(seed, SAMPLES, MEAN)
    before = shards_of(rows)
    assert len(before) > 10
    appended = shards_of(rows + new_rows("z", seed, added, MEAN))  # "z" sorts after "m..."
    prepended = shards_of(new_rows("a", seed, added, MEAN) + rows)  # "a" sorts before
    both = shards_of(
        new_rows("a", seed, added // 2, MEAN) + rows + new_rows("z", seed, added - added // 2, MEAN)
    )
    limit = 2 * DEFAULT.max_shard_size
    assert resent(before, appended) <= limit
    assert resent(before, prepended) <= limit
    assert resent(before, both) <= 2 * limit  # two edges, each at most two shards
    # Only the edges move: every shard away from them comes out again, row for row.
    assert set(before[:-3]) <= set(appended)
    assert set(before[3:]) <= set(prepended)
    for plan in (before, appended, prepended, both):
        assert all(nbytes(shard) <= DEFAULT.max_shard_size for shard in plan)


@settings(max_examples=3, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_nightly_appends_never_grow_an_ever_larger_last_shard(seed):
    """Thirty nights, each appending 1% of the data after every existing id: each night re-sends at
    most one shard's worth of what was published, and the last shard never passes the maximum."""
    rows = dataset(seed, SAMPLES, MEAN)
    published = shards_of(rows)
    for night in range(30):
        rows = rows + new_rows(f"z{night:03d}", seed, SAMPLES // 100, MEAN)
        plan = shards_of(rows)
        assert resent(published, plan) <= DEFAULT.max_shard_size
        assert nbytes(plan[-1]) <= DEFAULT.max_shard_size
        assert all(nbytes(shard) <= DEFAULT.max_shard_size for shard in plan)
        published = plan


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), at=st.floats(0.0, 1.0), added=st.integers(1, 200))
def test_an_insert_anywhere_touches_its_shard_and_at_most_the_next(seed, at, added):
    """The rule the edges rely on, anywhere in the split: rows inserted between two published
    shards' rows change the shards around them and nothing further, and cuts at the maximum
    do not ripple (they did before shard format 4)."""
    bounds = ShardBounds.of("20MB")
    rows = dataset(seed, 3_000, 65_000)
    before = shards_of(rows, bounds)
    index = int(at * len(rows))
    after = shards_of(
        rows[:index] + new_rows(rows[index - 1][0] if index else "a", seed, added, 65_000) + rows[index:],
        bounds,
    )
    assert resent(before, after) <= 2 * bounds.max_shard_size


def test_publish_dataset_plans_keep_all_but_the_edge_shards_when_ids_arrive_at_both_ends():
    """Through plan_shards (what publish-dataset plans): 1% new samples, half sorting before
    every existing id and half after, keep every published shard name but at most two at each end."""
    samples = [fake_sample(f"m{i:05d}", size=60_000 + (i * 7919) % 20_000) for i in range(2_000)]
    before = plan_shards("train", samples, "20MB")
    assert len(before) >= 8
    grown = [fake_sample(f"a{i:03d}", 70_000) for i in range(10)] + samples
    grown += [fake_sample(f"z{i:03d}", 70_000) for i in range(10)]
    after = plan_shards("train", grown, "20MB")
    lost = [plan for plan in before if plan.name not in {p.name for p in after}]
    assert len(lost) <= 4
    assert all(plan in before[:2] + before[-2:] for plan in lost)
    assert after[-1].estimated_size <= 20_000_000
