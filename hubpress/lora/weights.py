"""LoRA weights: find the file, check it is a sound safetensors LoRA, and describe it for the card.

Nothing is sent before `inspect_safetensors` has accepted the file. The header is parsed here
with strict checks first (so a truncated or hostile file gets a precise reason, and a huge header
length is refused before anything is allocated), then safetensors' own `safe_open` confirms it.
Pickle formats (.bin, .pt, .ckpt, .pth, or a pickle renamed to .safetensors) are refused: hubpress
never unpickles, because loading a pickle runs whatever code it carries.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from hubpress.errors import ConfigError, SourceError

DEFAULT_WEIGHT_NAME = "pytorch_lora_weights.safetensors"

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


class NotALoraError(InvalidWeightsError):
    """The safetensors file is sound but holds no LoRA tensors."""


class WeightsNotFoundError(SourceError):
    """No weights file (or more than one candidate) where the weights were looked for."""


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
        doc = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:
        raise InvalidWeightsError(f"{where}: the header is not valid JSON ({exc}).")
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


# ---------------------------------------------------------------------------------------------
# Recognising a LoRA

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


def _read_scalar(fh: BinaryIO, data_start: int, entry: TensorEntry) -> float | None:
    if entry.numel != 1 or entry.dtype not in ("F32", "F16", "BF16", "F64"):
        return None
    fh.seek(data_start + entry.begin)
    raw = fh.read(entry.end - entry.begin)
    if entry.dtype == "BF16":
        return struct.unpack("<f", b"\x00\x00" + raw)[0]
    fmt = {"F32": "<f", "F16": "<e", "F64": "<d"}[entry.dtype]
    return struct.unpack(fmt, raw)[0]


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
            value = _read_scalar(fh, header.data_start, entry)
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


def inspect_safetensors(path: str | Path) -> LoraInfo:
    """Check a local LoRA file before anything is sent, and describe it.

    Raises PickleWeightsError for pickles (by extension or by content), InvalidWeightsError for a
    malformed or truncated file (with the reason), NotALoraError for sound non-LoRA weights."""
    path = Path(path)
    where = str(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise PickleWeightsError(f"{where} is a pickle-based weights file ({path.suffix}). {CONVERT_HINT}")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, after describe_lora's reads
    except OSError as exc:
        raise WeightsNotFoundError(f"Cannot open {where}: {exc.strerror}.")
    with fh:
        size = path.stat().st_size
        header = read_header(fh, size, where)
        info = describe_lora(header, where, fh)
    _confirm_with_safetensors(path, header)
    return info


def inspect_stream(fh: BinaryIO, file_size: int, where: str) -> LoraInfo:
    """The header checks and LoRA recognition of `inspect_safetensors`, from a stream positioned at 0
    (e.g. `Storage.open` on an S3 object), reading only the header: a bad remote file is refused
    before it is downloaded. It does not replace `inspect_safetensors` on the local copy (no
    safe_open confirmation, and kohya alpha values are not read)."""
    if where.lower().endswith(PICKLE_SUFFIXES):
        raise PickleWeightsError(f"{where} is a pickle-based weights file. {CONVERT_HINT}")
    return describe_lora(read_header(fh, file_size, where), where)


def _confirm_with_safetensors(path: Path, header: SafetensorsHeader) -> None:
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
