"""LoRA-shaped safetensors files for tests and benchmarks, and broken variants of them.

Small files go through `safetensors.numpy.save_file` (the reference writer). Large ones (a 1 GB
bench file) are streamed by `write_streaming`: header first, then each tensor's bytes in chunks,
so memory stays at one chunk whatever the file size. Tensor values are deterministic pseudo-random
bytes (seeded), so uploads can't be deduplicated away and reruns produce the same file.
"""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from hubpress.lora.weights import DTYPE_BITS

# "peft" is diffusers' PEFT-style naming (transformer.*.lora_A.weight, what save_lora_weights writes);
# "peft_adapter" is PEFT's own save_pretrained naming (base_model.model.*.lora_A.weight).
Naming = Literal["peft", "peft_adapter", "kohya", "diffusers", "lokr", "loha"]

# Qwen-Image-Edit transformer blocks' usual LoRA targets, in diffusers naming.
QWEN_TARGETS = (
    "attn.to_q",
    "attn.to_k",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_q_proj",
    "attn.add_k_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
)

_NP_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}
CHUNK = 8 * 1024 * 1024

BrokenKind = Literal[
    "huge_header",
    "offsets_past_end",
    "overlapping",
    "truncated",
    "not_lora",
    "pickle",
    "zip",
    "bad_json",
    "bad_dtype",
    "size_mismatch",
    "unpaired",
]
BROKEN_KINDS: tuple[str, ...] = BrokenKind.__args__  # type: ignore[attr-defined]


def lora_tensor_names(module: str, naming: Naming) -> tuple[str, str]:
    """(down/A name, up/B name) of one adapted module in the given naming."""
    if naming == "peft":
        return f"transformer.{module}.lora_A.weight", f"transformer.{module}.lora_B.weight"
    if naming == "peft_adapter":
        return f"base_model.model.{module}.lora_A.weight", f"base_model.model.{module}.lora_B.weight"
    if naming == "kohya":
        flat = "lora_unet_" + module.replace(".", "_")
        return f"{flat}.lora_down.weight", f"{flat}.lora_up.weight"
    return f"transformer.{module}.lora.down.weight", f"transformer.{module}.lora.up.weight"


def lora_layout(
    *, rank: int, modules: int, hidden: int, naming: Naming = "peft", targets: tuple[str, ...] = QWEN_TARGETS
) -> list[tuple[str, tuple[int, ...]]]:
    """(tensor name, shape) for `modules` adapted layers spread over transformer blocks."""
    layout: list[tuple[str, tuple[int, ...]]] = []
    for i in range(modules):
        module = f"transformer_blocks.{i // len(targets)}.{targets[i % len(targets)]}"
        if naming in ("lokr", "loha"):
            layout += _lycoris_layout(module, naming, rank, hidden)
            continue
        down, up = lora_tensor_names(module, naming)
        layout.append((down, (rank, hidden)))
        layout.append((up, (hidden, rank)))
        if naming == "kohya":
            layout.append((down.removesuffix(".lora_down.weight") + ".alpha", ()))
    return layout


def _lycoris_layout(module: str, naming: str, rank: int, hidden: int) -> list[tuple[str, tuple[int, ...]]]:
    """LyCORIS as SimpleTuner saves it (`lycoris_` + the module path with underscores): LoKr with a
    whole w1 (a small Kronecker factor) and w2 factored as w2_a @ w2_b; LoHa with two factored pairs.
    Each module carries its .alpha."""
    flat = "lycoris_" + module.replace(".", "_")
    if naming == "lokr":
        factor = 4 if hidden % 4 == 0 else 1
        inner = hidden // factor
        shapes = [("lokr_w1", (factor, factor)), ("lokr_w2_a", (inner, rank)), ("lokr_w2_b", (rank, inner))]
    else:
        shapes = [
            ("hada_w1_a", (hidden, rank)),
            ("hada_w1_b", (rank, hidden)),
            ("hada_w2_a", (hidden, rank)),
            ("hada_w2_b", (rank, hidden)),
        ]
    return [(f"{flat}.{name}", shape) for name, shape in shapes] + [(f"{flat}.alpha", ())]


def hidden_for_size(target_bytes: int, *, rank: int, modules: int, dtype: str = "F16") -> int:
    """The hidden size that makes a `modules`-layer rank-`rank` LoRA about `target_bytes` big."""
    per_element = DTYPE_BITS[dtype] / 8
    return max(1, round(target_bytes / (modules * 2 * rank * per_element)))


