"""Weights that parse and look like a LoRA but cannot be one: boolean or integer tensors, empty
(rank 0) tensors. Refused before anything is sent, each with one line naming the tensor.

Kept apart from LoRA recognition (hubpress.lora.family), which decides *what* the tensors are;
this decides whether their values can be weights at all. A/B halves whose shapes do not pair are
refused by recognition itself (family._lora_rank)."""

from __future__ import annotations

from hubpress.lora.family import _classify
from hubpress.lora.header import InvalidWeightsError, SafetensorsHeader

# safetensors' floating-point dtypes: anything else (BOOL, U8, I8, I16, I32, I64, ...) is not a weight.
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4"})


class DegenerateWeightsError(InvalidWeightsError):
    """LoRA tensors that cannot hold weights (wrong dtype, no elements)."""


def check_not_degenerate(header: SafetensorsHeader, where: str) -> None:
    """Raise DegenerateWeightsError for the first LoRA tensor that is boolean/integer or empty."""
    for tensor in header.tensors:
        if tensor.name.endswith(".alpha") or _classify(tensor.name) is None:
            continue  # kohya's scalar alpha, or not part of the adapter (recognition decides that)
        if tensor.dtype not in FLOAT_DTYPES:
            raise DegenerateWeightsError(
                f"{where}: tensor {tensor.name!r} is {tensor.dtype}, not a floating-point type: "
                "LoRA weights are F16, BF16 or F32. Export the adapter again."
            )
        if 0 in tensor.shape:
            raise DegenerateWeightsError(
                f"{where}: tensor {tensor.name!r} has shape {list(tensor.shape)}, with no elements "
                "(rank 0): there is no adapter to publish."
            )
