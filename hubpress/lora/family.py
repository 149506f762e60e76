"""Recognising a LoRA in a checked safetensors header: its naming family, rank, alphas and modules."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from hubpress.lora.header import InvalidWeightsError, SafetensorsHeader, TensorEntry, read_scalar


class NotALoraError(InvalidWeightsError):
    """The safetensors file is sound but holds no LoRA tensors."""


@dataclass(frozen=True, slots=True)
class LoraInfo:
    """What a LoRA file holds, for validation reports and the model card. JSON-serialisable."""

    file_name: str
    file_size: int
    naming: str  # "peft", "kohya", "diffusers" (lora_linear_layer / *_lora.down) or "mixed"
    rank: int  # the most common rank (the A/down tensors' first dimension)
    ranks: tuple[int, ...]  # every distinct rank, when modules differ
    alphas: tuple[float, ...]  # distinct alphas found (kohya .alpha tensors or metadata); may be empty
    target_modules: tuple[str, ...]  # shortest unambiguous module name suffixes: to_q, to_out.0, ...
    lora_layers: int  # adapted layers (A/B pairs)
    components: tuple[str, ...]  # transformer, unet, text_encoder, ... when the names say so
    tensor_count: int
    parameter_count: int
    dtypes: tuple[str, ...]
    metadata: dict[str, str] = field(hash=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoraInfo:
        tuples = {"ranks", "alphas", "target_modules", "components", "dtypes"}
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()})


# (pattern, role): group 1 is the adapted module's path. PEFT / diffusers (lora_A/lora_B, with an
# optional adapter name), kohya (lora_down/lora_up), lora.down/lora.up, diffusers'
# lora_linear_layer and the old attention-processor form (to_q_lora.down).
_LORA_PATTERNS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"^(.+)\.lora_(?:embedding_)?A(?:\.[^.]+)?\.weight$"), "down", "peft"),
    (re.compile(r"^(.+)\.lora_(?:embedding_)?B(?:\.[^.]+)?\.weight$"), "up", "peft"),
    (re.compile(r"^(.+)\.lora_down\.weight$"), "down", "kohya"),
    (re.compile(r"^(.+)\.lora_up\.weight$"), "up", "kohya"),
    (re.compile(r"^(.+)\.lora\.down\.weight$"), "down", "diffusers"),
    (re.compile(r"^(.+)\.lora\.up\.weight$"), "up", "diffusers"),
    (re.compile(r"^(.+)\.lora_linear_layer\.down\.weight$"), "down", "diffusers"),
    (re.compile(r"^(.+)\.lora_linear_layer\.up\.weight$"), "up", "diffusers"),
    (re.compile(r"^(.+)_lora\.down\.weight$"), "down", "diffusers"),
    (re.compile(r"^(.+)_lora\.up\.weight$"), "up", "diffusers"),
)
_KOHYA_PREFIX = re.compile(r"^lora_(unet|te\d*|transformer|text_encoder\d*)_")
_KOHYA_BLOCK = re.compile(r"(?:blocks|layers|layer)_\d+_")
_BLOCK_PARENT = re.compile(r"(?:blocks|layers|layer|block|^h)$")
_COMPONENTS = ("transformer", "unet", "text_encoder", "text_encoder_2", "text_encoder_3", "prior", "decoder")
_KOHYA_COMPONENTS = {
    "unet": "unet",
    "transformer": "transformer",
    "te": "text_encoder",
    "te1": "text_encoder",
}


def _classify(name: str) -> tuple[str, str, str] | None:
    """(module path, 'down'|'up', naming) for a LoRA weight tensor name, else None."""
    for pattern, role, naming in _LORA_PATTERNS:
        m = pattern.match(name)
        if m:
            module = m.group(1).replace(".processor.", ".")
            return module, role, naming
    return None


def _module_suffix(module: str) -> tuple[tuple[str, ...], str | None]:
    """(name parts after the last block index, component) for a module path."""
    kohya = _KOHYA_PREFIX.match(module)
    if kohya:
        rest = module[kohya.end() :]
        blocks = list(_KOHYA_BLOCK.finditer(rest))
        tail = rest[blocks[-1].end() :] if blocks else rest
        comp = kohya.group(1)
        component = _KOHYA_COMPONENTS.get(comp, "text_encoder" if comp.startswith("te") else comp)
        return (tail or rest,), component
    parts = module.split(".")
    if parts[:2] == ["base_model", "model"]:
        parts = parts[2:]
    component = None
    if parts and parts[0] in _COMPONENTS:
        component, parts = parts[0], parts[1:]
    cut = 0
    for i in range(1, len(parts) - 1):
        if parts[i].isdigit() and _BLOCK_PARENT.search(parts[i - 1]):
            cut = i + 1
    return tuple(parts[cut:]) or tuple(parts), component


def shortest_unique_suffixes(paths: set[tuple[str, ...]]) -> tuple[str, ...]:
    """Each path shortened to its shortest suffix that no other path shares (never a bare index),
    so names read like PEFT's target_modules: to_q, to_out.0, img_mlp.net.0.proj."""
    names: set[str] = set()
    for path in paths:
        k = 2 if len(path) >= 2 and path[-1].isdigit() else 1
        while k < len(path) and any(other != path and other[-k:] == path[-k:] for other in paths):
            k += 1
        names.add(".".join(path[-k:]))
    return tuple(sorted(names))


