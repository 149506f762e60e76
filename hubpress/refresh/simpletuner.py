"""How a refreshed dataset is laid out for SimpleTuner, and the dataloader entry that reads it.

SimpleTuner's Hugging Face metadata backend (simpletuner/helpers/metadata/backends/huggingface.py,
HuggingfaceMetadataBackend) reads its caption, size and media-column options only from the
entry's `huggingface` block, and turns a single caption column's value into `str(value)`: a list
would become its Python repr ("['a red car']"). So captions are published as plain strings, one
column per caption a row can have (`caption`, then `caption_2`, ...), and the entry names them in
the `huggingface` block (a list of columns when there are several: SimpleTuner then keeps the
non-empty ones, in order). Width and height are published as integer columns and named there too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hubpress.refresh.backends import HuggingfaceBackend, LocalBackend
from hubpress.refresh.config import RefreshConfig
from hubpress.refresh.lineage import SPLIT
from hubpress.refresh.training_keys import cache_entry, training_keys

CAPTION_COLUMN = "caption"  # SimpleTuner's default caption_column, so the name alone already works
# A mixed refresh names each row's backend here: SimpleTuner's filter_func `collection` reads
# item["collection"] (simpletuner/helpers/data_backend/builders/huggingface.py _create_filter_function).
COLLECTION_COLUMN = "collection"
# ... and marks it 1 under its backend's id here (a struct, one int8 field per backend). SimpleTuner
# at bc8e6ab never applies filter_func (docs/refresh-semantics.md), but its metadata backend does
# apply `quality_thresholds` on `quality_column` (HuggingfaceMetadataBackend._passes_quality_filter):
# a threshold of 1 on the entry's own backend keeps exactly that backend's rows.
MEMBERSHIP_COLUMN = "backend_membership"


def membership(backend_id: str, backend_ids: Sequence[str]) -> dict[str, int]:
    """A row's membership value: 1 under its own backend, 0 under the others."""
    return {b: int(b == backend_id) for b in backend_ids}


def _captions_per_row(backend: HuggingfaceBackend | LocalBackend) -> int:
    """The most captions one row of this backend can carry: one per listed caption column."""
    if isinstance(backend, HuggingfaceBackend) and isinstance(backend.caption_column, list):
        return len(backend.caption_column)
    return 1


def caption_columns(config: RefreshConfig) -> list[str]:
    """The published caption columns: `caption`, then `caption_2` ... for rows with several captions."""
    count = max(_captions_per_row(b) for b in config.backends)
    return [CAPTION_COLUMN] + [f"{CAPTION_COLUMN}_{i}" for i in range(2, count + 1)]


def caption_values(captions: Sequence[str] | None, columns: Sequence[str]) -> dict[str, str | None]:
    """A row's captions spread over the caption columns, in order; columns beyond them are null."""
    captions = list(captions or [])
    if len(captions) > len(columns):
        raise ValueError(f"{len(captions)} captions for {len(columns)} caption columns")
    return {name: captions[i] if i < len(captions) else None for i, name in enumerate(columns)}


