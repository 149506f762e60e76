"""Which tool loads a published LoRA, decided from what its tensor names and files are.

A model card claims a `library_name` and shows a snippet: both must be true for the weights
published. Read from the consumers' code (tests/lora_loader_reference.py encodes it as cases):

- PEFT (src/peft/utils/save_and_load.py `load_peft_weights`, `PeftModel.from_pretrained`) reads
  exactly `adapter_model.safetensors` (else `adapter_model.bin`) beside `adapter_config.json`,
  with the `base_model.model.*` names its `save_pretrained` writes.
- diffusers' Qwen-Image loader (src/diffusers/loaders/lora_pipeline.py
  `QwenImageLoraLoaderMixin.lora_state_dict` / `load_lora_weights`, then loaders/peft.py
  `load_lora_adapter`) converts kohya names (`lora_unet_*`, `.alpha`) to its own, refuses a file
  whose names do not all contain "lora" or that it cannot convert (LyCORIS LoKr/LoHa: ValueError),
  and keeps only names under `transformer.`: PEFT's `base_model.model.*` names load nothing, with
  only a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hubpress.lora.family import LoraInfo
from hubpress.lora.weights import ADAPTER_CONFIG

PEFT_WEIGHT_NAME = "adapter_model.safetensors"  # PEFT's SAFETENSORS_WEIGHTS_NAME
PEFT_CONFIG_NAME = ADAPTER_CONFIG  # PEFT's CONFIG_NAME
DIFFUSERS_PREFIXES = frozenset({"transformer", "unet", "lora_unet"})

How = Literal["peft", "diffusers", "lycoris", "none"]


@dataclass(frozen=True, slots=True)
class Loader:
    """How the published weights load: the card's `library_name` (None: claim none) and its snippet."""

    how: How
    library_name: str | None
    note: str  # one line for the card, saying what loads it and what does not


def is_peft_adapter(weight_name: str, with_adapter_config: bool) -> bool:
    """Published under PEFT's names, where PeftModel.from_pretrained and load_peft_weights look."""
    return weight_name.rsplit("/", 1)[-1] == PEFT_WEIGHT_NAME and with_adapter_config


def loader_for(info: LoraInfo, weight_name: str, with_adapter_config: bool) -> Loader:
    if info.family.startswith("lycoris"):
        return Loader(
            "lycoris",
            None,
            "diffusers' `load_lora_weights` does not load LyCORIS LoKr/LoHa weights for Qwen-Image "
            "(`QwenImageLoraLoaderMixin` raises `ValueError` on their `lokr_*`/`hada_*` names): load them "
            "with the LyCORIS library, as below, or with SimpleTuner.",
        )
    if is_peft_adapter(weight_name, with_adapter_config):
        return Loader(
            "peft",
            "peft",
            "A PEFT adapter (`adapter_model.safetensors` beside `adapter_config.json`): load it with PEFT "
            "onto the model it was trained on.",
        )
    if info.key_prefix == "base_model.model":
        return Loader(
            "none",
            None,
            "These are PEFT `save_pretrained` names (`base_model.model.*`) without PEFT's "
            "`adapter_config.json`: PEFT needs that file beside `adapter_model.safetensors`, and diffusers' "
            "`load_lora_weights` would load none of these names. Publish the adapter folder to load it "
            "with PEFT.",
        )
    if info.key_prefix in DIFFUSERS_PREFIXES:
        return Loader("diffusers", "diffusers", "")
    return Loader(
        "none",
        None,
        f"Tensor names start with `{info.key_prefix or 'the module path'}`, not `transformer.`: diffusers' "
        "`load_lora_weights` keeps only names under `transformer.` (or kohya `lora_unet_` names) and would "
        "load none of these; load them with the tool that trained them.",
    )