def _alphas_from_metadata(metadata: dict[str, str]) -> set[float]:
    found: set[float] = set()
    for key in ("ss_network_alpha", "lora_alpha", "alpha"):
        try:
            found.add(float(metadata[key]))
        except (KeyError, ValueError):
            pass
    # diffusers stores the PEFT LoraConfig as JSON under lora_adapter_metadata.
    try:
        adapter = json.loads(metadata.get("lora_adapter_metadata", ""))
    except ValueError:
        adapter = None
    if isinstance(adapter, dict):
        for key, value in adapter.items():
            if key.split(".")[-1] == "lora_alpha" and isinstance(value, int | float):
                found.add(float(value))
    return found


def describe_lora(header: SafetensorsHeader, where: str, fh: BinaryIO | None = None) -> LoraInfo:
    """LoraInfo from a checked header. Refuses a file without LoRA tensors, or with unpaired or
    inconsistently shaped A/B tensors. `fh` (an open seekable file) lets kohya .alpha values be read."""
    downs: dict[str, TensorEntry] = {}
    ups: dict[str, TensorEntry] = {}
    namings: set[str] = set()
    alpha_entries: list[TensorEntry] = []
    for entry in header.tensors:
        hit = _classify(entry.name)
        if hit is None:
            if entry.name.endswith(".alpha"):
                alpha_entries.append(entry)
            continue
        module, role, naming = hit
        namings.add(naming)
        (downs if role == "down" else ups)[module] = entry
    if not downs and not ups:
        sample = ", ".join(sorted(t.name for t in header.tensors)[:5]) or "no tensors at all"
        raise NotALoraError(
            f"{where} is not a LoRA: none of its {len(header.tensors)} tensors has LoRA naming "
            f"(lora_A/lora_B, lora_down/lora_up, lora.down/lora.up, lora_linear_layer). Found: {sample}."
        )
    unpaired = sorted(set(downs) ^ set(ups))
    if unpaired:
        raise InvalidWeightsError(
            f"{where}: {len(unpaired)} LoRA layer(s) lack their A/down or B/up half, e.g. {unpaired[0]!r}; "
            "the file is incomplete."
        )
    ranks: Counter[int] = Counter()
    for module, down in downs.items():
        up = ups[module]
        if len(down.shape) < 2 or len(up.shape) < 2:
            raise InvalidWeightsError(
                f"{where}: LoRA layer {module!r} has shapes {list(down.shape)} / {list(up.shape)}; "
                "A/down and B/up must have at least 2 dimensions."
            )
        if up.shape[1] != down.shape[0]:
            raise InvalidWeightsError(
                f"{where}: LoRA layer {module!r} has rank {down.shape[0]} in A/down {list(down.shape)} "
                f"but B/up is {list(up.shape)}."
            )
        ranks[down.shape[0]] += 1
    alphas = _alphas_from_metadata(header.metadata)
    if fh is not None:
        for entry in alpha_entries:
            value = read_scalar(fh, header.data_start, entry)
            if value is not None and math.isfinite(value):
                alphas.add(float(value))
    suffixes: set[tuple[str, ...]] = set()
    components: set[str] = set()
    for module in downs:
        suffix, component = _module_suffix(module)
        suffixes.add(suffix)
        if component:
            components.add(component)
    rank = max(ranks.items(), key=lambda kv: (kv[1], kv[0]))[0]
    return LoraInfo(
        file_name=where.rsplit("/", 1)[-1],
        file_size=header.file_size,
        naming=namings.pop() if len(namings) == 1 else "mixed",
        rank=rank,
        ranks=tuple(sorted(ranks)),
        alphas=tuple(sorted(alphas)),
        target_modules=shortest_unique_suffixes(suffixes),
        lora_layers=len(downs),
        components=tuple(sorted(components)),
        tensor_count=len(header.tensors),
        parameter_count=sum(t.numel for t in header.tensors),
        dtypes=tuple(sorted({t.dtype for t in header.tensors})),
        metadata=dict(sorted(header.metadata.items())),
    )
