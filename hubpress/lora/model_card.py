"""The model card (README.md) of a LoRA repo, regenerated on each release without trampling edits.

`render_model_card` builds the YAML keys and the marked block from a `LoraInfo` and the training
config; `hubpress.shards.cards.merge_card` keeps everything a user wrote outside the markers and every
YAML key hubpress does not generate. Tags are merged (a user's tags stay). Output is deterministic
(no dates), so an unchanged release produces an unchanged card and no commit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from hubpress.lora.loaders import Loader, loader_for
from hubpress.lora.weights import DEFAULT_WEIGHT_NAME, LoraInfo
from hubpress.shards.cards import escape_text, merge_card, split_front_matter

BASE_TAGS = ("lora", "hubpress", "image-editing")
# The tag each loader adds (hubpress.lora.loaders): a card never tags a library that cannot load it.
LOADER_TAGS = {"diffusers": ("diffusers",), "peft": ("peft",), "lycoris": ("lycoris",), "none": ()}
MAX_WIDGET_SAMPLES = 10  # the Hub's widget shows a handful; the rest stay in samples/

# (label, key names that mean it, path must mention one of these or None). First, shallowest hit wins.
CONFIG_FIELDS: tuple[tuple[str, tuple[str, ...], tuple[str, ...] | None], ...] = (
    (
        "Base model",
        ("pretrained_model_name_or_path", "base_model", "model_name_or_path", "pretrained_model"),
        None,
    ),
    ("Learning rate", ("learning_rate", "lr", "unet_lr"), None),
    (
        "Training steps",
        ("max_train_steps", "max_steps", "num_train_steps", "train_steps", "total_steps"),
        None,
    ),
    ("Epochs", ("num_train_epochs", "num_epochs", "max_epochs", "epochs"), None),
    ("Batch size", ("train_batch_size", "per_device_train_batch_size", "batch_size"), None),
    ("Gradient accumulation", ("gradient_accumulation_steps",), None),
    ("LoRA rank", ("lora_rank", "network_dim", "rank", "lora_r"), None),
    ("LoRA rank", ("r",), ("lora", "peft", "adapter")),
    ("LoRA alpha", ("lora_alpha", "network_alpha"), None),
    ("LoRA alpha", ("alpha",), ("lora", "peft", "adapter", "network")),
    ("Target modules", ("target_modules",), None),
    ("Resolution", ("resolution", "image_size", "img_size"), None),
    ("Optimizer", ("optimizer", "optimizer_type", "optim"), None),
    ("LR scheduler", ("lr_scheduler", "lr_scheduler_type"), None),
    ("Mixed precision", ("mixed_precision", "precision", "weight_dtype"), None),
    ("Seed", ("seed",), None),
)
_ONE_BLANK_AFTER_FRONT_MATTER = re.compile(r"\A(---\n.*?\n---\n)\n+", re.DOTALL)
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _walk(value: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    """Every (key path, value) of a nested config, mappings included (optimizer: {type: AdamW})."""
    if path:
        yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, (*path, str(key)))


def _show(value: Any) -> str | None:
    if isinstance(value, dict):  # e.g. optimizer: {type: AdamW, ...}
        for key in ("type", "name", "class_path"):
            if isinstance(value.get(key), str):
                return value[key]
        return None
    if isinstance(value, list | tuple):
        shown = [_show(v) for v in value]
        return ", ".join(s for s in shown if s is not None) if all(s is not None for s in shown) else None
    if value is None or value == "":
        return None
    return str(value)


def summarize_training_config(config: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) pairs of the key hyperparameters a config holds, in a fixed order."""
    if not config:
        return []
    found: dict[str, tuple[int, str]] = {}
    for path, value in _walk(dict(config)):
        key, parents = path[-1].lower(), ".".join(path[:-1]).lower()
        for label, names, context in CONFIG_FIELDS:
            if key not in names or (context and not any(c in parents for c in context)):
                continue
            shown = _show(value)
            if shown is not None and (label not in found or len(path) < found[label][0]):
                found[label] = (len(path), shown)
            break
    order = list(dict.fromkeys(label for label, _, _ in CONFIG_FIELDS))
    return [(label, found[label][1]) for label in order if label in found]


