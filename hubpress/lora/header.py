"""The safetensors container: read and strictly check a header, refuse pickles.

The header is parsed here with strict checks first (so a truncated or hostile file gets a precise
reason, and a huge header length is refused before anything is allocated), then safetensors' own
`safe_open` confirms it. Pickle formats (.bin, .pt, .ckpt, .pth, or a pickle renamed to
.safetensors) are refused: hubpress never unpickles, because loading a pickle runs whatever code
it carries. Nothing here knows about LoRA (hubpress.lora.family does).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from hubpress.errors import ConfigError
from hubpress.parsers import ParseLimitError, load_json

# The limit safetensors itself enforces (MAX_HEADER_SIZE in the Rust crate).
MAX_HEADER_SIZE = 100_000_000

# Bits per element of every dtype the safetensors format defines.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")

CONVERT_HINT = (
    "hubpress never unpickles (a pickle can run arbitrary code when loaded). Convert it to safetensors "
    "where it was trained, e.g. `pipe.save_lora_weights(out_dir, ..., safe_serialization=True)`, or "
    '`safetensors.torch.save_file(torch.load(path, weights_only=True), "pytorch_lora_weights.safetensors")`.'
)


class InvalidWeightsError(ConfigError):
    """The weights file is not a sound safetensors file; nothing was sent."""


class PickleWeightsError(InvalidWeightsError):
    """The weights are a pickle (or a torch zip archive): refused, hubpress never unpickles."""


@dataclass(frozen=True, slots=True)
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # offsets relative to the start of the data section
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    header_size: int  # N, the JSON header's length in bytes
    file_size: int
    tensors: tuple[TensorEntry, ...]
    metadata: dict[str, str] = field(hash=False)

    @property
    def data_start(self) -> int:
        return 8 + self.header_size


# ---------------------------------------------------------------------------------------------
# Parsing and checking the header


def _pickle_kind(head: bytes) -> str | None:
    """'zip' for a torch.save archive, 'pickle' for a raw pickle (protocol 2+), else None."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "a zip archive (torch.save format)"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle"
    return None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def read_header(fh: BinaryIO, file_size: int, where: str) -> SafetensorsHeader:
    """Read and strictly check a safetensors header from an open stream positioned at 0.

    Works on any readable stream (a local file, an S3 body), so a remote file can be refused
    before it is downloaded. `where` names the file in messages."""
    prefix = fh.read(8)
    if len(prefix) < 8:
        raise InvalidWeightsError(
            f"{where} is too short to be safetensors ({file_size} bytes; the format starts with an 8-byte length)."
        )
    (n,) = struct.unpack("<Q", prefix)
    sane = 2 <= n <= MAX_HEADER_SIZE and n <= file_size - 8
    if not sane:
        pickled = _pickle_kind(prefix)
        if pickled:
            raise PickleWeightsError(
                f"{where} is {pickled}, not safetensors, despite its name. {CONVERT_HINT}"
            )
        if n > MAX_HEADER_SIZE:
            raise InvalidWeightsError(
                f"{where}: header length {n} exceeds the {MAX_HEADER_SIZE}-byte limit; "
                "the file is corrupt or not safetensors."
            )
        raise InvalidWeightsError(
            f"{where}: header length {n} does not fit in the file ({file_size} bytes); the file is truncated "
            "or not safetensors. Copy it again from the training output."
        )
    raw = fh.read(n)
    if len(raw) < n:
        raise InvalidWeightsError(f"{where} is truncated inside its header ({len(raw)} of {n} bytes).")
    if not raw.lstrip(b" ").startswith(b"{"):
        pickled = _pickle_kind(prefix)
        if pickled:
            raise PickleWeightsError(
                f"{where} is {pickled}, not safetensors, despite its name. {CONVERT_HINT}"
            )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidWeightsError(
            f"{where}: the header is not valid UTF-8 ({exc.reason} at byte {exc.start})."
        )
    try:
        doc = load_json(
            text, f"{where}'s header", max_bytes=MAX_HEADER_SIZE, object_pairs_hook=_no_duplicate_keys
        )
    except ParseLimitError as exc:
        if "deeper" in str(exc):
            raise InvalidWeightsError(
                f"{where}: the header nests JSON too deeply to be a safetensors header (it maps tensor "
                "names to dtype, shape and offsets)."
            ) from None
        raise InvalidWeightsError(f"{where}: the header is not valid JSON ({exc}).") from None
    except ValueError as exc:  # a duplicate key
        raise InvalidWeightsError(f"{where}: the header is not valid JSON ({exc}).") from None
    if not isinstance(doc, dict):
        raise InvalidWeightsError(f"{where}: the header is JSON but not an object.")
    return _check_header(doc, n, file_size, where)


