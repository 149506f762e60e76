"""Recognising a LoRA in a checked safetensors header: its family, rank, alphas and modules.

The LoRA family people publish: PEFT / diffusers (lora_A/lora_B, lora.down/lora.up,
lora_linear_layer), kohya (lora_down/lora_up with a per-module .alpha), and LyCORIS's LoKr
(lokr_w1/lokr_w2, each whole or factored as _a/_b) and LoHa (hada_w1_a/_b, hada_w2_a/_b), both
with their .alpha. Anything else (a full checkpoint) is not a LoRA and is refused.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from hubpress.lora.header import InvalidWeightsError, SafetensorsHeader, TensorEntry, read_scalar
from hubpress.parsers import load_json


class NotALoraError(InvalidWeightsError):
    """The safetensors file is sound but holds no LoRA tensors."""


@dataclass(frozen=True, slots=True)
class LoraInfo:
    """What a LoRA file holds, for validation reports and the model card. JSON-serialisable."""

    file_name: str
    file_size: int
    naming: str  # "peft", "kohya", "diffusers" (lora_linear_layer / *_lora.down), "lokr", "loha" or "mixed"
    rank: int  # the most common rank (A/down's first dimension; LyCORIS: its factors' inner size; 0: none)
    ranks: tuple[int, ...]  # every distinct rank, when modules differ
    alphas: tuple[float, ...]  # distinct alphas found (kohya .alpha tensors or metadata); may be empty
    target_modules: tuple[str, ...]  # shortest unambiguous module name suffixes: to_q, to_out.0, ...
    lora_layers: int  # adapted layers (A/B pairs)
    components: tuple[str, ...]  # transformer, unet, text_encoder, ... when the names say so
    tensor_count: int
    parameter_count: int
    dtypes: tuple[str, ...]
    metadata: dict[str, str] = field(hash=False)
    # What the tensor names start with, which decides who can load them: "base_model.model" (PEFT's
    # save_pretrained), "transformer"/"unet"/... (diffusers), "lora_unet"/"lycoris_..." (kohya,
    # LyCORIS), "" (bare module paths), "mixed".
    key_prefix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def family(self) -> str:
        """The LoRA family (`lora_family` in --json and the card): peft, diffusers, kohya,
        lycoris-lokr, lycoris-loha, or mixed."""
        return FAMILIES.get(self.naming, self.naming)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoraInfo:
        tuples = {"ranks", "alphas", "target_modules", "components", "dtypes"}
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()})


FAMILIES = {"lokr": "lycoris-lokr", "loha": "lycoris-loha"}

# (pattern, role, naming): group 1 is the adapted module's path. PEFT / diffusers (lora_A/lora_B,
# with an optional adapter name), kohya (lora_down/lora_up), lora.down/lora.up, diffusers'
# lora_linear_layer and the old attention-processor form (to_q_lora.down); LyCORIS LoKr and LoHa,
# whose role is named by the pattern's second group.
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
    (re.compile(r"^(.+)\.lokr_(w1|w1_a|w1_b|w2|w2_a|w2_b|t2)(?:\.weight)?$"), "", "lokr"),
    (re.compile(r"^(.+)\.hada_(w1_a|w1_b|w2_a|w2_b|t1|t2)(?:\.weight)?$"), "", "loha"),
)
_KOHYA_PREFIX = re.compile(r"^(?:lora|lycoris)_(unet|te\d*|transformer|text_encoder\d*)_")
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
    """(module path, role, naming) for a LoRA weight tensor name, else None. Roles: 'down'/'up'
    (LoRA), or the LyCORIS tensor's own name (w1, w2_a, ...)."""
    for pattern, role, naming in _LORA_PATTERNS:
        m = pattern.match(name)
        if m:
            module = m.group(1).replace(".processor.", ".")
            return module, role or m.group(2), naming
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
        adapter = load_json(metadata.get("lora_adapter_metadata", ""), "lora_adapter_metadata")
    except ValueError:
        adapter = None
    if isinstance(adapter, dict):
        for key, value in adapter.items():
            if key.split(".")[-1] == "lora_alpha" and isinstance(value, int | float):
                found.add(float(value))
    return found


def _lora_rank(parts: dict[str, TensorEntry]) -> int:
    down, up = parts["down"], parts["up"]
    if len(down.shape) < 2 or len(up.shape) < 2:
        raise ValueError(
            f"has shapes {list(down.shape)} / {list(up.shape)}; A/down and B/up need 2 dimensions"
        )
    if up.shape[1] != down.shape[0]:
        raise ValueError(
            f"has rank {down.shape[0]} in A/down {list(down.shape)} but B/up is {list(up.shape)}"
        )
    return down.shape[0]


def _factor_rank(parts: dict[str, TensorEntry], a: str, b: str) -> int:
    """The inner size of a factored pair x_a @ x_b (x_a: [out, r], x_b: [r, in...])."""
    first, second = parts[a], parts[b]
    if len(first.shape) < 2 or len(second.shape) < 2 or first.shape[1] != second.shape[0]:
        raise ValueError(f"has {a} {list(first.shape)} and {b} {list(second.shape)}, which do not multiply")
    return second.shape[0]