def base_model_from_config(config: Mapping[str, Any] | None) -> str | None:
    """The base model's Hub repo id named in a training config, when it names one (not a local path)."""
    for label, value in summarize_training_config(config):
        if label == "Base model" and _REPO_ID.match(value) and not value.startswith((".", "/", "~")):
            return value
    return None


def _cell(text: object) -> str:
    return escape_text(text)


def _code(text: str) -> str:
    """A value shown inside a Python string in a code block or a code span: no quote, backslash,
    backtick, pipe, angle bracket or newline can end the string, the span or the fence, or form a
    hubpress marker."""
    return "".join(c for c in text if c not in "\"'\\`|<>\n\r")


def _table(rows: list[tuple[str, str]], *, escape: bool = True) -> str:
    """A two-column table; cells are escaped unless the caller built them from escaped parts."""
    lines = ["| | |", "|---|---|"]
    show = _cell if escape else str
    lines += [f"| {show(label)} | {show(value)} |" for label, value in rows]
    return "\n".join(lines)


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


_FAMILY_TEXT = {"lycoris-lokr": "LyCORIS LoKr", "lycoris-loha": "LyCORIS LoHa"}


def _rank_text(info: LoraInfo) -> str:
    return f"rank {info.rank}" if info.rank else "full-size Kronecker factors"


def _usage(loader: Loader, repo_id: str, pipeline_base: str, weight_name: str) -> list[str]:
    """The "Use with ..." sections that work for this loader (hubpress.lora.loaders)."""
    note = [loader.note, ""] if loader.note else []
    if loader.how == "peft":
        return [
            "## Use with PEFT",
            "",
            *note,
            "```python",
            "from peft import PeftConfig, PeftModel",
            "",
            f'config = PeftConfig.from_pretrained("{repo_id}")',
            "# base = the model named by config.base_model_name_or_path, loaded with its own library",
            f'model = PeftModel.from_pretrained(base, "{repo_id}")',
            "```",
            "",
        ]
    if loader.how == "lycoris":
        return [
            "## Use with LyCORIS",
            "",
            *note,
            "```python",
            "import torch",
            "from diffusers import DiffusionPipeline",
            "from huggingface_hub import hf_hub_download",
            "from lycoris import create_lycoris_from_weights",
            "",
            f'pipe = DiffusionPipeline.from_pretrained("{pipeline_base}", torch_dtype=torch.bfloat16)',
            f'path = hf_hub_download("{repo_id}", "{weight_name}")',
            "wrapper, _ = create_lycoris_from_weights(1.0, path, pipe.transformer)",
            "wrapper.merge_to()",
            "```",
            "",
        ]
    if loader.how == "none":
        return ["## Loading", "", *note]
    return [
        "## Use with diffusers",
        "",
        "```python",
        "import torch",
        "from diffusers import DiffusionPipeline",
        "",
        f'pipe = DiffusionPipeline.from_pretrained("{pipeline_base}", torch_dtype=torch.bfloat16)',
        f'pipe.load_lora_weights("{repo_id}", weight_name="{weight_name}")',
        "```",
        "",
        "## Use with qflux",
        "",
        "```python",
        "from qflux.utils.huggingface import download_lora",
        "",
        f'lora_path = download_lora(repo_id="{repo_id}", filename="{weight_name}")',
        "trainer.load_lora(lora_path)",
        "```",
        "",
    ]


def _lora_rows(info: LoraInfo, weight_name: str) -> list[tuple[str, str]]:
    rank = str(info.rank) if info.rank else _rank_text(info)
    if len(info.ranks) > 1:
        rank += f" (most layers; ranks present: {', '.join(map(str, info.ranks))})"
    rows = [("Rank", rank)]
    if info.alphas:
        rows.append(("Alpha", ", ".join(f"{a:g}" for a in info.alphas)))
    rows += [
        ("Layers adapted", str(info.lora_layers)),
        ("Target modules", ", ".join(f"`{_code(m)}`" for m in info.target_modules)),
    ]
    if info.components:
        rows.append(("Components", escape_text(", ".join(info.components))))
    rows += [
        ("Tensor dtypes", escape_text(", ".join(info.dtypes))),
        ("Parameters", f"{info.parameter_count:,}"),
        ("LoRA family", escape_text(info.family)),
        ("File", f"`{_code(weight_name)}` ({_human_size(info.file_size)})"),
    ]
    return rows


