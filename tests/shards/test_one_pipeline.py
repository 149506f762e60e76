"""publish-dataset and refresh are one pipeline from their rows on: the same boundary rule, the
same row-group bounds and the same parquet writer (hubpress.shards.boundaries, hubpress.shards.parquet)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from hubpress.refresh.config import parse_refresh_config
from hubpress.refresh.lineage import RefreshOptions, config_fingerprint, stage_fingerprint
from hubpress.refresh.publish import build_refresh, row_key, row_size, shard_row_groups
from hubpress.settings import get_settings
from hubpress.shards.boundaries import ShardBounds, cut_rows
from hubpress.shards.shards import plan_shards, sample_key, write_shard
from hubpress.shards.sizes import DEFAULT_ROW_GROUP_ROWS
from hubpress.shards.staging import Staging
from tests.shard_helpers import fake_sample, make_sample

ROOT = Path(__file__).resolve().parents[2]


def test_parquet_writer_lives_in_exactly_one_product_module():
    users = sorted(
        path.relative_to(ROOT).as_posix()
        for folder in ("hubpress", "flows", "tasks", "deployments")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"\bParquetWriter\b", path.read_text(encoding="utf-8"))
    )
    assert users == ["hubpress/shards/parquet.py"]


def _cuts(groups) -> list[tuple[list[str], bool]]:
    return [([key for key in group], ends) for group, ends in groups]


def test_both_sources_cut_the_same_rows_at_the_same_places():
    """Rows with the same keys and sizes, once as samples and once as refreshed rows: the shard
    ends and the row groups come out identical, including cuts at the maximum."""
    sizes = [500 + (i * 7919) % 4000 for i in range(6000)]
    sizes[3000] = 3_000_000  # larger than the maximum: a shard of its own
    samples = []
    rows = []
    for i, size in enumerate(sizes):
        index = 100_000 + i  # sample ids sort as the refresh's rows are ordered
        sample = fake_sample(f":{index}", size=size)
        samples.append(sample)
        text = len(sample.id.encode()) + len(sample.prompt.encode())
        rows.append({"source_index": index, "image": {"bytes": b"x" * (size + text), "path": None}})
        assert row_key(rows[-1]) == sample_key(sample)
        assert row_size(rows[-1]) == sum(r.size for r in sample.images()) + text + 128

    plans = plan_shards("train", samples, "2MB", row_group_rows=DEFAULT_ROW_GROUP_ROWS)
    from_samples = []
    for plan in plans:
        groups = plan.groups()
        for n, group in enumerate(groups):
            from_samples.append(([s.id for s in group], n == len(groups) - 1))
    from_rows = [
        ([f":{row['source_index']}" for row in group], ends)
        for group, ends in shard_row_groups(rows, 2_000_000)
    ]
    assert len(plans) > 8 and any(p.samples == (samples[3000],) for p in plans)
    assert any(len(group) > 1 and not ends for group, ends in from_rows)  # row groups inside shards
    assert from_samples == from_rows
    # ... and both are the shared rule itself.
    bounds = ShardBounds.of(2_000_000)
    shared = cut_rows(rows, bounds, row_key, row_size)
    assert _cuts(([f":{r['source_index']}" for r in g], e) for g, e in shared) == from_rows


def _png(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (10, 14, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _footer(path: str) -> tuple[list[int], dict[bytes, bytes]]:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)], meta.metadata


def test_both_sources_write_through_the_one_writer(tmp_path):
    """130 rows from a local tree (publish-dataset) and 130 rows from a local refresh backend:
    both shards hold row groups of 100 and 30 rows, carry the Hugging Face features and the
    content-defined chunking options datasets records, and are named by content."""
    count = 130
    samples = [make_sample(tmp_path / "src", f"s{i:03d}", target=False) for i in range(count)]
    (plan,) = plan_shards("train", samples, "500MB")
    published = write_shard(plan, tmp_path / "out")

    folder = tmp_path / "upstream"
    folder.mkdir()
    for i in range(count):
        _png(folder / f"img{i:03d}.png", i)
        (folder / f"img{i:03d}.txt").write_text(f"caption {i}")
    config = parse_refresh_config({"id": "local", "type": "local", "instance_data_dir": str(folder)})
    options = RefreshOptions(target=str(tmp_path / "target"))
    revisions = {"local": "fixed"}
    config_fp = config_fingerprint(config, options)
    stage_fp = stage_fingerprint(revisions, config_fp, options.seed)
    settings = get_settings({"staging": str(tmp_path / "stage"), "cache_dir": str(tmp_path / "cache")})
    refreshed = build_refresh(config, options, revisions, config_fp, stage_fp, Staging(None, settings), None)
    (refresh_shard,) = [f for f in refreshed.files if f.path.endswith(".parquet")]

    groups_a, meta_a = _footer(published.local_path)
    groups_b, meta_b = _footer(refresh_shard.source)
    assert groups_a == groups_b == [DEFAULT_ROW_GROUP_ROWS, count - DEFAULT_ROW_GROUP_ROWS]
    assert meta_a[b"content_defined_chunking"] == meta_b[b"content_defined_chunking"]
    assert b"huggingface" in meta_a and b"huggingface" in meta_b
    assert re.fullmatch(r"data/train-[0-9a-f]{16}\.parquet", published.path_in_repo)
    # Both are named by their plan's key (hubpress.shards.keys), known before they are built.
    assert re.fullmatch(r"data/train-[0-9a-f]{16}\.parquet", refresh_shard.path)
    assert refresh_shard.path != f"data/train-{refresh_shard.sha256[:16]}.parquet"
    # Image bytes carry no min/max statistics (they cost most of a shard's write time and prune
    # nothing); the text columns keep theirs.
    for path in (published.local_path, refresh_shard.source):
        stats = _statistics_by_column(path)
        media = {name for name in stats if name.endswith(".bytes")}
        assert media and not any(stats[name] for name in media), stats
        assert stats["id" if path == published.local_path else "caption"], stats


def _statistics_by_column(path: str) -> dict[str, bool]:
    """Leaf column path -> whether every row group has min/max statistics for it."""
    meta = pq.ParquetFile(path).metadata
    out: dict[str, bool] = {}
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            has = column.is_stats_set and column.statistics is not None and column.statistics.has_min_max
            out[column.path_in_schema] = out.get(column.path_in_schema, True) and has
    return out
