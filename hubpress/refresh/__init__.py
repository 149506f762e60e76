"""Refresh a published dataset from upstream Hub datasets (SimpleTuner's Hugging Face backend config).

backends.py models one backend, config.py parses the configuration; captions.py, columns.py,
filters.py and rows.py decide per row (pure), report.py counts; mix.py plans a mix of backends;
upstream.py reads the Hub, local.py a folder, reading.py reads (and mixes) every backend.
From its rows on, a refresh goes through the shared shard pipeline (hubpress.shards): lineage.py
says what changed upstream, publish.py streams the rows into staged shards, card.py writes the
manifest, card, SimpleTuner index and dataloader entry.
"""

from hubpress.refresh.config import (
    HuggingfaceBackend,
    LocalBackend,
    RefreshConfig,
    parse_refresh_config,
)
from hubpress.refresh.mix import apply_plan, mix_plan
from hubpress.refresh.rows import (
    RefreshReport,
    caption_for,
    fingerprint,
    passes_filters,
    slice_composite,
    virtual_index,
)

__all__ = [
    "HuggingfaceBackend",
    "LocalBackend",
    "RefreshConfig",
    "RefreshReport",
    "apply_plan",
    "caption_for",
    "fingerprint",
    "mix_plan",
    "parse_refresh_config",
    "passes_filters",
    "slice_composite",
    "virtual_index",
]