def published_row(row: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """A refreshed row (with its `captions` list) as it is published (caption string columns)."""
    if "captions" not in row:
        return dict(row)  # the editing schema: its prompt is already a string column
    out = {k: v for k, v in row.items() if k != "captions"}
    out.update(caption_values(row["captions"], columns))
    return out


def is_editing(config: RefreshConfig) -> bool:
    return any(isinstance(b, HuggingfaceBackend) and b.editing is not None for b in config.backends)


def dataloader_entry(config: RefreshConfig, dataset_name: str) -> list[dict[str, Any]]:
    """A SimpleTuner multidatabackend list reading the published dataset: one `huggingface` entry
    per backend, then the user's text/image embed cache backends.

    Each entry is the user's own entry with its training keys kept where the user put them
    (hubpress.refresh.training_keys), pointed at the published dataset. Top level: what
    ImageBackendConfig.from_dict reads there (dataset_name, split, image_column/video_column).
    `huggingface` block: what HuggingfaceMetadataBackend reads (caption_column, width_column,
    height_column, num_frames_column, fps_column, lyrics_column). Several backends mixed: one entry
    per backend on the same repo and split, each with its `probability`, a `filter_func`
    `collection` naming its rows (the published `collection` column) and a quality threshold on
    the `backend_membership` column that keeps only them, so SimpleTuner draws each backend at its
    configured weight (runtime/dataloader_iterator.py select_dataloader_index) from its own rows."""
    mixed = len(config.backends) > 1
    top, block = _published_columns(config)
    single_id = dataset_name.rstrip("/").rsplit("/", 1)[-1] or "refreshed"
    entries = []
    for backend in config.backends:
        raw = config.entries.get(backend.id, {})
        entry_id = backend.id if mixed else single_id
        user = training_keys(raw)
        user_block = user.pop("huggingface", {})
        entry: dict[str, Any] = {
            "id": entry_id,
            "type": "huggingface",
            "dataset_type": backend.dataset_type,
            "dataset_name": dataset_name,
            "split": SPLIT,
            "caption_strategy": "huggingface",
            "metadata_backend": "huggingface",
            "cache_dir": f"cache/{entry_id}",
        }
        if raw.get("caption_strategy") == "instanceprompt":  # SimpleTuner's other strategy for HF data
            entry["caption_strategy"] = "instanceprompt"
        backend_block = dict(block)
        if mixed:
            entry["probability"] = backend.probability
            backend_block["quality_column"] = MEMBERSHIP_COLUMN  # HuggingfaceMetadataBackend reads it here
            backend_block["filter_func"] = {
                "collection": [backend.id],
                "quality_column": MEMBERSHIP_COLUMN,  # the builder's filter reads it here
                "quality_thresholds": {backend.id: 1},
            }
            # SimpleTuner applies filter_func only when not streaming (data_backend/huggingface.py _load_dataset)
            user.pop("streaming", None)
            user_block.pop("streaming", None)
        elif "probability" in raw:
            entry["probability"] = backend.probability
        entry.update(user)
        entry.update(top)
        entry["huggingface"] = {**user_block, **backend_block}
        entries.append(entry)
    return entries + [cache_entry(raw) for raw in config.cache_entries]


def _published_columns(config: RefreshConfig) -> tuple[dict[str, str], dict[str, Any]]:
    """(top-level media column, `huggingface` block) naming the published columns."""
    backend = config.backends[0]
    columns = caption_columns(config)
    caption: str | list[str] = columns[0] if len(columns) == 1 else columns
    if is_editing(config):
        return {"image_column": "target_image"}, {"caption_column": "prompt"}
    if backend.dataset_type == "image":
        return {"image_column": "image"}, {
            "caption_column": caption,
            "width_column": "width",
            "height_column": "height",
        }
    if backend.dataset_type == "video":
        return {"video_column": "video"}, {"caption_column": caption, **_video_columns(config)}
    return {}, {"caption_column": caption, "lyrics_column": "lyrics"}


def _video_columns(config: RefreshConfig) -> dict[str, str]:
    """Video size, frame and fps columns, named only when every backend fills them: SimpleTuner's
    HuggingfaceMetadataBackend._get_image_metadata_from_item calls int()/float() on a named column's
    value without a guard, so a column of nulls would stop its metadata scan."""
    backends = [b for b in config.backends if isinstance(b, HuggingfaceBackend)]

    def every(option: str) -> bool:
        return len(backends) == len(config.backends) and all(getattr(b, option) for b in backends)

    columns = {}
    if every("width_column") and every("height_column"):
        columns |= {"width_column": "width", "height_column": "height"}
    if every("num_frames_column"):
        columns["num_frames_column"] = "num_frames"
    if every("fps_column"):
        columns["fps_column"] = "fps"
    return columns