def _check_header(doc: dict[str, Any], n: int, file_size: int, where: str) -> SafetensorsHeader:
    metadata = doc.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise InvalidWeightsError(f"{where}: __metadata__ must map strings to strings.")
    data_size = file_size - 8 - n
    tensors: list[TensorEntry] = []
    for name, spec in doc.items():
        bad = f"{where}: tensor {name!r}"
        if not isinstance(spec, dict):
            raise InvalidWeightsError(f"{bad} is described by {type(spec).__name__}, not an object.")
        dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
        if dtype not in DTYPE_BITS:
            raise InvalidWeightsError(f"{bad} has unknown dtype {dtype!r}.")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise InvalidWeightsError(f"{bad} has shape {shape!r}; expected a list of non-negative integers.")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(o) is int and o >= 0 for o in offsets)
        ):
            raise InvalidWeightsError(f"{bad} has data_offsets {offsets!r}; expected [begin, end].")
        begin, end = offsets
        if begin > end:
            raise InvalidWeightsError(f"{bad} has data_offsets [{begin}, {end}] with begin after end.")
        if end > data_size:
            raise InvalidWeightsError(
                f"{bad} ends at byte {end} of the data section, past its end ({data_size} bytes): "
                "the file is truncated or its header is wrong."
            )
        bits = math.prod(shape) * DTYPE_BITS[dtype]
        if bits % 8 or bits // 8 != end - begin:
            raise InvalidWeightsError(
                f"{bad}: {dtype} {shape} needs {bits / 8:g} bytes but its offsets span {end - begin}."
            )
        tensors.append(TensorEntry(name, dtype, tuple(shape), begin, end))
    ordered = sorted(tensors, key=lambda t: (t.begin, t.end))
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.begin < before.end:
            raise InvalidWeightsError(
                f"{where}: tensors {before.name!r} [{before.begin}, {before.end}] and "
                f"{after.name!r} [{after.begin}, {after.end}] overlap."
            )
    return SafetensorsHeader(n, file_size, tuple(tensors), dict(metadata))


def read_scalar(fh: BinaryIO, data_start: int, entry: TensorEntry) -> float | None:
    if entry.numel != 1 or entry.dtype not in ("F32", "F16", "BF16", "F64"):
        return None
    fh.seek(data_start + entry.begin)
    raw = fh.read(entry.end - entry.begin)
    if entry.dtype == "BF16":
        return struct.unpack("<f", b"\x00\x00" + raw)[0]
    fmt = {"F32": "<f", "F16": "<e", "F64": "<d"}[entry.dtype]
    return struct.unpack(fmt, raw)[0]


def confirm_with_safetensors(path: Path, header: SafetensorsHeader) -> None:
    """Let the reference implementation open the file too: what it refuses, loaders refuse."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            keys = set(f.keys())
    except Exception as exc:  # safetensors raises SafetensorError (or OSError) with its reason
        raise InvalidWeightsError(f"{path}: safetensors refuses to open it: {exc}.")
    expected = {t.name for t in header.tensors}
    if keys != expected:
        raise InvalidWeightsError(
            f"{path}: safetensors sees {len(keys)} tensors, the header lists {len(expected)}."
        )