def _lokr_rank(parts: dict[str, TensorEntry]) -> int:
    """LoKr: each Kronecker factor is whole (w1, w2) or factored (w1_a @ w1_b, w2_a @ w2_b)."""
    ranks = []
    for factor in ("w1", "w2"):
        if f"{factor}_a" in parts or f"{factor}_b" in parts:
            if f"{factor}_a" not in parts or f"{factor}_b" not in parts:
                raise ValueError(f"has only one of lokr_{factor}_a / lokr_{factor}_b")
            ranks.append(_factor_rank(parts, f"{factor}_a", f"{factor}_b"))
        elif factor not in parts:
            raise ValueError(f"lacks lokr_{factor} (or lokr_{factor}_a and lokr_{factor}_b)")
    return max(ranks, default=0)  # 0: both factors whole, no low-rank factor


def _loha_rank(parts: dict[str, TensorEntry]) -> int:
    missing = [f"hada_{k}" for k in ("w1_a", "w1_b", "w2_a", "w2_b") if k not in parts]
    if missing:
        raise ValueError(f"lacks {', '.join(missing)}")
    first, second = _factor_rank(parts, "w1_a", "w1_b"), _factor_rank(parts, "w2_a", "w2_b")
    if first != second:
        raise ValueError(f"has rank {first} in hada_w1 but {second} in hada_w2")
    return first


_RANK = {"lokr": _lokr_rank, "loha": _loha_rank}


def describe_lora(header: SafetensorsHeader, where: str, fh: BinaryIO | None = None) -> LoraInfo:
    """LoraInfo from a checked header. Refuses a file without LoRA tensors, or with incomplete or
    inconsistently shaped modules. `fh` (an open seekable file) lets .alpha values be read."""
    modules: dict[str, dict[str, TensorEntry]] = {}
    module_naming: dict[str, str] = {}
    alpha_entries: list[TensorEntry] = []
    for entry in header.tensors:
        hit = _classify(entry.name)
        if hit is None:
            if entry.name.endswith(".alpha"):
                alpha_entries.append(entry)
            continue
        module, role, naming = hit
        modules.setdefault(module, {})[role] = entry
        module_naming[module] = naming
    if not modules:
        sample = ", ".join(sorted(t.name for t in header.tensors)[:5]) or "no tensors at all"
        raise NotALoraError(
            f"{where} is not a LoRA: none of its {len(header.tensors)} tensors has LoRA naming "
            "(lora_A/lora_B, lora_down/lora_up, lora.down/lora.up, lora_linear_layer, LyCORIS lokr_*/hada_*). "
            f"Found: {sample}."
        )
    unpaired = sorted(m for m, parts in modules.items() if module_naming[m] not in _RANK and len(parts) < 2)
    if unpaired:
        raise InvalidWeightsError(
            f"{where}: {len(unpaired)} LoRA layer(s) lack their A/down or B/up half, e.g. {unpaired[0]!r}; "
            "the file is incomplete."
        )
    ranks: Counter[int] = Counter()
    for module, parts in modules.items():
        try:
            rank = _RANK.get(module_naming[module], _lora_rank)(parts)
        except ValueError as exc:
            raise InvalidWeightsError(
                f"{where}: LoRA layer {module!r} {exc}; the file is incomplete or damaged."
            )
        ranks[rank] += 1
    namings = set(module_naming.values())
    alphas = _alphas_from_metadata(header.metadata)
    if fh is not None:
        for entry in alpha_entries:
            value = read_scalar(fh, header.data_start, entry)
            if value is not None and math.isfinite(value):
                alphas.add(float(value))
    suffixes: set[tuple[str, ...]] = set()
    components: set[str] = set()
    for module in modules:
        suffix, component = _module_suffix(module)
        suffixes.add(suffix)
        if component:
            components.add(component)
    rank = max(ranks.items(), key=lambda kv: (kv[1], kv[0]))[0]
    prefixes = {_key_prefix(m) for m in modules}
    return LoraInfo(
        file_name=where.rsplit("/", 1)[-1],
        file_size=header.file_size,
        naming=namings.pop() if len(namings) == 1 else "mixed",
        rank=rank,
        ranks=tuple(sorted(ranks)),
        alphas=tuple(sorted(alphas)),
        target_modules=shortest_unique_suffixes(suffixes),
        lora_layers=len(modules),
        components=tuple(sorted(components)),
        tensor_count=len(header.tensors),
        parameter_count=sum(t.numel for t in header.tensors),
        dtypes=tuple(sorted({t.dtype for t in header.tensors})),
        metadata=dict(sorted(header.metadata.items())),
        key_prefix=prefixes.pop() if len(prefixes) == 1 else "mixed",
    )


def _key_prefix(module: str) -> str:
    """The loader-relevant start of a module path (see LoraInfo.key_prefix)."""
    if module.startswith("base_model.model."):
        return "base_model.model"
    kohya = _KOHYA_PREFIX.match(module)
    if kohya:
        return kohya.group(0).rstrip("_")
    first = module.split(".", 1)[0]
    return first if first in _COMPONENTS else ""
