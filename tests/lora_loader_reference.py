"""PEFT's file lookup and diffusers' Qwen-Image LoRA key handling, as behaviour (our own code, not theirs).

Read from huggingface/peft at 5d602fd and huggingface/diffusers at 58eb52c, and written here
from the behaviour; tests/lora/test_lora_loaders.py reads every published LoRA family with it.

- PEFT: src/peft/utils/save_and_load.py `load_peft_weights` (adapter_model.safetensors, else
  adapter_model.bin, else "Can't find weights"); `PeftConfig.from_pretrained` reads
  adapter_config.json (src/peft/utils/constants.py CONFIG_NAME).
- diffusers: src/diffusers/loaders/lora_pipeline.py `QwenImageLoraLoaderMixin.lora_state_dict`
  (which names trigger the conversion) and `load_lora_weights` (every name must contain "lora");
  src/diffusers/loaders/lora_conversion_utils.py `_convert_non_diffusers_qwen_lora_to_diffusers`
  (lora_down/lora_up with their .alpha -> lora_A/lora_B; anything left over is a ValueError;
  the result is put under `transformer.`); src/diffusers/loaders/peft.py `load_lora_adapter`
  (only names under `transformer.` are kept; none left is a warning, not an error).
"""

from __future__ import annotations

from collections.abc import Iterable

PEFT_SAFETENSORS = "adapter_model.safetensors"
PEFT_BIN = "adapter_model.bin"
PEFT_CONFIG = "adapter_config.json"


class CannotLoad(Exception):
    """The consumer refuses the files or names (an error, not a silent no-op)."""


def peft_weights_file(repo_files: Iterable[str]) -> str:
    """The file PEFT loads from a repo (or folder) holding `repo_files`."""
    files = set(repo_files)
    if PEFT_CONFIG not in files:
        raise CannotLoad(f"Can't find '{PEFT_CONFIG}'")
    for name in (PEFT_SAFETENSORS, PEFT_BIN):
        if name in files:
            return name
    raise CannotLoad(f"Can't find weights: {PEFT_BIN} or {PEFT_SAFETENSORS}")


_DOWN = (".lora_A.weight", ".lora_down.weight", ".lora.down.weight", ".lora_linear_layer.down.weight")


def _converted(keys: list[str]) -> list[str]:
    keys = [
        k.removeprefix("diffusion_model.").removeprefix("lora_unet_").replace("default.", "") for k in keys
    ]
    left = set(keys)
    out: list[str] = []
    if any(k.endswith((".lora_down.weight", ".lora_up.weight")) for k in keys):
        for k in keys:
            if k.endswith(".lora_down.weight"):
                base = k.removesuffix(".lora_down.weight")
                for part in (k, f"{base}.lora_up.weight", f"{base}.alpha"):
                    if part not in left:
                        raise CannotLoad(f"{part} is missing")
                    left.discard(part)
                out += [f"{base}.lora_A.weight", f"{base}.lora_B.weight"]
    elif any(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in keys):
        for k in keys:
            if k.endswith((".lora_A.weight", ".lora_B.weight")):
                out.append(k)
                left.discard(k)
            elif ".alpha" in k:
                left.discard(k)
    if left:
        raise CannotLoad("`state_dict` should be empty at this point")
    return [f"transformer.{k}" for k in out]


def diffusers_qwen_modules(keys: Iterable[str]) -> set[str]:
    """The transformer modules `QwenImagePipeline.load_lora_weights` adapts from these tensor names;
    an empty set means it loads nothing (it only warns). Raises CannotLoad where it raises."""
    keys = [k for k in keys if "dora_scale" not in k]
    if any(
        k.endswith(".alpha") or k.startswith(("lora_unet_", "diffusion_model.")) or "default." in k
        for k in keys
    ):
        keys = _converted(keys)
    if not all("lora" in k for k in keys):
        raise CannotLoad(
            "Invalid LoRA checkpoint. Make sure all LoRA param names contain `'lora'` substring."
        )
    kept = [k.removeprefix("transformer.") for k in keys if k.startswith("transformer.")]
    return {k.removesuffix(suffix) for k in kept for suffix in _DOWN if k.endswith(suffix)}