def write_lora(
    path: str | Path,
    *,
    rank: int = 4,
    modules: int = 8,
    hidden: int = 32,
    dtype: str = "F16",
    naming: Naming = "peft",
    alpha: float | None = None,
    metadata: dict[str, str] | None = None,
    seed: int = 0,
) -> Path:
    """A small, valid LoRA file written by safetensors' own writer."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    np_dtype = _NP_DTYPES[dtype]
    tensors: dict[str, np.ndarray] = {}
    for name, shape in lora_layout(rank=rank, modules=modules, hidden=hidden, naming=naming):
        if name.endswith(".alpha"):
            tensors[name] = np.array(alpha if alpha is not None else rank, dtype=np_dtype)
        else:
            tensors[name] = rng.standard_normal(shape).astype(np_dtype)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"format": "pt", **(metadata or {})})
    return path


def _header_bytes(header: dict) -> bytes:
    raw = json.dumps(header, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % 8)  # safetensors pads so the data section is 8-byte aligned


def _random_chunks(total: int, seed: int) -> Iterator[bytes]:
    rng = np.random.default_rng(seed)
    left = total
    while left > 0:
        n = min(CHUNK, left)
        yield rng.bytes(n)
        left -= n


def write_streaming(
    path: str | Path,
    *,
    target_bytes: int,
    rank: int = 16,
    modules: int = 240,
    dtype: str = "F16",
    naming: Naming = "peft",
    seed: int = 0,
) -> Path:
    """A valid LoRA file of about `target_bytes`, written without holding it in memory."""
    hidden = hidden_for_size(target_bytes, rank=rank, modules=modules, dtype=dtype)
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    item_bits = DTYPE_BITS[dtype]
    layout = lora_layout(rank=rank, modules=modules, hidden=hidden, naming=naming)
    for name, shape in layout:
        size = math.prod(shape) * item_bits // 8
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = _header_bytes(header)
    with open(path, "wb") as fh:
        fh.write(len(raw).to_bytes(8, "little"))
        fh.write(raw)
        for chunk in _random_chunks(offset, seed):
            fh.write(chunk)
    return path


def _write_raw(path: Path, header: dict, data: bytes, *, declared_length: int | None = None) -> Path:
    raw = _header_bytes(header)
    length = len(raw) if declared_length is None else declared_length
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(length.to_bytes(8, "little") + raw + data)
    return path


def write_broken(path: str | Path, kind: BrokenKind) -> Path:
    """A file that must be refused, each for one specific reason."""
    path = Path(path)
    pair = {
        "m.lora_A.weight": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]},
        "m.lora_B.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [32, 64]},
    }
    data = bytes(64)
    if kind == "huge_header":
        return _write_raw(path, pair, data, declared_length=1 << 40)
    if kind == "offsets_past_end":
        pair["m.lora_B.weight"]["data_offsets"] = [32, 96]
        pair["m.lora_B.weight"]["shape"] = [4, 4]
        return _write_raw(path, pair, data)
    if kind == "overlapping":
        pair["m.lora_B.weight"]["data_offsets"] = [16, 48]
        return _write_raw(path, pair, data)
    if kind == "truncated":
        full = write_lora(path, rank=4, modules=4, hidden=16)
        blob = full.read_bytes()
        path.write_bytes(blob[: len(blob) - 100])
        return path
    if kind == "not_lora":
        header = {
            "proj_in.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]},
            "proj_in.bias": {"dtype": "F32", "shape": [4], "data_offsets": [32, 48]},
        }
        return _write_raw(path, header, bytes(48))
    if kind == "pickle":
        # Bytes only: a pickle is written here, never loaded.
        path.write_bytes(pickle.dumps({"m.lora_A.weight": [[0.0] * 4] * 2}, protocol=4))
        return path
    if kind == "zip":
        import zipfile

        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("archive/data.pkl", pickle.dumps({"weights": 1}, protocol=2))
        return path
    if kind == "bad_json":
        raw = b'{"m.lora_A.weight": {"dtype": "F32",'
        raw += b" " * (-len(raw) % 8)
        path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
        return path
    if kind == "bad_dtype":
        pair["m.lora_A.weight"]["dtype"] = "F128"
        return _write_raw(path, pair, data)
    if kind == "size_mismatch":
        pair["m.lora_A.weight"]["shape"] = [3, 4]
        return _write_raw(path, pair, data)
    if kind == "unpaired":
        del pair["m.lora_B.weight"]
        return _write_raw(path, pair, data[:32])
    raise ValueError(f"unknown broken kind {kind!r}; choose one of {', '.join(BROKEN_KINDS)}")
