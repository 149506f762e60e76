"""LoRA weights: find the file, check it is a sound safetensors LoRA, and describe it for the card.

Nothing is sent before `inspect_safetensors` has accepted the file: hubpress.lora.header checks
the container (and refuses pickles), hubpress.lora.family recognises the LoRA in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from hubpress.errors import SourceError
from hubpress.lora.degenerate import check_not_degenerate
from hubpress.lora.family import LoraInfo, NotALoraError, describe_lora, shortest_unique_suffixes
from hubpress.lora.header import (
    CONVERT_HINT,
    DTYPE_BITS,
    MAX_HEADER_SIZE,
    PICKLE_SUFFIXES,
    InvalidWeightsError,
    PickleWeightsError,
    SafetensorsHeader,
    TensorEntry,
    confirm_with_safetensors,
    read_header,
)
from hubpress.parsers import MAX_DOCUMENT_BYTES, load_json
from hubpress.storage.regular import NotRegularFile, open_regular, read_regular

__all__ = [
    "CONVERT_HINT",
    "DEFAULT_WEIGHT_NAME",
    "DTYPE_BITS",
    "MAX_HEADER_SIZE",
    "PICKLE_SUFFIXES",
    "InvalidWeightsError",
    "LoraInfo",
    "NotALoraError",
    "PickleWeightsError",
    "SafetensorsHeader",
    "TensorEntry",
    "WeightsNotFoundError",
    "adapter_config_beside",
    "apply_adapter_config",
    "describe_lora",
    "find_weights",
    "inspect_safetensors",
    "inspect_stream",
    "read_header",
    "shortest_unique_suffixes",
]

DEFAULT_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
ADAPTER_CONFIG = "adapter_config.json"  # PEFT's LoraConfig, saved beside PEFT weights


class WeightsNotFoundError(SourceError):
    """No weights file (or more than one candidate) where the weights were looked for."""


# ---------------------------------------------------------------------------------------------
# Finding the weights


def find_weights(src_path: str | Path) -> Path:
    """The weights file: `src_path` itself, or in that directory `pytorch_lora_weights.safetensors`,
    or else its only `*.safetensors` file. Several candidates, none, or only pickles are errors."""
    path = Path(src_path).expanduser()
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise PickleWeightsError(f"{path} is a pickle-based weights file ({path.suffix}). {CONVERT_HINT}")
        return path
    if not path.exists():
        raise WeightsNotFoundError(
            f"{path} does not exist: give a .safetensors file or a directory holding one."
        )
    if not path.is_dir():
        raise WeightsNotFoundError(f"{path} is neither a file nor a directory.")
    preferred = path / DEFAULT_WEIGHT_NAME
    if preferred.is_file():
        return preferred
    candidates = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".safetensors")
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise WeightsNotFoundError(
            f"{path} holds several .safetensors files ({names}) and no {DEFAULT_WEIGHT_NAME}: "
            "pass the one to publish as the path."
        )
    pickles = sorted(p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise PickleWeightsError(
            f"{path} holds only pickle-based weights ({', '.join(pickles)}), no .safetensors. {CONVERT_HINT}"
        )
    raise WeightsNotFoundError(
        f"No weights in {path}: looked for {DEFAULT_WEIGHT_NAME}, then for a single *.safetensors file."
    )


def inspect_safetensors(path: str | Path) -> LoraInfo:
    """Check a local LoRA file before anything is sent, and describe it.

    Raises PickleWeightsError for pickles (by extension or by content), InvalidWeightsError for a
    malformed or truncated file (with the reason), NotALoraError for sound non-LoRA weights."""
    path = Path(path)
    where = str(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise PickleWeightsError(f"{where} is a pickle-based weights file ({path.suffix}). {CONVERT_HINT}")
    try:
        fh = open_regular(path)  # closed below, after describe_lora's reads
    except OSError as exc:
        raise WeightsNotFoundError(f"Cannot open {where}: {exc.strerror}.")
    with fh:
        size = path.stat().st_size
        header = read_header(fh, size, where)
        check_not_degenerate(header, where)
        info = describe_lora(header, where, fh)
    confirm_with_safetensors(path, header)
    return info


def inspect_stream(fh: BinaryIO, file_size: int, where: str) -> LoraInfo:
    """The header checks and LoRA recognition of `inspect_safetensors`, from a stream positioned at 0
    (e.g. `Storage.open` on an S3 object), reading only the header: a bad remote file is refused
    before it is downloaded. It does not replace `inspect_safetensors` on the local copy (no
    safe_open confirmation, and kohya alpha values are not read)."""
    if where.lower().endswith(PICKLE_SUFFIXES):
        raise PickleWeightsError(f"{where} is a pickle-based weights file. {CONVERT_HINT}")
    header = read_header(fh, file_size, where)
    check_not_degenerate(header, where)
    return describe_lora(header, where)


def adapter_config_beside(weights: Path) -> Path | None:
    """PEFT's adapter_config.json in the weights' directory, when there is one."""
    beside = weights.with_name(ADAPTER_CONFIG)
    return beside if beside.is_file() else None


def apply_adapter_config(info: LoraInfo, config_path: Path) -> LoraInfo:
    """Check adapter_config.json against the weights (its `r` must be a rank they have) and add its
    `lora_alpha` to the alphas. A config that is not JSON, or disagrees, is refused before sending."""
    import dataclasses

    try:
        config = load_json(read_regular(config_path, MAX_DOCUMENT_BYTES), str(config_path))
    except (OSError, ValueError, NotRegularFile) as exc:
        raise InvalidWeightsError(f"{config_path} is not a readable JSON adapter config: {exc}.") from None
    if not isinstance(config, dict):
        raise InvalidWeightsError(f"{config_path} is JSON but not an object.")
    rank, alpha = config.get("r"), config.get("lora_alpha")
    if isinstance(rank, int) and info.rank and rank not in info.ranks and not config.get("rank_pattern"):
        raise InvalidWeightsError(
            f"{config_path} says r={rank} but {info.file_name} has rank {info.rank}: they belong to different "
            "adapters. Put the matching adapter_config.json beside the weights (or remove it)."
        )
    if isinstance(alpha, int | float) and not isinstance(alpha, bool):
        info = dataclasses.replace(info, alphas=tuple(sorted({*info.alphas, float(alpha)})))
    return info