def render_model_card(
    existing: str | None,
    info: LoraInfo,
    *,
    repo_id: str,
    base_model: str | None = None,
    license: str | None = None,
    training_config: Mapping[str, Any] | None = None,
    sample_images: list[str] | None = None,
    sample_prompts: Mapping[str, str] | None = None,
    extra_tags: Iterable[str] = (),
    weight_name: str = DEFAULT_WEIGHT_NAME,
    provenance: Mapping[str, object] | None = None,
    with_adapter_config: bool = False,
) -> str:
    """The README.md for a LoRA repo. `existing` is the current card (or None); `sample_images` are
    paths in the repo (shown in the widget, with `sample_prompts[path]` as text when given);
    `provenance` is shown as a small "Release" table (checkpoint, step, selection, metric...).
    Without `base_model`, the config's pretrained_model_name_or_path (or similar) is used when it
    is a Hub repo id. `library_name` and the usage sections follow the loader that reads these
    weights (hubpress.lora.loaders; `with_adapter_config`: PEFT's adapter_config.json is published)."""
    loader = loader_for(info, weight_name, with_adapter_config)
    base_model = base_model or base_model_from_config(training_config)
    old_meta, _ = split_front_matter(existing or "")
    old_tags = old_meta.get("tags") or []
    old_tags = [old_tags] if isinstance(old_tags, str) else [str(t) for t in old_tags]
    tags = list(dict.fromkeys([*BASE_TAGS, *LOADER_TAGS[loader.how], *extra_tags, *old_tags]))

    meta: dict[str, Any] = {}
    if base_model:
        meta["base_model"] = base_model
    if loader.library_name:
        meta["library_name"] = loader.library_name
    meta["pipeline_tag"] = "image-to-image"
    if license:
        meta["license"] = license
    meta["tags"] = tags
    samples = list(sample_images or [])
    if samples:
        prompts = sample_prompts or {}
        meta["widget"] = [
            {"text": prompts.get(path, ""), "output": {"url": path}} for path in samples[:MAX_WIDGET_SAMPLES]
        ]

    name = escape_text(repo_id.rstrip("/").rsplit("/", 1)[-1] or "LoRA adapter")
    linkable = base_model is not None and _REPO_ID.match(base_model) is not None
    if linkable:
        base_text = f"[{escape_text(base_model)}](https://huggingface.co/{base_model})"
    else:
        base_text = escape_text(base_model) if base_model else "its base model"
    pipeline_base = _code(base_model) if linkable and base_model else "<base model repo id>"
    weight_name = _code(weight_name)
    body = [
        f"# {name}",
        "",
        f"A {_FAMILY_TEXT.get(info.family, 'LoRA')} adapter (LoRA family `{escape_text(info.family)}`, "
        f"{_rank_text(info)}, {info.lora_layers} adapted layers) for image editing with "
        f"{base_text}. The weights are `{weight_name}` (safetensors), published with hubpress.",
        "",
        *_usage(loader, repo_id, pipeline_base, weight_name),
        "## LoRA",
        "",
        _table(_lora_rows(info, weight_name), escape=False),
    ]
    config_rows = summarize_training_config(training_config)
    if config_rows:
        body += ["", "## Training configuration", "", _table(config_rows)]
    if provenance:
        rows = [(str(k), str(v)) for k, v in provenance.items() if v is not None and v != ""]
        if rows:
            body += ["", "## Release", "", _table(rows)]
    if samples:
        body += ["", "## Samples", ""]
        body += [
            f"![{escape_text(path.rsplit('/', 1)[-1])}](<{quote(path, safe='/')}>)"
            for path in samples[:MAX_WIDGET_SAMPLES]
        ]
        if len(samples) > MAX_WIDGET_SAMPLES:
            body.append(f"\n{len(samples) - MAX_WIDGET_SAMPLES} more in `samples/`.")
    card = merge_card(existing, meta, "\n".join(body))
    # merge_card keeps the blank line that follows the front matter as part of the body and then
    # adds its own, so each re-render would grow the card by a line (and make a commit): keep one.
    return _ONE_BLANK_AFTER_FRONT_MATTER.sub(r"\1\n", card, count=1)
