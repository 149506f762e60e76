"""The user's training keys, carried from their multidatabackend entry into the published one.

SimpleTuner trains on a `huggingface` entry with everything else the entry says: the `video`
block (num_frames, min_frames, max_frames, is_i2v, bucket_strategy: without it
simpletuner/helpers/data_backend/factory.py `init_backend_config` defaults num_frames and
min_frames to 150 and drops shorter clips), `repeats`, `crop*`, `resolution`, `resolution_type`,
`minimum_image_size`, aspect-ratio limits, `maximum_image_size`/`target_downsample_size`,
`probability`, `start_epoch`..., `caption_shuffle`, `conditioning`, `text_embeds`, `vae_cache_*`
(init_backend_config and config/image.py `ImageBackendConfig.from_dict` read them at the top
level). So the published entry starts from the user's own entry, every key where the user put it,
and only these are taken out:

- keys that say where and how the upstream is read (replaced by the published dataset's own),
- keys whose work the refresh already did on the published rows (caption sources, size and frame
  columns, filter_func, composite_image_config, the editing mapping): SimpleTuner must not redo it
  on the published columns,
- keys that name other backends the refresh does not publish (conditioning_data, ...),
- anything that looks like a credential (a published file never carries one).

Filters that are also training settings (minimum_image_size, aspect ratios, the video block) stay:
SimpleTuner re-applies them to rows that already pass them, which keeps every published row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hubpress.refresh.config import HUGGINGFACE_BLOCK_ONLY

# Where and how the upstream is read, and the entry's identity: the published entry sets its own.
SOURCE_KEYS = frozenset(
    {
        "id",
        "type",
        "disabled",
        "disable",
        "dataset_type",
        "dataset_name",
        "dataset_config",
        "data_files",
        "split",
        "revision",
        "image_column",
        "video_column",
        "audio_column",
        "instance_data_dir",
        "caption_strategy",
        "metadata_backend",
        "probability",
        # caches keyed by the upstream's file names: the published rows have other names (0.jpg ...)
        "cache_dir",
        "cache_dir_vae",
    }
)
# Work the refresh has done on the published rows (hubpress.refresh.rows / captions / filters).
APPLIED_KEYS = HUGGINGFACE_BLOCK_ONLY | {
    "quality_column",
    "caption_source",
    "editing",
    "drop_below_resolution",
}
# Keys that name other backends of the user's file, which a refresh does not publish.
REFERENCE_KEYS = frozenset({"conditioning_data", "source_dataset_id", "s2v_datasets"})
BLOCKS = ("huggingface", "config")
_SECRET = re.compile(r"(?:^|_)(?:token|secret|password|credentials?|access_key(?:_id)?|api_key)(?:$|_)", re.I)
# SimpleTuner's cache backends (text and image embeds): kept as the user wrote them, so that a
# `text_embeds`/`image_embeds` reference in a published entry still names a backend of the file.
CACHE_TYPES = frozenset({"text_embeds", "image_embeds", "conditioning_image_embeds"})


def is_secret(key: str) -> bool:
    return bool(_SECRET.search(key))


def _without_secrets(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_secrets(v) for k, v in value.items() if not is_secret(str(k))}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def training_keys(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The user's entry less source, applied, reference and secret keys; each kept key stays where
    the user put it (top level, `huggingface` block or `config` block)."""
    dropped = SOURCE_KEYS | APPLIED_KEYS | REFERENCE_KEYS
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in BLOCKS and isinstance(value, Mapping):
            block = {k: v for k, v in value.items() if k not in dropped}
            if block:
                out[key] = block
        elif key not in dropped:
            out[key] = value
    return _without_secrets(out)


def cache_entry(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A text/image embed cache backend as the user wrote it, less anything that looks like a secret."""
    return _without_secrets(dict(raw))
